"""The resumable checkpoint, ``checkpoint.safetensors`` in a run folder.

Written after every kept epoch (and at the start) by the
:class:`~numpynets.train.callbacks.Checkpoint` callback, atomically (a temp
file, synced, then one rename), so a hard stop leaves the previous one or
the new one whole. It is a numpynets model file like ``model.safetensors``
(``numpynets evaluate`` reads it: the weights of the last completed epoch)
with, in addition:

* tensors named ``training/<object>/<key>...``: the array state of the
  training objects (``training/optimizer/state/0/velocity``, Adam's ``m``
  and ``v``); model loading skips them;
* the metadata key ``training``: JSON with ``version``, ``epoch`` (epochs
  completed), ``total_epochs``, ``schedule`` (the parsed schedule, a check:
  its position is the epoch), the result so far (``train_seconds``,
  ``best_epoch``, ``best_val_loss``, ``history``, ``last``) and ``state``:
  the rest of every object's state, arrays replaced by
  ``{"__tensor__": name}``.

The objects are found, not listed: the optimizer, the shuffling generator,
``model.rng`` and every ``layer.rng`` (NumPy generators: their
``bit_generator.state``), every callback with a ``state_key`` and
``state_dict()``, and whatever is in ``trainer.extra_state`` (a dict
``name -> object``: an augmentation generator, say). An object with
``state_dict()`` / ``load_state_dict(d)`` is saved through them; ``d`` may
nest dicts and lists of numbers, strings and arrays. Layer buffers are part
of the model file itself.
"""

from __future__ import annotations

import json
import math

import numpy as np

from ..atomic import replace_atomically
from ..errors import NumpynetsError
from ..io.native import TRAINING_PREFIX, model_file_contents, write_safetensors
from ..optim.optimizers import Optimizer

VERSION = 1


class CheckpointError(NumpynetsError):
    """A checkpoint that is missing, damaged, or does not fit the run."""


# -- the state of one object ------------------------------------------------------

def state_of(obj):
    """The state of ``obj`` as nested dicts/lists of JSON values and arrays."""
    if hasattr(obj, "state_dict"):
        return obj.state_dict()
    if isinstance(obj, np.random.Generator):
        return {"bit_generator": obj.bit_generator.state}
    if isinstance(obj, Optimizer):
        return {"kind": type(obj).__name__, "t": obj.t, "lr": obj.lr,
                "state": [dict(s) for s in obj.state]}
    raise TypeError(f"no state_dict() for a {type(obj).__name__}")


def load_state(obj, state) -> None:
    """Restore what :func:`state_of` returned, in place."""
    if hasattr(obj, "load_state_dict"):
        obj.load_state_dict(state)
    elif isinstance(obj, np.random.Generator):
        obj.bit_generator.state = state["bit_generator"]
    elif isinstance(obj, Optimizer):
        if state["kind"] != type(obj).__name__ or len(state["state"]) != len(obj.state):
            raise CheckpointError(f"the checkpoint holds a {state['kind']} optimizer's state, "
                                  f"the run has a {type(obj).__name__}")
        for mine, saved in zip(obj.state, state["state"]):
            if set(mine) != set(saved):
                raise CheckpointError(f"optimizer state {sorted(saved)} in the checkpoint, {sorted(mine)} expected")
            for k, a in mine.items():
                if a.shape != saved[k].shape:
                    raise CheckpointError(f"optimizer state {k}: shape {saved[k].shape}, expected {a.shape}")
                a[...] = saved[k]                          # in place: the update chunks are views of it
        obj.t, obj.lr = int(state["t"]), float(state["lr"])
    else:
        raise TypeError(f"no load_state_dict() for a {type(obj).__name__}")


def stateful_objects(trainer) -> dict:
    """name -> object whose state an exact resume needs."""
    objs = {"optimizer": trainer.optimizer, "shuffle_rng": trainer.rng}
    seen = {id(trainer.rng)}
    model = trainer.model
    gens = [("model_rng", getattr(model, "rng", None))]
    gens += [(f"layer{i}_rng", getattr(layer, "rng", None)) for i, layer in enumerate(getattr(model, "layers", ()))]
    for name, g in gens:
        if isinstance(g, np.random.Generator) and id(g) not in seen:   # one generator handed to many layers: once
            seen.add(id(g))
            objs[name] = g
    for cb in trainer.callbacks:
        key = getattr(cb, "state_key", None)
        if key and hasattr(cb, "state_dict"):
            objs[f"callback_{key}"] = cb
    objs.update(getattr(trainer, "extra_state", {}))
    return objs


def _split(value, path: str, tensors: dict):
    """Arrays out of a nested state, into ``tensors``; placeholders left."""
    if isinstance(value, np.ndarray):
        tensors[path] = np.ascontiguousarray(value)
        return {"__tensor__": path}
    if isinstance(value, dict):
        return {str(k): _split(v, f"{path}/{k}", tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _join(value, tensors: dict):
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            if value["__tensor__"] not in tensors:
                raise CheckpointError(f"tensor {value['__tensor__']} is missing")
            return tensors[value["__tensor__"]]
        return {k: _join(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, tensors) for v in value]
    return value


# -- the file ---------------------------------------------------------------------

def save_checkpoint(run_dir, trainer, recipe_meta: dict | None = None) -> None:
    """Write ``run_dir.checkpoint`` for the trainer's completed epochs."""
    r = trainer.result
    tensors, meta = model_file_contents(trainer.model, recipe_meta,
                                        {"epoch": r.epochs, "checkpoint": True})
    state = {name: _split(state_of(obj), f"{TRAINING_PREFIX}{name}", tensors)
             for name, obj in stateful_objects(trainer).items()}
    info = {"version": VERSION, "epoch": r.epochs, "total_epochs": trainer.recipe.epochs,
            "schedule": trainer.schedule.to_dict(), "train_seconds": r.train_seconds,
            "best_epoch": r.best_epoch, "best_val_loss": r.best_val_loss if math.isfinite(r.best_val_loss) else None,
            "history": r.history, "last": r.last, "stopped": r.stopped, "message": r.message, "state": state}
    meta["training"] = json.dumps(info)

    try:
        replace_atomically(run_dir.checkpoint, lambda tmp: write_safetensors(tmp, tensors, meta))
    except OSError as exc:
        kept = f"the run folder keeps epoch {_saved_epoch(run_dir)}" if run_dir.checkpoint.exists() else \
            "nothing was saved"
        raise NumpynetsError(f"{run_dir.checkpoint}: cannot write the checkpoint ({exc.strerror or exc}); "
                             f"{kept}: free some space or fix the folder, then: numpynets train --resume {run_dir}"
                             ) from None


def _saved_epoch(run_dir) -> str:
    try:
        return str(read_checkpoint(run_dir)[1]["epoch"])
    except NumpynetsError:
        return "?"


def read_checkpoint(run_dir):
    """``(model, training info, training tensors)`` of a run folder's checkpoint."""
    from ..io.native import load_native, read_native

    path = run_dir.checkpoint
    try:
        model, meta = load_native(path)
        _, tensors = read_native(path)
    except NumpynetsError as exc:
        raise CheckpointError(f"{run_dir}: damaged checkpoint, it cannot be resumed ({exc})") from None
    try:
        info = json.loads(meta["training"])
        if not isinstance(info, dict) or info.get("version") != VERSION:
            raise ValueError(f"version {info.get('version') if isinstance(info, dict) else None!r}")
        for k in ("epoch", "total_epochs", "state", "history"):
            if k not in info:
                raise ValueError(f"no {k!r}")
        if not isinstance(info["epoch"], int) or info["epoch"] < 0:
            raise ValueError("bad epoch")
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: not a resumable checkpoint ({exc}); it cannot be resumed") from None
    training = {n: t for n, t in tensors.items() if n.startswith(TRAINING_PREFIX)}
    return model, info, training


def restore(trainer, info: dict, tensors: dict, train_on: bool = True) -> None:
    """Put the trainer where the checkpoint left it: epoch, result so far,
    optimizer, generators, callback counters. With ``train_on`` false, a
    run the checkpoint records as stopped (early stopping, target reached)
    stays stopped: its fit only finishes."""
    r = trainer.result
    stopped = info.get("stopped", "completed")
    if not train_on and stopped in ("early_stopping", "target_reached"):
        trainer.stopping, r.stopped, r.message = True, stopped, str(info.get("message", ""))
    else:
        trainer.stopping, r.stopped, r.message = False, "completed", ""
    r.epochs, r.train_seconds = info["epoch"], float(info.get("train_seconds", 0.0))
    r.best_epoch = info.get("best_epoch")
    r.best_val_loss = math.inf if info.get("best_val_loss") is None else float(info["best_val_loss"])
    r.history, r.last = list(info["history"]), info.get("last")
    objs = stateful_objects(trainer)
    state = info["state"]
    missing = sorted(set(objs) - set(state))
    if missing:
        raise CheckpointError(f"the checkpoint has no state for {missing}; it was written by another "
                              "configuration and cannot be resumed")
    try:
        for name, obj in objs.items():
            load_state(obj, _join(state[name], tensors))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"damaged training state in the checkpoint ({exc!r}); it cannot be resumed") from None
