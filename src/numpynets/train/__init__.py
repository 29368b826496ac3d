"""Training: the fit loop (:class:`Trainer`, :func:`fit`) and its
collaborators (:mod:`numpynets.train.callbacks`), evaluation, the resumable
checkpoint, the run folder's log."""

from .callbacks import (BestCheckpoint, Callback, Checkpoint, CsvLog, EarlyStopping, EpochEnd,  # noqa: F401
                        EpochPrinter, Monitor, ProgressBar, TargetStop, Validation, default_callbacks)
from .evaluate import evaluate, per_class_table  # noqa: F401
from .fit import FitResult, Trainer, build_optimizer, fit, seeds  # noqa: F401

__all__ = ["fit", "Trainer", "FitResult", "seeds", "build_optimizer", "evaluate", "per_class_table",
           "Callback", "EpochEnd", "ProgressBar", "Validation", "Monitor", "BestCheckpoint", "EarlyStopping",
           "TargetStop", "CsvLog", "EpochPrinter", "Checkpoint", "default_callbacks"]
