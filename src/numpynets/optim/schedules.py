"""Learning-rate schedules.

A schedule maps training progress ``t``, measured in epochs, to a learning
rate. Stepped per epoch it is read at ``t = 0, 1, 2, ...`` (the original
project's behaviour: ``t`` is the number of completed epochs); stepped per
batch it is read at fractional ``t = epoch + batch / batches_per_epoch``, so
the same schedule decays smoothly. An optional linear warm-up of ``w``
epochs rises to ``lr0``, and the schedule proper starts after it: per epoch
through ``lr0·(t+1)/(w+1)`` (``lr0/(w+1)`` first), per batch as ``lr0·t/w``
(so the very first batch has learning rate 0).

The original's JSON files load unchanged (``load_schedule_config``)::

    {"scheduler_type": "step_decay", "step_size": 3, "gamma": 0.5}
    {"scheduler_type": "exponential", "decay_rate": 0.95}
    {"scheduler_type": "cosine_annealing", "min_lr": 0.0001, "T_max": 10}
    {"scheduler_type": "constant"}

with the original's defaults for missing fields. Unlike the original, an
unknown type or a bad field is an error (it silently fell back to a constant
rate), and cosine annealing stays at ``min_lr`` after ``T_max`` instead of
rising again. Our own keys ``warmup_epochs`` and ``per`` ("epoch"/"batch")
may be added to the same file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..checks import real
from ..errors import ConfigError
from ..jsonfile import read_json

MAX_EPOCHS = 1e9          # an epoch count (step size, T_max, warm-up) beyond this is a damaged file
MAX_FACTOR = 1e6          # a decay factor (gamma, decay_rate) beyond this is one too


def _power(base: float, exponent: float) -> float:
    """base ** exponent, infinite rather than an OverflowError (a growing
    factor makes the run diverge, which the training loop reports)."""
    try:
        return base ** exponent
    except OverflowError:
        return math.inf

KINDS = ("constant", "step", "exponential", "cosine")
_ORIGINAL_NAMES = {"constant": "constant", "step_decay": "step", "exponential": "exponential",
                   "cosine_annealing": "cosine", "step": "step", "cosine": "cosine"}


@dataclass
class Schedule:
    kind: str = "constant"
    step_size: float = 3          # step: epochs between decays
    gamma: float = 0.5            # step: factor per decay
    decay_rate: float = 0.95      # exponential: factor per epoch
    min_lr: float = 1e-4          # cosine: floor
    t_max: float | None = None    # cosine: epochs to reach the floor (None: the whole run)
    warmup_epochs: float = 0.0
    per: str = "epoch"            # "epoch" or "batch"

    def __post_init__(self):
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ConfigError(f"unknown schedule {str(self.kind)[:40]!r}; choose one of {', '.join(KINDS)}")
        if not isinstance(self.per, str) or self.per not in ("epoch", "batch"):
            raise ConfigError(f"schedule 'per' must be \"epoch\" or \"batch\", got {str(self.per)[:40]!r}")
        # every number through numpynets.checks: type, finiteness and a range in
        # which lr() cannot overflow (t <= 10^9 epochs: factor**t and t/step stay finite)
        where = f"schedule {self.kind}: "
        real(self.step_size, where + "step_size", low=0, low_open=True, high=MAX_EPOCHS)
        if self.step_size < 1e-6:
            raise ConfigError(f"{where}step_size must be at least 1e-6 epochs, got {self.step_size}")
        real(self.gamma, where + "gamma", low=0, high=MAX_FACTOR)
        real(self.decay_rate, where + "decay_rate", low=0, high=MAX_FACTOR)
        real(self.min_lr, where + "min_lr", low=0)
        if self.t_max is not None:
            real(self.t_max, where + "T_max", low=0, low_open=True, high=MAX_EPOCHS)
        real(self.warmup_epochs, where + "warmup_epochs", low=0, high=MAX_EPOCHS)

    def lr(self, lr0: float, t: float, total_epochs: float) -> float:
        """Learning rate at progress ``t`` (epochs) of a run of ``total_epochs``."""
        w = self.warmup_epochs
        if w > 0 and t < w:
            # per-epoch stepping reads t = 0 first: start at lr0/(w+1), not 0
            return lr0 * (t + (1 if self.per == "epoch" else 0)) / (w + (1 if self.per == "epoch" else 0))
        t = t - w
        if self.kind == "constant":
            return lr0
        if self.kind == "step":
            return lr0 * _power(self.gamma, math.floor(t / self.step_size + 1e-9))
        if self.kind == "exponential":
            return lr0 * _power(self.decay_rate, t)
        t_max = self.t_max if self.t_max is not None else max(total_epochs - w, 1e-9)
        t = min(t, t_max)
        lo = min(self.min_lr, lr0)
        return lo + (lr0 - lo) * (1 + math.cos(math.pi * t / t_max)) / 2

    def to_dict(self) -> dict:
        """The schedule as the dict :func:`schedule_from_dict` reads back."""
        return asdict(self)


def schedule_from_dict(d: dict) -> Schedule:
    """Our dict (``kind``...) or the original's (``scheduler_type``...)."""
    if not isinstance(d, dict):
        raise ConfigError("schedule config must be a JSON object")
    d = dict(d)
    if "scheduler_type" in d:
        name = d.pop("scheduler_type")
        name = name.lower() if isinstance(name, str) else repr(name)[:40]
        if name not in _ORIGINAL_NAMES:
            raise ConfigError(f"unknown scheduler_type {name!r}; choose one of "
                              "step_decay, exponential, cosine_annealing, constant")
        d["kind"] = _ORIGINAL_NAMES[name]
    if "T_max" in d:
        d["t_max"] = d.pop("T_max")
    # the activation fields name the activation between layers, not a schedule: numpynets.train.run
    # applies them (models.original_arch.config_activation); the schedule itself ignores them
    for k in ("activation_function", "leaky_relu_alpha", "elu_alpha"):
        d.pop(k, None)
    known = set(Schedule.__dataclass_fields__)
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"unknown schedule field(s) {sorted(unknown)}; known: {sorted(known | {'T_max', 'scheduler_type'})}")
    for k in ("step_size", "gamma", "decay_rate", "min_lr", "t_max", "warmup_epochs"):
        if k not in d:
            continue
        v = d[k]
        if v is None and k == "t_max":                     # null T_max: the whole run, as when missing
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"schedule field {'T_max' if k == 't_max' else k!r} must be a number, "
                              f"got {'null' if v is None else repr(v)[:40]}")
    return Schedule(**d)


def load_schedule_config(path) -> Schedule:
    """A schedule from a JSON file (ours, or the original project's scheduler files)."""
    d = read_json(path, "schedule config")
    try:
        return schedule_from_dict(d)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
