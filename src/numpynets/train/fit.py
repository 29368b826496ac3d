"""The training loop: shuffled mini-batches, validation, early stopping,
best checkpoint, CSV log, divergence and Ctrl-C handling.

One step is the same for every model::

    out = model.forward(xb, training=True)
    loss, dout = model.loss(out, yb)        # fused, stable, mean over the batch
    model.zero_grad()
    model.backward(dout)
    optimizer.step()

``train_seconds`` counts only these steps (plus batch gathering), not data
loading, validation or testing, so runs compare fairly.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.mnist import Split
from ..errors import TrainingDiverged
from ..io.native import save_model
from ..models.recipes import Recipe
from ..optim.optimizers import make_optimizer
from .evaluate import evaluate
from .runlog import RunLog


@dataclass
class FitResult:
    epochs: int = 0                       # completed epochs
    train_seconds: float = 0.0
    history: list = field(default_factory=list)   # the reported epochs' rows (every epoch for MNIST)
    last: dict | None = None                       # the last epoch's row, reported or not
    best_epoch: int | None = None
    best_val_loss: float = math.inf
    stopped: str = "completed"            # completed | early_stopping | target_reached | interrupted | diverged
    message: str = ""


def seeds(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent streams for initialisation and shuffling, from one seed."""
    init_ss, shuffle_ss = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init_ss), np.random.default_rng(shuffle_ss)


def fit(model, train: Split, val: Split | None, recipe: Recipe, shuffle_rng: np.random.Generator,
        run_dir: Path | None = None, progress: bool = True, log=print, log_every: int = 1,
        meta: dict | None = None, augment=None, on_epoch=None) -> FitResult:
    """``augment``: a callable applied to each training batch's images
    (:class:`numpynets.data.augment.Augmenter`); ``on_epoch(row, model)``:
    called after each epoch (benchmarks use it to test as they go)."""
    recipe.validate()
    schedule = recipe.schedule_obj()
    opt = make_optimizer(recipe.optimizer, [(model.flat_params, model.flat_grads)], recipe.lr,
                         momentum=recipe.momentum, nesterov=recipe.nesterov,
                         weight_decay=recipe.weight_decay, betas=recipe.betas,
                         decay_mask=None if recipe.decay_all else [model.decay_mask()])
    X, Y = train.x, train.y
    n, B = len(Y), recipe.batch_size
    steps = -(-n // B)                                        # the last batch may be partial
    per_batch = schedule.per == "batch"
    has_val = val is not None and len(val) > 0
    result = FitResult()
    runlog = RunLog(run_dir / "log.csv") if run_dir else None
    best_path = run_dir / "best.safetensors" if run_dir else None
    bad_epochs = 0
    meta = meta or {}

    # many short epochs (XOR: 4 samples, a million epochs) get one bar over
    # epochs; MNIST gets a bar over each epoch's samples
    epoch_bar = steps < 20
    bar = _progress(progress, recipe.epochs if epoch_bar else n, "epoch" if epoch_bar else "img")
    sample_bar = bar if (bar is not None and not epoch_bar) else None
    # overflow on the way to a NaN loss is reported once, as divergence, not as NumPy warnings
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            for epoch in range(recipe.epochs):
                lr = schedule.lr(recipe.lr, epoch, recipe.epochs)
                opt.lr = lr
                perm = shuffle_rng.permutation(n)
                loss_sum, correct = 0.0, 0
                if sample_bar is not None:
                    bar.reset(total=n)
                    bar.set_description(f"epoch {epoch + 1}/{recipe.epochs}", refresh=False)
                    bar.set_postfix_str("", refresh=False)
                t0 = time.perf_counter()
                for s in range(steps):
                    idx = perm[s * B:(s + 1) * B]
                    xb, yb = X[idx], Y[idx]
                    if augment is not None:
                        xb = augment(xb)
                    if per_batch:
                        opt.lr = schedule.lr(recipe.lr, epoch + s / steps, recipe.epochs)
                    out = model.forward(xb, training=True)
                    loss, dout = model.loss(out, yb)
                    if not math.isfinite(loss):
                        raise TrainingDiverged(
                            f"training diverged at epoch {epoch + 1}, step {s + 1}: loss is {loss}; "
                            f"lower the learning rate (now {opt.lr:g})")
                    model.zero_grad()
                    model.backward(dout)
                    opt.step()
                    m = len(idx)
                    loss_sum += loss * m
                    correct += _n_correct(model, out, yb)
                    if sample_bar is not None:
                        bar.update(m)
                        if s % 50 == 0:
                            bar.set_postfix_str(f"step {s + 1}/{steps}, loss {loss_sum / min((s + 1) * B, n):.4f}",
                                                refresh=False)
                seconds = time.perf_counter() - t0
                if bar is not None and epoch_bar:
                    bar.update(1)
                    if epoch % 1000 == 0:
                        bar.set_postfix_str(f"loss {loss_sum / n:.4f}", refresh=False)
                result.train_seconds += seconds
                result.epochs = epoch + 1
                row = {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": 100.0 * correct / n,
                       "learning_rate": opt.lr if per_batch else lr, "epoch_seconds": seconds}
                last = epoch + 1 == recipe.epochs
                report = last or (epoch + 1) % log_every == 0
                if report and has_val:
                    v = evaluate(model, val.x, val.y)
                    row["val_loss"], row["val_accuracy"] = v["loss"], v["accuracy"]
                result.last = row
                if on_epoch is not None:
                    on_epoch(row, model)
                if report:
                    result.history.append(row)
                    if runlog:
                        runlog.write(row)
                    _print_epoch(log, bar, row, recipe.epochs)
                monitored = row.get("val_loss", row["train_loss"]) if report else None
                if monitored is not None:
                    if monitored < result.best_val_loss - recipe.min_delta:
                        result.best_val_loss, result.best_epoch, bad_epochs = monitored, epoch + 1, 0
                        if best_path:
                            save_model(best_path, model, meta.get("recipe"), {**_public(row), "best_epoch": epoch + 1})
                    else:
                        bad_epochs += 1
                        if recipe.patience is not None and bad_epochs >= recipe.patience:
                            result.stopped = "early_stopping"
                            result.message = (f"early stopping: no improvement of the validation loss for "
                                              f"{bad_epochs} epochs; best {result.best_val_loss:.6f} at epoch "
                                              f"{result.best_epoch}")
                            break
                if _target_reached(recipe, row):
                    result.stopped = "target_reached"
                    result.message = f"target reached after {epoch + 1} epochs"
                    if not report:
                        result.history.append(row)
                        if runlog:
                            runlog.write(row)
                    break
        except KeyboardInterrupt:
            result.stopped = "interrupted"
            result.message = f"interrupted during epoch {result.epochs + 1}; saving what the run has"
        except TrainingDiverged as exc:
            result.stopped = "diverged"
            result.message = str(exc)
        finally:
            if bar is not None:
                bar.close()
            if runlog:
                runlog.close()
    return result


def _n_correct(model, out, yb) -> int:
    if model.is_classifier:
        return int(np.count_nonzero(out.argmax(axis=1) == yb))
    hits = (out > 0.5) == (yb.reshape(out.shape) > 0.5)
    if out.shape[1:] == (1,):
        return int(np.count_nonzero(hits))
    return int(np.count_nonzero(hits.reshape(len(out), -1).all(axis=1)))


def _target_reached(recipe: Recipe, row: dict) -> bool:
    if recipe.stop_loss is None and recipe.stop_accuracy is None:
        return False
    ok = recipe.stop_loss is None or row["train_loss"] < recipe.stop_loss
    return ok and (recipe.stop_accuracy is None or row["train_accuracy"] >= recipe.stop_accuracy)


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if v is not None}


def _progress(enabled: bool, total: int, unit: str):
    if not enabled:
        return None
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI, pipes)
    return tqdm(total=total, unit=unit, unit_scale=True, leave=False, mininterval=0.25,
                file=sys.stderr, dynamic_ncols=True, disable=None)


def _print_epoch(log, bar, row: dict, epochs: int) -> None:
    w = len(str(epochs))
    line = (f"epoch {row['epoch']:>{w}}/{epochs}  train loss {row['train_loss']:.4f} "
            f"acc {row['train_accuracy']:6.2f}%")
    if row.get("val_loss") is not None:
        line += f"  val loss {row['val_loss']:.4f} acc {row['val_accuracy']:6.2f}%"
    line += f"  lr {row['learning_rate']:.3g}  {row['epoch_seconds']:.2f}s"
    if bar is not None:
        bar.clear()
    log(line)
