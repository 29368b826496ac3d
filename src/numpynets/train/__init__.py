"""Training: the fit loop, evaluation, the run folder and its log."""

from .evaluate import evaluate, per_class_table  # noqa: F401
from .fit import FitResult, fit, seeds  # noqa: F401
