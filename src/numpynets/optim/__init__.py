"""Optimizers (SGD with momentum/Nesterov/weight decay, Adam, AdamW) and
learning-rate schedules. An optimizer takes the model:
``SGD(model, lr=0.1, momentum=0.9, nesterov=True)``, ``Adam(model, lr=1e-3)``,
``AdamW(model, lr=1e-3, weight_decay=0.01)``; ``step()`` updates it in place."""

from .optimizers import SGD, Adam, AdamW, Optimizer, make_optimizer  # noqa: F401
from .schedules import Schedule, load_schedule_config, schedule_from_dict  # noqa: F401

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "make_optimizer", "Schedule", "schedule_from_dict",
           "load_schedule_config"]
