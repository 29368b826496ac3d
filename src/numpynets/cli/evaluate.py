"""numpynets evaluate MODEL_FILE"""

from __future__ import annotations

from .common import add_data_options, add_dataset_option, add_threads_option, model_dataset, print_json


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="test accuracy and a per-class table for a model file",
                       description="Evaluate a model file on its test set: the test images of the data set "
                       "it was trained on (recorded in the model file), or the XOR table.")
    p.add_argument("model_file", metavar="MODEL_FILE", help="a model file or a run folder")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N test images")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON line, last")
    p.add_argument("--plots", metavar="OUT_DIR", help="also write confusion_MODEL.png (confusion matrix) and "
                   "misclassified_MODEL.png (the most confidently misclassified test images) into OUT_DIR")
    add_dataset_option(p, "evaluate on this data set's test images instead of the model's own; "
                       "refused unless it is the model's own or --force is given")
    p.add_argument("--force", action="store_true", help="evaluate on --dataset even if the model was trained "
                   "on another data set")
    add_data_options(p)
    add_threads_option(p)
    p.set_defaults(func=run)


def load_test_set(model, args):
    from ..data import xor_data
    from ..data.mnist import load_test
    from ..errors import ConfigError
    from ..train.evaluate import check_fits_dataset

    dataset = model_dataset(model, args.dataset, args.force, args.model_file)
    if dataset == "xor":
        check_fits_dataset(model, "xor", args.model_file)
        return xor_data()
    check_fits_dataset(model, dataset, args.model_file)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    test = load_test(dataset, args.data_dir, verify=args.verify)
    if args.limit is not None:
        test.x, test.y = test.x[:args.limit], test.y[:args.limit]
    return test


def run(args) -> int:
    from ..io import load_model
    from ..runtime import blas_threads, resolve_threads
    from ..train.evaluate import evaluate, per_class_table

    if args.plots:
        from ..apps.plots import require_matplotlib
        require_matplotlib()                        # say so before the evaluation, not after
    from ..data.datasets import class_names

    model, meta = load_model(args.model_file)
    test = load_test_set(model, args)
    dataset = model_dataset(model, args.dataset, True, args.model_file)
    names = class_names(dataset, model.output_shape[-1]) if model.is_classifier else None
    with blas_threads(resolve_threads(args.threads)):
        r = evaluate(model, test.x, test.y)
    print(f"{args.model_file}: {model.name}, {model.num_parameters():,d} parameters")
    if meta.get("description"):                   # e.g. "original mlp file (784-512-10, float64)"
        print(f"  read as {meta['description']}")
    if model.dataset == "xor":
        from ..train.evaluate import truth_table

        print(truth_table(model, test.x, test.y)[0])
    if "per_class" in r:
        print(per_class_table(r["per_class"], names))
    print(f"test accuracy {r['accuracy']:.2f}% ({r['correct']}/{r['n']}), loss {r['loss']:.4f}")
    plots = []
    if args.plots:
        from ..apps.eval_plots import write_eval_plots
        with blas_threads(resolve_threads(args.threads)):
            plots = write_eval_plots(model, test.x, test.y, r["predictions"], args.plots, class_names=names)
        print("wrote " + " and ".join(map(str, plots)))
    if args.json:
        out = {"model_file": str(args.model_file), "model": model.name,
               "parameters": model.num_parameters(), "test_accuracy": round(r["accuracy"], 4),
               "test_loss": round(r["loss"], 6), "correct": r["correct"], "n": r["n"], "dataset": dataset}
        if "per_class" in r:
            out["per_class_accuracy"] = {c: round(100.0 * ok / tot, 4) if tot else None
                                         for c, (ok, tot) in r["per_class"].items()}
        if plots:
            out["plots"] = [str(p) for p in plots]
        print_json(out)
    return 0
