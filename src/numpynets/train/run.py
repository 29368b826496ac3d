"""A whole training run, as ``numpynets train`` does it: resolve the model
and recipe (once), load the data, build the model, train it with
:class:`~numpynets.train.fit.Trainer` and the standard callbacks, write the
run folder (:class:`~numpynets.rundir.RunDir`), test, and return the final
figures. :func:`resume_training` continues such a run from its checkpoint.
"""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import __version__
from ..data import load_dataset, xor_data
from ..data.augment import AugmentConfig, Augmenter, augment_rng
from ..errors import ConfigError, NumpynetsError, TrainingDiverged
from ..io.native import save_model
from ..io.original_models import original_kind, write_original
from ..jsonfile import read_json
from ..models.original_arch import config_activation
from ..models.recipes import Recipe
from ..models.registry import (MODELS, build, build_architecture, get_model, get_recipe, load_architecture_file,
                               takes_activation)
from ..optim.schedules import schedule_from_dict
from ..rundir import RunDir
from ..runtime import blas_threads, resolve_threads
from .callbacks import default_callbacks
from .checkpoint import read_checkpoint, restore
from .evaluate import check_fits_dataset, evaluate
from .fit import Trainer, seeds
from .threads import ThreadTuner, auto_start
from .runlog import RunLog, write_json


@dataclass
class TrainOptions:
    """What ``numpynets train`` was asked, parsed once from the command line
    (or given by a script); :func:`resolve` turns it into the run's
    architecture and recipe."""

    model: str
    recipe: str | None = None
    overrides: dict = field(default_factory=dict)      # Recipe fields (None: the recipe's)
    arch_options: dict = field(default_factory=dict)   # architecture options (init, widths, ...)
    schedule_config: str | None = None
    schedule_flags: dict = field(default_factory=dict)  # kind / warmup_epochs / per, on top of the schedule
    seed: int = 0
    data_dir: str | None = None
    out: str | None = None
    runs_root: str = "runs"
    limit: int | None = None
    val_fraction: float = 0.1
    verify: bool = True
    threads: str | int | None = "auto"
    progress: bool = True
    log_every: int | None = None
    save_original: str | None = None                   # also write the original's .bin file here
    dataset: str | None = None                         # --dataset; None: the model's own (mnist, xor)
    augment: dict | bool | None = None                 # True/dict: on (dict: strengths), False: off, None: the recipe's


# The functional form keeps the field types as classes: with the class form
# and postponed annotations they are strings that pdoc cannot resolve for a
# NamedTuple (mitmproxy/pdoc#765), a warning that fails the API reference.
Resolved = NamedTuple("Resolved", [("arch", dict), ("recipe", Recipe), ("recipe_name", str), ("dataset", str)])
Resolved.__doc__ = "What :func:`resolve` returns: the architecture, the recipe, its name and the dataset."


def resolve(opts: TrainOptions) -> Resolved:
    """The architecture, recipe (validated), recipe name and dataset of the
    options: the built-in model's recipe, then the schedule file, then the
    schedule flags and the other overrides on top."""
    # the schedule file, read once; the original's training configs may also
    # name the activation between layers
    sched_cfg = read_json(opts.schedule_config, "schedule config") if opts.schedule_config else None
    activation = config_activation(sched_cfg, opts.schedule_config) if opts.schedule_config else None
    if opts.model in MODELS:
        spec = get_model(opts.model)
        recipe_name = opts.recipe or "default"
        recipe = get_recipe(spec, recipe_name)
        dataset = spec.dataset
        if activation is not None and not takes_activation(spec):
            raise ConfigError(f"{opts.schedule_config}: names the activation {activation['type']}, but the "
                              f"{spec.name} model has no activation option (mlp and cnn do)")
        from_config = {"activation": activation} if activation is not None else {}
        arch_opts = {**recipe.arch, **from_config, **opts.arch_options}     # --activation wins
        arch = build_architecture(spec, arch_opts)
    elif opts.model.endswith(".json") or Path(opts.model).is_file():
        arch = load_architecture_file(opts.model, activation)
        if opts.recipe not in (None, "default"):
            raise ConfigError(f"{opts.model}: an architecture file has only the default recipe")
        recipe_name, recipe = "default", Recipe()
        dataset = arch.get("dataset", "mnist")
    else:
        raise ConfigError(f"unknown model {opts.model!r}; choose one of {', '.join(MODELS)} "
                          "or give an architecture .json file")
    overrides = dict(opts.overrides)
    schedule = _schedule_file(sched_cfg, opts.schedule_config) if opts.schedule_config else recipe.schedule
    schedule = merge_schedule_flags(schedule, **opts.schedule_flags)
    if schedule is not recipe.schedule:
        overrides["schedule"] = schedule
    recipe = recipe.with_overrides(**overrides)
    dataset = choose_dataset(dataset, opts.dataset)
    arch["dataset"] = dataset
    recipe = with_augment(recipe, opts.augment)
    if recipe.augment is not None and dataset == "xor":
        raise ConfigError("--augment transforms images; the xor data set has none: drop --augment")
    return Resolved(arch, recipe, recipe_name, dataset)


def choose_dataset(own: str, chosen: str | None) -> str:
    """The run's data set: ``--dataset`` when given (any registered image
    data set for an image model), else the model's own."""
    from ..data.datasets import get_dataset

    if own == "xor":
        if chosen not in (None, "xor"):
            raise ConfigError(f"the xor model trains only on its four XOR samples; drop --dataset {chosen}")
        return own
    get_dataset(chosen or own)                           # an unknown name (also an architecture file's) lists the known ones
    return chosen or own


def with_augment(recipe: Recipe, augment) -> Recipe:
    """The recipe with ``--augment`` / ``--no-augment`` / strengths applied:
    strengths start from the recipe's (or the defaults) and are validated."""
    from dataclasses import replace

    if augment is None:
        return recipe
    if augment is False:
        return replace(recipe, augment=None)
    base = recipe.augment or AugmentConfig().to_dict()
    strengths = {**base, **(augment if isinstance(augment, dict) else {})}   # True or {}: the defaults
    return replace(recipe, augment=AugmentConfig.from_dict(strengths).to_dict())


def augmenter(recipe: Recipe, seed: int) -> Augmenter | None:
    """The run's augmenter (its own stream of ``seed``), or None when the recipe does not augment."""
    cfg = recipe.augment_config()
    return Augmenter(cfg, augment_rng(seed)) if cfg else None


def _schedule_file(cfg, path) -> dict:
    try:
        return schedule_from_dict(cfg).to_dict()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def merge_schedule_flags(schedule: dict, kind: str | None = None, warmup_epochs: float | None = None,
                         per: str | None = None) -> dict:
    """``--schedule``/``--warmup``/``--schedule-per`` on top of a schedule
    dict: a new kind starts from that kind's defaults (keeping ``per``); the
    others set one field. The same dict back when no flag is given."""
    if kind is None and warmup_epochs is None and per is None:
        return schedule
    sched = dict(schedule)
    if kind is not None and kind != sched.get("kind"):
        sched = {"kind": kind, "per": sched.get("per", "epoch")}
    if warmup_epochs is not None:
        sched["warmup_epochs"] = warmup_epochs
    if per is not None:
        sched["per"] = per
    return sched


def load_data(dataset: str, opts, log=print):
    if dataset == "xor":
        data = xor_data()
        return data, None, data, None
    if opts.limit is not None and opts.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {opts.limit}")
    mn = load_dataset(dataset, opts.data_dir, val_fraction=opts.val_fraction, limit=opts.limit,
                      verify=opts.verify, log=log)
    return mn.train, mn.val, mn.test, mn.folder


def _check_writable(path, option: str) -> None:
    """Fail now, not after the training, when ``path`` cannot be written:
    a folder, or a folder that is missing or read-only."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; give {option} a file name")
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".numpynets-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write there ({exc.strerror}); choose another {option} path") from None


def _remove_if_empty(path: Path, parent_too: bool) -> None:
    """Undo RunDir.create when the run never started (rmdir only removes empty folders)."""
    for p in (path, path.parent) if parent_too else (path,):
        try:
            p.rmdir()
        except OSError:
            return


def _log_every(opts, recipe: Recipe) -> int:
    # a million XOR epochs must not print a million lines: report ~100 times per run
    return opts.log_every or (max(1, recipe.epochs // 100) if recipe.epochs > 1000 else 1)


def run_training(opts: TrainOptions, log=print) -> dict:
    arch, recipe, recipe_name, dataset = resolve(opts)
    if not 0 <= opts.val_fraction < 1:
        raise ConfigError(f"validation split must be in [0, 1), got {opts.val_fraction}")
    threads = resolve_threads(opts.threads)
    init_rng, shuffle_rng = seeds(opts.seed)
    model = build(arch, seed=init_rng)
    check_fits_dataset(model, dataset, opts.model)      # before a run folder exists or data is read
    if opts.save_original:                             # refuse before training, not after
        original_kind(model)
        _check_writable(opts.save_original, "--save-original")
    name = arch.get("name", "custom")
    run = RunDir.create(opts.out, name, opts.runs_root)   # an unwritable --out fails before loading data
    t_load = time.perf_counter()
    try:
        train, val, test, folder = load_data(dataset, opts, log)
    except BaseException:
        _remove_if_empty(run.path, parent_too=not opts.out)
        raise
    load_seconds = time.perf_counter() - t_load
    threads_auto = tuner = None                        # --threads auto: time this model's step with each count,
    if opts.threads in (None, "auto") and len(train):  # and re-check during the run (XOR: microsecond steps, no tuning)
        threads, threads_auto, tuner = auto_start(model, train.x[:recipe.batch_size], train.y[:recipe.batch_size],
                                                  tune=dataset != "xor")
    config = {
        "model": name, "recipe_name": recipe_name, "recipe": recipe.to_dict(), "architecture": arch,
        "seed": opts.seed, "dataset": dataset, "data_dir": str(folder) if folder else None,
        "limit": opts.limit, "val_fraction": opts.val_fraction, "threads": threads,
        "train_samples": len(train), "val_samples": len(val) if val is not None else 0,
        "test_samples": len(test), "numpynets": __version__, "numpy": np.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if threads_auto:
        config["threads_auto"] = threads_auto
    write_json(run.config, config)
    log(f"{name} ({recipe_name} recipe): {model.num_parameters():,d} parameters; "
        f"{len(train):,d} train / {config['val_samples']:,d} val / {len(test):,d} test samples; "
        f"{recipe.optimizer} lr {recipe.lr:g}, batch {recipe.batch_size}, {recipe.epochs} epochs; "
        f"{threads} BLAS thread{'s' * (threads > 1)}; run folder {run}")
    recipe_meta = {"name": recipe_name, **recipe.to_dict()}
    trainer = _trainer(model, recipe, shuffle_rng, val, run, RunLog(run.log), opts.progress, log, recipe_meta,
                       _log_every(opts, recipe), augmenter(recipe, opts.seed))
    if tuner is not None:                              # the machine's load can change during the run
        trainer.callbacks.append(tuner)
    return _train_and_finish(trainer, train, test, run, config, recipe_meta, threads, opts.seed,
                             load_seconds, opts.save_original, log)


def _trainer(model, recipe, shuffle_rng, val, run, runlog, progress, log, recipe_meta, log_every,
             augment=None) -> Trainer:
    callbacks = default_callbacks(recipe, val, run, progress, log, recipe_meta, runlog)
    return Trainer(model, recipe, shuffle_rng=shuffle_rng, callbacks=callbacks, log_every=log_every, augment=augment)


def _train_and_finish(trainer, train, test, run: RunDir, config: dict, recipe_meta: dict, threads: int, seed: int,
                      load_seconds: float, save_original, log) -> dict:
    model, recipe = trainer.model, trainer.recipe
    name, recipe_name = config["model"], config["recipe_name"]
    with blas_threads(threads):
        result = trainer.fit(train)
        tuner = next((cb for cb in trainer.callbacks if isinstance(cb, ThreadTuner)), None)
        if tuner is not None:                          # record the count(s) really used
            used = tuner.record()
            threads = used.pop("threads")
            config = {**config, "threads": threads, "threads_auto": {**config.get("threads_auto", {}), **used}}
            if used["switches"]:
                log(f"--threads auto: {threads} BLAS thread{'s' * (threads > 1)} for most steps "
                    f"(steps by thread count: {used['steps_by_threads']}; {len(used['switches'])} switches)")
        if result.message:
            log(result.message)
        if result.stopped == "diverged":
            write_json(run.config, {**config, "result": {"stopped": "diverged"}})
            best = f" ({RunDir.BEST} holds the best epoch)" if run.best.exists() else ""
            raise TrainingDiverged(f"{result.message}; nothing saved as {RunDir.MODEL}{best}")
        summary = {
            "model": name, "recipe": recipe_name, "epochs": result.epochs, "batch_size": recipe.batch_size,
            "train_seconds": round(result.train_seconds, 4),
            "seconds_per_epoch": round(result.train_seconds / max(result.epochs, 1), 4),
            "samples_per_second": round(result.epochs * len(train) / max(result.train_seconds, 1e-9), 1),
            "parameters": model.num_parameters(), "seed": seed, "threads": threads,
            **({"threads_used": config["threads_auto"]["steps_by_threads"]} if tuner is not None else {}),
            "load_seconds": round(load_seconds, 3), "stopped": result.stopped,
            "best_epoch": result.best_epoch, "run_dir": str(run),
        }
        if result.last:
            last = result.last
            summary.update(final_loss=last["train_loss"], train_accuracy=last["train_accuracy"])
            if last.get("val_accuracy") is not None:
                summary.update(val_loss=last["val_loss"], val_accuracy=last["val_accuracy"])
        if result.stopped != "interrupted":
            try:
                t = evaluate(model, test.x, test.y)
            except KeyboardInterrupt:                  # the training is done: keep it, without test figures
                summary["stopped"] = "interrupted"
                log("interrupted during the test evaluation; saving the trained model without test figures")
            else:
                summary.update(test_accuracy=round(t["accuracy"], 4), test_loss=round(t["loss"], 6))
                summary["test_result"] = t
    metrics = {k: v for k, v in summary.items() if k != "test_result"}
    save_model(run.model, model, recipe_meta, metrics)
    if save_original:
        layout = write_original(save_original, model)
        summary["original_file"] = str(save_original)
        log(f"saved {save_original}: {layout.describe()}")
    write_json(run.config, {**config, "result": metrics})
    summary["model_obj"] = model
    return summary


@dataclass
class ResumeOptions:
    """``numpynets train --resume RUN_DIR``: the run folder and what may
    change on a resume (the rest comes from its config.json)."""

    run_dir: str
    epochs: int | None = None            # the new total; default: the run's
    threads: str | int | None = None     # default: the run's (an exact resume needs the same)
    data_dir: str | None = None          # default: the run's
    verify: bool = True
    progress: bool = True
    log_every: int | None = None
    save_original: str | None = None


# config.json keys a resume reads, with their types
_RESUME_KEYS = {"model": str, "recipe_name": str, "recipe": dict, "architecture": dict, "seed": int,
                "dataset": str, "val_fraction": (int, float), "threads": int, "train_samples": int}


def resume_training(ropts: ResumeOptions, log=print) -> dict:
    """Continue the run in ``ropts.run_dir`` from its last completed epoch:
    weights, optimizer state, schedule position, shuffling generator,
    best-so-far and early-stopping counters and the log as they were; with
    the same threads the end result is bit-identical to an uninterrupted
    run's."""
    run = RunDir.existing(ropts.run_dir)
    config = read_json(run.config, "run configuration")
    if not isinstance(config, dict):
        raise ConfigError(f"{run.config}: not a run configuration (a JSON object); it cannot be resumed")
    for key, typ in _RESUME_KEYS.items():
        if not isinstance(config.get(key), typ) or isinstance(config.get(key), bool):
            raise ConfigError(f"{run.config}: no valid {key!r}; the run cannot be resumed")
    model, info, tensors = read_checkpoint(run)
    try:
        recipe = Recipe.from_options(None, **{**config["recipe"], "betas": tuple(config["recipe"].get("betas", (0.9, 0.999)))})
    except (NumpynetsError, TypeError) as exc:
        raise ConfigError(f"{run.config}: bad recipe ({exc}); the run cannot be resumed") from None
    done = info["epoch"]
    result = config.get("result")
    ended = isinstance(result, dict) and result.get("stopped") not in ("interrupted", None) and run.model.exists()
    if ropts.epochs is not None:
        if ropts.epochs <= done:
            raise ConfigError(f"--epochs {ropts.epochs}: the run has already completed {done} epochs; "
                              f"give a larger total")
        recipe = recipe.with_overrides(epochs=ropts.epochs)
    elif ended and (done >= recipe.epochs or result.get("stopped") in ("early_stopping", "target_reached")):
        raise ConfigError(f"{run}: the run has completed all its {done} epochs; "
                          f"give --epochs N (N > {done}) to train it further")
    # else: an unfinished run (interrupted, killed, crashed) goes on; one
    # stopped after its last epoch, or by early stopping, is only finished
    threads = resolve_threads(ropts.threads) if ropts.threads not in (None, "auto") else config["threads"]
    check_fits_dataset(model, config["dataset"], str(run))
    if ropts.save_original:
        original_kind(model)
        _check_writable(ropts.save_original, "--save-original")
    data_opts = TrainOptions(model=config["model"], data_dir=ropts.data_dir or config.get("data_dir"),
                             limit=config.get("limit"), val_fraction=config["val_fraction"], verify=ropts.verify)
    t_load = time.perf_counter()
    train, val, test, folder = load_data(config["dataset"], data_opts, log)
    load_seconds = time.perf_counter() - t_load
    if len(train) != config["train_samples"]:
        raise ConfigError(f"{run}: the run trained on {config['train_samples']} samples, the data now gives "
                          f"{len(train)}; give the same data (--data-dir) to resume it")
    _clean_temp_files(run)
    config = {**config, "recipe": recipe.to_dict(), "threads": threads,
              "resumed": [*config.get("resumed", []), {"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "epoch": done}]}
    config.pop("result", None)
    write_json(run.config, config)
    log(f"{config['model']} ({config['recipe_name']} recipe): resuming {run} after epoch {done} of "
        f"{recipe.epochs}; {threads} BLAS thread{'s' * (threads > 1)}")
    recipe_meta = {"name": config["recipe_name"], **recipe.to_dict()}
    runlog = RunLog(run.log, keep_epochs=done)
    trainer = _trainer(model, recipe, seeds(config["seed"])[1], val, run, runlog, ropts.progress, log,
                       recipe_meta, _log_every(ropts, recipe), augmenter(recipe, config["seed"]))
    try:
        restore(trainer, info, tensors, train_on=ropts.epochs is not None)
    except BaseException:
        runlog.close()
        raise
    return _train_and_finish(trainer, train, test, run, config, recipe_meta, threads, config["seed"],
                             load_seconds, ropts.save_original, log)


def _clean_temp_files(run: RunDir) -> None:
    """Temp files a hard stop left mid-write (``.NAME.XXXX.part``)."""
    for p in run.path.glob(".*.part"):
        try:
            p.unlink()
        except OSError:
            pass
