"""Training recipes: every hyperparameter of a run, with defaults.

A built-in model has an ``original`` recipe (the Rust project's
hyperparameters, trained with correct gradients) and a ``default`` one (our
best for the same architecture). Command-line options override single
fields and keep the rest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from ..errors import ConfigError
from ..checks import real, whole
from ..optim.optimizers import OPTIMIZERS
from ..optim.schedules import MAX_EPOCHS, Schedule, schedule_from_dict


@dataclass
class Recipe:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    decay_all: bool = False              # weight decay on every parameter, not only weights and kernels
    betas: tuple = (0.9, 0.999)
    schedule: dict = field(default_factory=lambda: {"kind": "constant"})
    patience: int | None = None          # early stopping: epochs without improvement; None = off
    min_delta: float = 0.0               # ... by more than this (validation loss)
    stop_loss: float | None = None       # stop as soon as the epoch's train loss is below this
    stop_accuracy: float | None = None   # ... and the train accuracy (percent) at least this
    arch: dict = field(default_factory=dict)   # architecture options (init, widths, ...)
    augment: dict | None = None          # augmentation strengths (data.augment.AugmentConfig); None = off

    def validate(self) -> Recipe:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"epochs must be a whole number >= 1, got {self.epochs}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch size must be a whole number >= 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):          # NaN fails every comparison
            raise ConfigError(f"learning rate must be > 0 and finite, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.optimizer == "sgd" and self.nesterov and not self.momentum:   # before any run folder exists
            raise ConfigError("Nesterov needs a momentum > 0 (add --momentum 0.9)")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ConfigError(f"weight decay must be >= 0 and finite, got {self.weight_decay}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1, got {self.patience}")
        if not (self.min_delta >= 0 and math.isfinite(self.min_delta)):   # NaN: no epoch would ever count as best
            raise ConfigError(f"min delta must be >= 0 and finite, got {self.min_delta}")
        # upper bounds and types beyond the messages above (numpynets.checks)
        whole(self.epochs, "epochs", high=int(MAX_EPOCHS))
        whole(self.batch_size, "batch size", high=2**31)
        if self.patience is not None:
            whole(self.patience, "patience", high=int(MAX_EPOCHS))
        for name, v in (("learning rate", self.lr), ("momentum", self.momentum),
                        ("weight decay", self.weight_decay), ("min delta", self.min_delta)):
            real(v, name)
        self.schedule_obj()
        self.augment_config()
        return self

    def augment_config(self):
        """The augmentation settings, or ``None`` when augmentation is off."""
        if self.augment is None:
            return None
        from ..data.augment import AugmentConfig

        return AugmentConfig.from_dict(self.augment)

    def schedule_obj(self) -> Schedule:
        return schedule_from_dict(self.schedule)

    def with_overrides(self, **kw) -> Recipe:
        """A validated copy with the fields in ``kw`` replaced (``None`` means
        "keep the recipe's"); ``arch`` options are merged. An unknown field
        raises a one-line :class:`ConfigError` naming it and the known ones."""
        known = [f.name for f in fields(self)]
        unknown = sorted(set(kw) - set(known))
        if unknown:
            raise ConfigError(f"unknown recipe field{'s' * (len(unknown) > 1)} {', '.join(unknown)}; "
                              f"known: {', '.join(known)}")
        kw = {k: v for k, v in kw.items() if v is not None}
        if "arch" in kw:
            kw["arch"] = {**self.arch, **kw["arch"]}
        return replace(self, **kw).validate()

    @classmethod
    def from_options(cls, base: Recipe | None = None, **options) -> Recipe:
        """``base`` (default: ``Recipe()``) with ``options`` set, validated."""
        return (base if base is not None else cls()).with_overrides(**options)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d
