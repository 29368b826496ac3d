"""Optimizers (SGD with momentum/Nesterov/weight decay, Adam, AdamW) and
learning-rate schedules."""

from .optimizers import SGD, Adam, AdamW, Optimizer, make_optimizer  # noqa: F401
from .schedules import Schedule, load_schedule_config, schedule_from_dict  # noqa: F401
