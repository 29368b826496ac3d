"""The collaborators of the training loop.

The loop (:class:`~numpynets.train.fit.Trainer`) only trains: it shuffles,
steps the schedule and takes the optimizer steps. Everything else is a
:class:`Callback` it calls at fixed moments:

* ``on_fit_start(trainer)`` before the first epoch (also on a resume);
* ``on_epoch_start(trainer, epoch)`` with the 0-based epoch, after the
  epoch's shuffle, before its first step;
* ``on_step(trainer, step, size, loss_sum)`` after every step (only
  callbacks that define it are called: a step is microseconds for XOR);
* ``on_epoch_end(trainer, end)`` with an :class:`EpochEnd`, in list order;
* ``on_fit_end(trainer)`` once, however the loop ended (also after Ctrl-C,
  divergence or an error).

A callback stops the run with ``trainer.stop(reason, message)``. One that
keeps state a resume needs (a counter, a generator) gives it a
``state_key`` and ``state_dict()`` / ``load_state_dict(d)``: the
checkpoint saves it (see :mod:`numpynets.train.checkpoint`).

The built-in ones, in the order :func:`default_callbacks` lists them:
:class:`ProgressBar`, :class:`Validation`, :class:`Monitor` (best so far),
:class:`BestCheckpoint`, :class:`EarlyStopping`, :class:`TargetStop`,
:class:`CsvLog`, :class:`EpochPrinter`, :class:`Checkpoint`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ..io.native import save_model
from .evaluate import evaluate


@dataclass
class EpochEnd:
    """What the loop hands the callbacks after an epoch.

    ``row`` is the log row (``epoch`` 1-based, ``train_loss``,
    ``train_accuracy``, ``learning_rate``, ``epoch_seconds``; validation
    adds ``val_loss``, ``val_accuracy``). ``report`` says whether this epoch
    is reported (every epoch, or every ``log_every``-th, and the last);
    ``keep`` whether its row goes into the history and the log (reported
    rows, and the row a target stop ends on). ``improved`` is set by
    :class:`Monitor`."""

    epoch: int
    row: dict
    report: bool
    keep: bool
    improved: bool = False


class Callback:
    state_key: str | None = None              # set by callbacks whose state a resume restores

    def on_fit_start(self, trainer) -> None:
        pass

    def on_epoch_start(self, trainer, epoch: int) -> None:
        pass

    def on_step(self, trainer, step: int, size: int, loss_sum: float) -> None:
        pass

    def on_epoch_end(self, trainer, end: EpochEnd) -> None:
        pass

    def on_fit_end(self, trainer) -> None:
        pass


class ProgressBar(Callback):
    """A tqdm bar on stderr: over each epoch's samples, or over the epochs
    when epochs are short (XOR: 4 samples, thousands of epochs). No bar when
    stderr is not a terminal."""

    def __init__(self):
        self.bar = None

    def on_fit_start(self, trainer):
        from tqdm import tqdm

        self.per_epoch = trainer.steps < 20
        total = trainer.recipe.epochs if self.per_epoch else trainer.n
        # disable=None: no bar when stderr is not a terminal (logs, CI, pipes)
        self.bar = tqdm(total=total, initial=trainer.epoch if self.per_epoch else 0, unit="epoch" if
                        self.per_epoch else "img", unit_scale=True, leave=False, mininterval=0.25,
                        file=sys.stderr, dynamic_ncols=True, disable=None)
        if self.per_epoch:                    # no per-step calls for tiny epochs
            self.on_step = None

    def on_epoch_start(self, trainer, epoch):
        if not self.per_epoch:
            self.bar.reset(total=trainer.n)
            self.bar.set_description(f"epoch {epoch + 1}/{trainer.recipe.epochs}", refresh=False)
            self.bar.set_postfix_str("", refresh=False)

    def on_step(self, trainer, step, size, loss_sum):
        self.bar.update(size)
        if step % 50 == 0:
            seen = min((step + 1) * trainer.recipe.batch_size, trainer.n)
            self.bar.set_postfix_str(f"step {step + 1}/{trainer.steps}, loss {loss_sum / seen:.4f}", refresh=False)

    def on_epoch_end(self, trainer, end):
        if self.per_epoch:
            self.bar.update(1)
            if (end.epoch - 1) % 1000 == 0:
                self.bar.set_postfix_str(f"loss {end.row['train_loss']:.4f}", refresh=False)

    def clear(self):
        if self.bar is not None:
            self.bar.clear()

    def on_fit_end(self, trainer):
        if self.bar is not None:
            self.bar.close()


class Validation(Callback):
    """Loss and accuracy on held-out data, on reported epochs."""

    def __init__(self, val):
        self.val = val

    def on_epoch_end(self, trainer, end):
        if end.report and self.val is not None and len(self.val) > 0:
            v = evaluate(trainer.model, self.val.x, self.val.y)
            end.row["val_loss"], end.row["val_accuracy"] = v["loss"], v["accuracy"]


class Monitor(Callback):
    """The best so far: the validation loss (the train loss without
    validation) of reported epochs; an epoch improves on the best when it is
    lower by more than ``min_delta``. Counts the epochs since the last
    improvement (``bad_epochs``). Best epoch and loss live in the result."""

    state_key = "monitor"

    def __init__(self, min_delta: float = 0.0):
        self.min_delta, self.bad_epochs = min_delta, 0

    def on_epoch_end(self, trainer, end):
        if not end.report:
            return
        r = trainer.result
        monitored = end.row.get("val_loss", end.row["train_loss"])
        if monitored < r.best_val_loss - self.min_delta:
            r.best_val_loss, r.best_epoch, self.bad_epochs = monitored, end.epoch, 0
            end.improved = True
        else:
            self.bad_epochs += 1

    def state_dict(self):
        return {"bad_epochs": self.bad_epochs}

    def load_state_dict(self, d):
        self.bad_epochs = int(d["bad_epochs"])


class BestCheckpoint(Callback):
    """Saves the model as ``path`` (``best.safetensors``) on every improvement."""

    def __init__(self, path, recipe_meta: dict | None = None):
        self.path, self.recipe_meta = path, recipe_meta

    def on_epoch_end(self, trainer, end):
        if end.improved:
            row = {k: v for k, v in end.row.items() if v is not None}
            save_model(self.path, trainer.model, self.recipe_meta, {**row, "best_epoch": end.epoch})


class EarlyStopping(Callback):
    """Stops after ``patience`` reported epochs without improvement (see
    :class:`Monitor`, which must come before it)."""

    def __init__(self, monitor: Monitor, patience: int):
        self.monitor, self.patience = monitor, patience

    def on_epoch_end(self, trainer, end):
        bad = self.monitor.bad_epochs
        if end.report and not end.improved and bad >= self.patience:
            r = trainer.result
            trainer.stop("early_stopping", f"early stopping: no improvement of the validation loss for "
                         f"{bad} epochs; best {r.best_val_loss:.6f} at epoch {r.best_epoch}")


class TargetStop(Callback):
    """Stops once the epoch's train loss is below ``stop_loss`` and its train
    accuracy at least ``stop_accuracy`` (either may be None); the row it
    stops on is kept even when it is not a reported one."""

    def __init__(self, stop_loss: float | None, stop_accuracy: float | None):
        self.stop_loss, self.stop_accuracy = stop_loss, stop_accuracy

    def on_epoch_end(self, trainer, end):
        if trainer.stopping:                  # early stopping came first
            return
        row = end.row
        if self.stop_loss is not None and not row["train_loss"] < self.stop_loss:
            return
        if self.stop_accuracy is not None and not row["train_accuracy"] >= self.stop_accuracy:
            return
        end.keep = True
        trainer.stop("target_reached", f"target reached after {end.epoch} epochs")


class CsvLog(Callback):
    """Appends the kept rows to ``log.csv`` (a :class:`RunLog`)."""

    def __init__(self, runlog):
        self.runlog = runlog

    def on_epoch_end(self, trainer, end):
        if end.keep:
            self.runlog.write(end.row)

    def on_fit_end(self, trainer):
        self.runlog.close()


class EpochPrinter(Callback):
    """One line per reported epoch through ``log`` (``print``), clearing the
    progress bar first."""

    def __init__(self, log=print, bar: ProgressBar | None = None):
        self.log, self.bar = log, bar

    def on_epoch_end(self, trainer, end):
        if not end.report:
            return
        row, epochs = end.row, trainer.recipe.epochs
        w = len(str(epochs))
        line = (f"epoch {row['epoch']:>{w}}/{epochs}  train loss {row['train_loss']:.4f} "
                f"acc {row['train_accuracy']:6.2f}%")
        if row.get("val_loss") is not None:
            line += f"  val loss {row['val_loss']:.4f} acc {row['val_accuracy']:6.2f}%"
        line += f"  lr {row['learning_rate']:.3g}  {row['epoch_seconds']:.2f}s"
        if self.bar is not None:
            self.bar.clear()
        self.log(line)


class Checkpoint(Callback):
    """Writes the resumable ``checkpoint.safetensors`` of a run folder: at the
    start (epoch 0, so that even a first epoch cut short resumes) and after
    every kept epoch (every epoch for MNIST; the reported ones of a
    many-epoch XOR run), atomically. After Ctrl-C the message says how to
    resume."""

    def __init__(self, run_dir, recipe_meta: dict | None = None):
        self.run_dir, self.recipe_meta = run_dir, recipe_meta

    def on_fit_start(self, trainer):
        if trainer.epoch == 0:
            self._save(trainer)

    def on_epoch_end(self, trainer, end):
        if end.keep:
            self._save(trainer)

    def _save(self, trainer):
        from .checkpoint import save_checkpoint

        save_checkpoint(self.run_dir, trainer, self.recipe_meta)

    def on_fit_end(self, trainer):
        if trainer.result.stopped == "interrupted":
            trainer.result.message += f"; continue it with: numpynets train --resume {self.run_dir}"


def default_callbacks(recipe, val=None, run_dir=None, progress: bool = True, log=print,
                      recipe_meta: dict | None = None, runlog=None) -> list[Callback]:
    """The collaborators ``numpynets train`` uses, in order (see the module
    docstring). ``run_dir`` (a :class:`~numpynets.rundir.RunDir`) adds the
    best checkpoint, the resumable checkpoint and the CSV log (``runlog``,
    opened by the caller: fresh, or appended to on a resume)."""
    bar = ProgressBar() if progress else None
    monitor = Monitor(recipe.min_delta)
    cbs = [bar, Validation(val), monitor]
    if run_dir is not None:
        cbs.append(BestCheckpoint(run_dir.best, recipe_meta))
    if recipe.patience is not None:
        cbs.append(EarlyStopping(monitor, recipe.patience))
    if recipe.stop_loss is not None or recipe.stop_accuracy is not None:
        cbs.append(TargetStop(recipe.stop_loss, recipe.stop_accuracy))
    if runlog is not None:
        cbs.append(CsvLog(runlog))
    if log is not None:
        cbs.append(EpochPrinter(log, bar))
    if run_dir is not None:
        cbs.append(Checkpoint(run_dir, recipe_meta))
    return [c for c in cbs if c is not None]
