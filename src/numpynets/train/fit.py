"""The training loop on arrays: :func:`fit` and the :class:`Trainer` behind it.

One step is the same for every model::

    out = model.forward(xb, training=True)
    loss, dout = model.loss(out, yb)        # fused, stable, mean over the batch
    scale = optimizer.grad_scale()          # plain SGD: lr, folded into dout (N, K)
    dout *= scale
    model.zero_grad(defer=True)             # no fill where backward overwrites (Linear)
    model.backward(dout)
    optimizer.step(scale)

The loop shuffles, sets the learning rate from the schedule and takes these
steps; the progress bar, validation, best checkpoint, early stopping, the
CSV log, the epoch lines and the resumable checkpoint are callbacks around
it (:mod:`numpynets.train.callbacks`). Divergence (a NaN or infinite loss)
and Ctrl-C end the loop with ``result.stopped`` set and the callbacks'
``on_fit_end`` run.

``train_seconds`` counts only the steps (plus batch gathering), not data
loading, validation or testing, so runs compare fairly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..checks import whole
from ..data.mnist import Split
from ..errors import ConfigError, TrainingDiverged
from ..models.recipes import Recipe
from ..optim.optimizers import Optimizer, make_optimizer
from .callbacks import Callback, EpochEnd, default_callbacks


@dataclass
class FitResult:
    epochs: int = 0                       # completed epochs
    train_seconds: float = 0.0
    history: list = field(default_factory=list)   # the kept epochs' rows (every epoch for MNIST)
    last: dict | None = None                       # the last epoch's row, reported or not
    best_epoch: int | None = None
    best_val_loss: float = math.inf
    stopped: str = "completed"            # completed | early_stopping | target_reached | interrupted | diverged
    message: str = ""


def seeds(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent streams for initialisation and shuffling, from one seed
    (a whole number >= 0: NumPy's SeedSequence takes no negative one)."""
    seed = whole(seed, "--seed", low=0)
    init_ss, shuffle_ss = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init_ss), np.random.default_rng(shuffle_ss)


def build_optimizer(model, recipe: Recipe) -> Optimizer:
    """The recipe's optimizer over ``model``'s parameters: the one place the
    training code makes one."""
    return make_optimizer(recipe.optimizer, model, recipe.lr,
                          momentum=recipe.momentum, nesterov=recipe.nesterov,
                          weight_decay=recipe.weight_decay, betas=recipe.betas,
                          decay_mask="all" if recipe.decay_all else [model.decay_mask()])


class Trainer:
    """Trains ``model`` with ``recipe`` (epochs, batch size, schedule...).

    ``optimizer`` defaults to the recipe's; ``shuffle_rng`` (a NumPy
    Generator) draws each epoch's order; ``callbacks`` are called in order
    (see :mod:`numpynets.train.callbacks`). ``epoch`` is the number of
    completed epochs: :meth:`fit` trains from there to ``recipe.epochs``, so a
    restored trainer (:func:`numpynets.train.checkpoint.restore`) continues.
    ``augment`` (an :class:`~numpynets.data.augment.Augmenter`, or any
    callable on a batch of images that transforms each image on its own)
    transforms the training images; its generator is part of the checkpoint
    (``extra_state["augment"]``). It is called on chunks of whole batches,
    in the epoch's order, about ``augment_pixels`` pixels at a time: the
    augmenter's fixed costs then come once per chunk, and it runs with its
    working arrays in the cache instead of after a training step that
    evicted them. The chunks start afresh each epoch, so a checkpoint at an
    epoch's end holds the generator's exact state.
    """

    augment_pixels = 1024 * 28 * 28   # per augmenter call (1,024 MNIST images; whole batches, at least one)

    def __init__(self, model, recipe: Recipe, optimizer: Optimizer | None = None,
                 shuffle_rng: np.random.Generator | None = None, callbacks=(), log_every: int = 1,
                 augment=None):
        self.model, self.recipe = model, recipe.validate()
        self.schedule = recipe.schedule_obj()
        self.optimizer = optimizer if optimizer is not None else build_optimizer(model, recipe)
        self.rng = shuffle_rng if shuffle_rng is not None else seeds(0)[1]
        self.callbacks = list(callbacks)
        self.log_every = log_every
        self.result = FitResult()
        self.stopping = False
        self.augment = augment
        self.extra_state = {}
        if getattr(augment, "rng", None) is not None:      # saved and restored with the checkpoint
            self.extra_state["augment"] = augment.rng

    @property
    def epoch(self) -> int:
        return self.result.epochs

    def stop(self, reason: str, message: str) -> None:
        """End the run after this epoch's callbacks (the first reason wins)."""
        if not self.stopping:
            self.stopping, self.result.stopped, self.result.message = True, reason, message

    def fit(self, train: Split) -> FitResult:
        X, Y = train.x, train.y                            # (N, ...) samples, (N, ...) targets
        self.n = len(Y)
        self.steps = -(-self.n // self.recipe.batch_size)  # the last batch may be partial
        # overflow on the way to a NaN loss is reported once, as divergence, not as NumPy warnings
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                for cb in self.callbacks:
                    cb.on_fit_start(self)
                step_hooks = [cb.on_step for cb in self.callbacks if _overrides(cb, "on_step")]
                for epoch in range(self.epoch, self.recipe.epochs):
                    if self.stopping:                      # a restored run that had stopped
                        break
                    end = self._train_epoch(X, Y, epoch, step_hooks)
                    self.result.last = end.row
                    if end.keep:
                        self.result.history.append(end.row)
                    for cb in self.callbacks:
                        cb.on_epoch_end(self, end)
            except KeyboardInterrupt:
                self.stop("interrupted", f"interrupted during epoch {self.epoch + 1}; saving what the run has")
            except TrainingDiverged as exc:
                self.stop("diverged", str(exc))
            finally:
                for cb in self.callbacks:
                    cb.on_fit_end(self)
        return self.result

    def _train_epoch(self, X, Y, epoch: int, step_hooks) -> EpochEnd:
        model, opt, schedule, r = self.model, self.optimizer, self.schedule, self.recipe
        n, B, steps = self.n, r.batch_size, self.steps
        per_batch = schedule.per == "batch"
        lr = opt.lr = schedule.lr(r.lr, epoch, r.epochs)
        perm = self.rng.permutation(n)                     # (N,) this epoch's order
        for cb in self.callbacks:
            cb.on_epoch_start(self, epoch)
        loss_sum, correct = 0.0, 0
        t0 = time.perf_counter()
        chunk = max(1, self.augment_pixels // max(1, B * X[0].size))   # batches per augmenter call
        for s in range(steps):
            if self.augment is None:
                idx = perm[s * B:(s + 1) * B]              # (B,), the last one possibly shorter
                xb, yb = X[idx], Y[idx]
            else:
                if s % chunk == 0:                         # the next chunk of batches, transformed at once
                    idx = perm[s * B:(s + chunk) * B]      # (chunk * B,) or the epoch's rest
                    xa, ya = self.augment(X[idx]), Y[idx]  # (chunk * B, ...): a random affine transform of each
                o = (s % chunk) * B
                xb, yb = xa[o:o + B], ya[o:o + B]
            if per_batch:
                opt.lr = schedule.lr(r.lr, epoch + s / steps, r.epochs)
            out = model.forward(xb, training=True)
            loss, dout = model.loss(out, yb)
            if not math.isfinite(loss):
                raise TrainingDiverged(f"training diverged at epoch {epoch + 1}, step {s + 1}: loss is {loss}; "
                                       f"lower the learning rate (now {opt.lr:g})")
            scale = opt.grad_scale()               # plain SGD: its lr, so that its step is p -= g
            if scale != 1.0:
                dout *= scale                      # (N, K): the whole backward is linear in it
            model.zero_grad(defer=True)            # the backward below overwrites instead of adding to zeros
            model.backward(dout)
            opt.step(scale)
            loss_sum += loss * len(yb)
            correct += _n_correct(model, out, yb)
            for hook in step_hooks:
                hook(self, s, len(yb), loss_sum)
        seconds = time.perf_counter() - t0
        self.result.train_seconds += seconds
        self.result.epochs = epoch + 1
        row = {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": 100.0 * correct / n,
               "learning_rate": opt.lr if per_batch else lr, "epoch_seconds": seconds}
        report = epoch + 1 == r.epochs or (epoch + 1) % self.log_every == 0
        return EpochEnd(epoch + 1, row, report=report, keep=report)


def fit(model, train, val=None, recipe: Recipe | None = None, shuffle_rng: np.random.Generator | None = None, *,
        optimizer=None, seed: int = 0, callbacks=(), run_dir=None, progress: bool = True, log=print,
        log_every: int = 1, meta: dict | None = None, augment=None, **hyperparameters) -> FitResult:
    """Train ``model`` on ``train`` and return a :class:`FitResult`.

    ``train`` and ``val`` are :class:`~numpynets.data.mnist.Split` objects or
    ``(x, y)`` pairs of arrays: ``x`` of shape ``(N, ...)`` as the model
    takes it, ``y`` ``(N,)`` class indices or ``(N, k)`` targets.
    Hyperparameters are a :class:`Recipe` or its fields as keywords
    (``epochs=3, batch_size=64, lr=0.1, momentum=0.9, nesterov=True``, a
    ``schedule`` dict, ``patience``...); an unknown keyword is refused.
    ``optimizer`` is a name (``"sgd"``, ``"adam"``, ``"adamw"``) or an
    optimizer object already made over the model (its ``lr`` is the base
    rate the schedule scales). The shuffling order comes from
    ``shuffle_rng`` or, without one, from ``seed``.

    Built in: a progress bar (``progress``), validation on ``val``, early
    stopping (``patience``), one line per epoch through ``log`` (``None``:
    silent) and, with ``run_dir``, ``best.safetensors``, ``log.csv`` and a
    resumable ``checkpoint.safetensors`` there. ``callbacks`` (see
    :mod:`numpynets.train.callbacks`) are called after these. ``augment``
    transforms the training images, chunks of whole batches at a time (see
    :class:`Trainer`).
    """
    from ..rundir import RunDir
    from .runlog import RunLog

    hyper = dict(hyperparameters)
    if isinstance(optimizer, str):
        hyper["optimizer"] = optimizer
        optimizer = None
    elif optimizer is not None:
        if not isinstance(optimizer, Optimizer):
            raise ConfigError(f"fit: optimizer must be a name ({', '.join(('sgd', 'adam', 'adamw'))}) "
                              f"or an optimizer object, got {type(optimizer).__name__}")
        hyper.setdefault("lr", optimizer.lr)
    recipe = Recipe.from_options(recipe, **hyper)
    train, val = as_split(train, "train"), as_split(val, "val") if val is not None else None
    if shuffle_rng is None:
        shuffle_rng = seeds(seed)[1]
    run = RunDir(run_dir) if run_dir is not None else None
    if run is not None:
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{run}: cannot make the run folder ({exc.strerror}); choose another run_dir") from None
    recipe_meta = (meta or {}).get("recipe")
    runlog = RunLog(run.log) if run is not None else None
    cbs = default_callbacks(recipe, val, run, progress, log, recipe_meta, runlog) + list(callbacks)
    trainer = Trainer(model, recipe, optimizer, shuffle_rng, cbs, log_every, augment=augment)
    return trainer.fit(train)


def as_split(data, name: str) -> Split:
    """A :class:`Split` from a Split (or anything with ``x`` and ``y``) or an
    ``(x, y)`` pair of equal-length arrays."""
    if hasattr(data, "x") and hasattr(data, "y"):
        return data if isinstance(data, Split) else Split(np.asarray(data.x), np.asarray(data.y))
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
            raise ConfigError(f"fit: {name} needs x and y with one entry per sample; got shapes "
                              f"{x.shape} and {y.shape}")
        return Split(x, y)
    raise ConfigError(f"fit: {name} must be an (x, y) pair of arrays or a data split, got {type(data).__name__}")


def _overrides(cb: Callback, hook: str) -> bool:
    fn = getattr(cb, hook, None)
    return fn is not None and getattr(fn, "__func__", None) is not getattr(Callback, hook)


def _n_correct(model, out, yb) -> int:
    if model.is_classifier:
        return int(np.count_nonzero(out.argmax(axis=1) == yb))
    hits = (out > 0.5) == (yb.reshape(out.shape) > 0.5)
    if out.shape[1:] == (1,):
        return int(np.count_nonzero(hits))
    return int(np.count_nonzero(hits.reshape(len(out), -1).all(axis=1)))
