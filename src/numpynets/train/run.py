"""A whole training run, as ``numpynets train`` does it: resolve the model
and recipe, load the data, build and train the model, write the run folder,
test, and return the final figures."""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..data import load_dataset, xor_data
from ..data.augment import AugmentConfig, Augmenter, augment_rng
from ..errors import ConfigError, TrainingDiverged
from ..io.native import save_model
from ..io.original_models import original_kind, write_original
from ..models.recipes import Recipe
from ..jsonfile import read_json
from ..models.original_arch import config_activation
from ..models.registry import (MODELS, build, build_architecture, get_model, get_recipe, load_architecture_file,
                               takes_activation)
from ..optim.schedules import load_schedule_config
from ..runtime import auto_threads, blas_threads, resolve_threads
from .evaluate import check_fits_dataset, evaluate
from .fit import fit, seeds
from .runlog import make_run_dir, write_json


@dataclass
class TrainOptions:
    model: str
    recipe: str | None = None
    overrides: dict = field(default_factory=dict)      # Recipe fields
    arch_options: dict = field(default_factory=dict)   # architecture options (init, widths, ...)
    schedule_config: str | None = None
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


def resolve(opts: TrainOptions) -> tuple[dict, Recipe, str, str]:
    """(architecture, recipe, recipe name, dataset) for the options."""
    # the original's training configs may name the activation between layers
    activation = config_activation(read_json(opts.schedule_config, "schedule config"),
                                   opts.schedule_config) if opts.schedule_config else None
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
    if opts.schedule_config and "schedule" not in overrides:        # flags on top of the file: already folded
        overrides["schedule"] = load_schedule_config(opts.schedule_config).to_dict()
    recipe = recipe.with_overrides(**overrides)
    dataset = choose_dataset(dataset, opts.dataset)
    arch["dataset"] = dataset
    recipe = with_augment(recipe, opts.augment)
    if recipe.augment is not None and dataset == "xor":
        raise ConfigError("--augment transforms images; the xor data set has none: drop --augment")
    return arch, recipe, recipe_name, dataset


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


def load_data(dataset: str, opts: TrainOptions, log=print):
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
    """Undo make_run_dir when the run never started (rmdir only removes empty folders)."""
    for p in (path, path.parent) if parent_too else (path,):
        try:
            p.rmdir()
        except OSError:
            return


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
    run_dir = make_run_dir(opts.out, name, opts.runs_root)   # an unwritable --out fails before loading data
    t_load = time.perf_counter()
    try:
        train, val, test, folder = load_data(dataset, opts, log)
    except BaseException:
        _remove_if_empty(run_dir, parent_too=not opts.out)
        raise
    load_seconds = time.perf_counter() - t_load
    threads_auto = None                                # --threads auto: time this model's step with each count
    if opts.threads in (None, "auto") and len(train):
        threads, threads_auto = auto_threads(model, train.x[:recipe.batch_size], train.y[:recipe.batch_size])
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
    write_json(run_dir / "config.json", config)
    log(f"{name} ({recipe_name} recipe): {model.num_parameters():,d} parameters; "
        f"{len(train):,d} train / {config['val_samples']:,d} val / {len(test):,d} test samples; "
        f"{recipe.optimizer} lr {recipe.lr:g}, batch {recipe.batch_size}, {recipe.epochs} epochs; "
        f"{threads} BLAS thread{'s' * (threads > 1)}; run folder {run_dir}")

    meta = {"recipe": {"name": recipe_name, **recipe.to_dict()}}
    aug_cfg = recipe.augment_config()
    augmenter = Augmenter(aug_cfg, augment_rng(opts.seed)) if aug_cfg else None
    # a million XOR epochs must not print a million lines: report ~100 times per run
    log_every = opts.log_every or (max(1, recipe.epochs // 100) if recipe.epochs > 1000 else 1)
    with blas_threads(threads):
        result = fit(model, train, val, recipe, shuffle_rng, run_dir=run_dir, progress=opts.progress,
                     log=log, log_every=log_every, meta=meta, augment=augmenter)
        if result.message:
            log(result.message)
        if result.stopped == "diverged":
            write_json(run_dir / "config.json", {**config, "result": {"stopped": "diverged"}})
            best = " (best.safetensors holds the best epoch)" if (run_dir / "best.safetensors").exists() else ""
            raise TrainingDiverged(f"{result.message}; nothing saved as model.safetensors{best}")
        summary = {
            "model": name, "recipe": recipe_name, "epochs": result.epochs, "batch_size": recipe.batch_size,
            "train_seconds": round(result.train_seconds, 4),
            "seconds_per_epoch": round(result.train_seconds / max(result.epochs, 1), 4),
            "samples_per_second": round(result.epochs * len(train) / max(result.train_seconds, 1e-9), 1),
            "parameters": model.num_parameters(), "seed": opts.seed, "threads": threads,
            "load_seconds": round(load_seconds, 3), "stopped": result.stopped,
            "best_epoch": result.best_epoch, "run_dir": str(run_dir),
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
    save_model(run_dir / "model.safetensors", model, meta["recipe"], metrics)
    if opts.save_original:
        layout = write_original(opts.save_original, model)
        summary["original_file"] = str(opts.save_original)
        log(f"saved {opts.save_original}: {layout.describe()}")
    write_json(run_dir / "config.json", {**config, "result": metrics})
    summary["model_obj"] = model
    return summary
