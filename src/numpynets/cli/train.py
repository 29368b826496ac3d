"""numpynets train MODEL [options]"""

from __future__ import annotations

import argparse

from ..models.registry import MODELS
from ..optim.optimizers import OPTIMIZERS
from ..optim.schedules import KINDS
from ..rundir import RunDir
from .common import add_data_options, add_dataset_option, add_threads_option, print_json

# architecture options: (flag, key, type, help); a model takes the ones it knows
ARCH_FLAGS = [
    ("--hidden", "hidden", int, "mlp, convnet: hidden units (default 512; convnet 256)"),
    ("--init", "init", str, "weight initialisation: xavier, xavier_normal, he, he_uniform"),
    ("--channels", "channels", int, "cnn: convolution filters (original 8); convnet: first block (32, the second twice as many)"),
    ("--d-model", "d_model", int, "attention: token width D (original 64; 16 in its first version)"),
    ("--ff-dim", "ff_dim", int, "attention: feed-forward width F (original 128)"),
    ("--heads", "heads", int, "attention: attention heads; must divide D (original 1)"),
    ("--residual", "residual", str, "attention: residual connections, on|off (original off)"),
    ("--layernorm", "layernorm", str, "attention: pre-norm LayerNorm, on|off (original off)"),
    ("--blocks", "blocks", int, "attention: attention + feed-forward blocks stacked (original 1)"),
    ("--activation", "activation", str, "mlp, cnn: hidden activation: relu, leaky_relu, elu, gelu, swish "
     "(or silu), tanh, sigmoid (default relu)"),
    ("--dropout", "dropout", float, "mlp, cnn, convnet: dropout probability P in [0, 1) after the hidden activation "
     "(mlp, convnet) or before the linear layer (cnn); off by default (convnet: 0.4; 0 turns it off)"),
    ("--batchnorm", "batchnorm", bool, "mlp, cnn, convnet: BatchNorm between the hidden linear layer (mlp) or the "
     "convolution (cnn, convnet) and its activation"),
]

# augmentation strengths: (flag, AugmentConfig field, metavar, help)
AUGMENT_FLAGS = [
    ("--augment-shift", "shift", "PX", "largest shift along each axis, pixels (default 2)"),
    ("--augment-rotate", "rotate", "DEG", "largest rotation either way, degrees (default 10, at most 180)"),
    ("--augment-scale", "scale", "S", "largest relative zoom: size times [1-S, 1+S] (default 0.1)"),
    ("--augment-shear", "shear", "DEG", "largest shear, degrees (default 0: off)"),
    ("--augment-elastic", "elastic", "PX", "largest elastic displacement, pixels (default 0: off)"),
]


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model", description="Train a built-in model or an architecture "
                       "JSON file; writes model.safetensors, best.safetensors, log.csv and config.json.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", metavar="MODEL", nargs="?",
                   help=f"one of {', '.join(MODELS)}, or an architecture .json file")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last completed "
                   "epoch, exactly (bit for bit, with the same threads); --epochs sets a new total")
    p.add_argument("--recipe", help="'default' (our best), 'original' (the Rust project's hyperparameters), "
                   "or 'original-small' (attention: its first, D=16 version)")
    h = p.add_argument_group("hyperparameters (override the recipe's)")
    h.add_argument("--epochs", type=int)
    h.add_argument("--batch-size", type=int)
    h.add_argument("--lr", type=float, help="(initial) learning rate")
    h.add_argument("--optimizer", choices=OPTIMIZERS)
    h.add_argument("--momentum", type=float)
    h.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None)
    h.add_argument("--weight-decay", type=float, help="SGD's L2 / AdamW's decoupled weight decay; it applies "
                   "to weight matrices and kernels only, not to biases, normalisation scales and shifts or "
                   "position embeddings (see --decay-all)")
    h.add_argument("--decay-all", action=argparse.BooleanOptionalAction, default=None,
                   help="apply the weight decay to every parameter, biases and normalisation included "
                   "(the attention default recipe does, as it was tuned that way)")
    h.add_argument("--schedule", choices=KINDS, help="learning-rate schedule")
    h.add_argument("--schedule-config", metavar="F.json",
                   help="schedule from a JSON file (the original project's files work unchanged; its "
                   "activation_function, leaky_relu_alpha and elu_alpha set the activation of mlp, cnn and "
                   "the original's architecture files)")
    h.add_argument("--warmup", type=float, metavar="EPOCHS", help="linear warm-up length")
    h.add_argument("--schedule-per", choices=("epoch", "batch"), help="step the schedule per epoch or per batch")
    h.add_argument("--patience", type=int, help="early stopping: epochs without validation improvement")
    h.add_argument("--min-delta", type=float, help="early stopping: smallest improvement that counts")
    a = p.add_argument_group("architecture")
    for flag, key, typ, help_ in ARCH_FLAGS:
        kind = {"action": "store_true", "default": None} if typ is bool else {"type": typ}
        a.add_argument(flag, dest=f"arch_{key}", help=help_, **kind)
    g = p.add_argument_group("augmentation (a random affine transform of each training image, seeded by --seed)")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="augment the training images (convnet: on by default; original recipes: off)")
    for flag, key, metavar, help_ in AUGMENT_FLAGS:
        g.add_argument(flag, dest=f"augment_{key}", type=float, metavar=metavar, help=help_ + "; implies --augment")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--limit", type=int, metavar="N", help="train on the first N images of the training file")
    r.add_argument("--val-split", type=float, default=0.1, help="fraction of the training file held out "
                   "for validation (its last images, as in the original)")
    r.add_argument("--out", metavar="DIR", help="run folder (default: runs/MODEL-TIMESTAMP)")
    r.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    r.add_argument("--save-original", metavar="FILE.bin",
                   help="also write the final model as the original project's .bin file (for its "
                   "digit_recognizer.py: an MLP is written with float64 elements)")
    r.add_argument("--json", action="store_true", help="print the final figures as one JSON line, last")
    add_dataset_option(r, "data set to train on (default: the model's own, mnist)")
    add_data_options(r)
    add_threads_option(r)
    p.set_defaults(func=run)
    _DEFAULTS.update({a.dest: a.default for a in p._actions})


def augment_option(args):
    """None (the recipe's), False (--no-augment) or a dict of strengths (--augment and/or strengths)."""
    from ..errors import ConfigError

    strengths = {key: getattr(args, f"augment_{key}") for _, key, _, _ in AUGMENT_FLAGS
                 if getattr(args, f"augment_{key}") is not None}
    if args.augment is False:
        if strengths:
            raise ConfigError("--no-augment with augmentation strengths: drop one of them")
        return False
    if args.augment or strengths:
        return strengths
    return None


_DEFAULTS: dict = {}                                   # the train parser's defaults, to see what was given


# options a resume may be given; every other one comes from the run's config.json
RESUME_OPTIONS = {"resume", "model", "epochs", "threads", "data_dir", "verify", "progress", "json", "save_original",
                  "func", "command"}


def options_from_args(args):
    """The parsed command line as :class:`TrainOptions`, once; the schedule
    flags apply on top of the recipe's (or the --schedule-config file's)
    schedule when :func:`~numpynets.train.run.resolve` runs."""
    from ..errors import ConfigError
    from ..train.run import TrainOptions

    if args.model is None:
        raise ConfigError("train: give a MODEL (" + ", ".join(MODELS) + ", or an architecture .json file) "
                          "or --resume RUN_DIR")
    overrides = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "optimizer", "momentum",
                                               "nesterov", "weight_decay", "patience", "min_delta", "decay_all")}
    arch_options = {key: getattr(args, f"arch_{key}") for _, key, _, _ in ARCH_FLAGS
                    if getattr(args, f"arch_{key}") is not None}
    schedule_flags = {k: v for k, v in (("kind", args.schedule), ("warmup_epochs", args.warmup),
                                        ("per", args.schedule_per)) if v is not None}
    return TrainOptions(model=args.model, recipe=args.recipe, overrides=overrides, arch_options=arch_options,
                        schedule_config=args.schedule_config, schedule_flags=schedule_flags, seed=args.seed,
                        data_dir=args.data_dir, out=args.out, limit=args.limit, val_fraction=args.val_split,
                        verify=args.verify, threads=args.threads, progress=args.progress,
                        save_original=args.save_original, dataset=args.dataset, augment=augment_option(args))


def resume_options_from_args(args, parser_defaults: dict):
    """``--resume RUN_DIR``: refuses MODEL and every option the run's
    config.json fixes (a resume with other hyperparameters would not be the
    same run)."""
    from ..errors import ConfigError
    from ..train.run import ResumeOptions

    given = sorted(f"--{k.removeprefix('arch_').replace('_', '-')}" for k, v in vars(args).items()
                   if k not in RESUME_OPTIONS and v != parser_defaults.get(k))
    if args.model is not None:
        given.insert(0, f"MODEL ({args.model})")
    if given:
        raise ConfigError(f"--resume continues a run as it was configured; drop {', '.join(given)} "
                          "(a resume takes only --epochs, --threads, --data-dir, --no-progress, --json, "
                          "--save-original)")
    return ResumeOptions(run_dir=args.resume, epochs=args.epochs, threads=args.threads, data_dir=args.data_dir,
                         verify=args.verify, progress=args.progress, save_original=args.save_original)


def run(args) -> int:
    from ..train.run import resume_training, run_training

    if args.resume is not None:
        summary = resume_training(resume_options_from_args(args, _DEFAULTS))
    else:
        summary = run_training(options_from_args(args))
    model = summary["model_obj"]
    if model.dataset == "xor" and "test_accuracy" in summary:
        from ..data import xor_data
        from ..train.evaluate import truth_table

        data = xor_data()
        table, ok = truth_table(model, data.x, data.y)
        print(table)
        print(f"{'all four correct' if ok else 'NOT all correct'}, MSE {summary['test_loss']:.5f}, "
              f"{summary['epochs']} epochs in {summary['train_seconds']:.3f}s")
        summary.update(accuracy=summary["test_accuracy"], all_correct=ok)
    elif "test_accuracy" in summary:
        print(f"test accuracy {summary['test_accuracy']:.2f}%  (loss {summary['test_loss']:.4f})  "
              f"train {summary['train_seconds']:.2f}s for {summary['epochs']} epoch"
              f"{'s' * (summary['epochs'] != 1)}  ({summary['samples_per_second']:,.0f} samples/s)")
    print(f"saved {RunDir(summary['run_dir']).model}")
    if args.json:
        print_json({k: v for k, v in summary.items() if k not in ("test_result", "model_obj")})
    return 130 if summary["stopped"] == "interrupted" else 0
