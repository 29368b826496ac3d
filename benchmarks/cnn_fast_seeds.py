"""Tune the CNN's ``fast`` recipe: variants of a recipe over several seeds on
full MNIST (54,000 training images, 10,000 test), each seed's runs one after
another (the variants alternate, so a busy machine slows them alike), with
training seconds, test accuracy and each variant's seconds as a ratio to the
first one's (the reference, by default the default recipe)::

    NUMPYNETS_DATA=../shared/mnist python benchmarks/cnn_fast_seeds.py --seeds 0 1 2 3 4 \\
        '{}' '{"arch": {"kernel": 7}}' '{"lr": 0.005, "betas": [0.9, 0.999]}'

A variant is the ``--recipe`` (default ``fast``) with the fields of a JSON
object replaced (any :class:`~numpynets.models.recipes.Recipe` field;
``arch`` and ``schedule`` are merged into the recipe's, and ``"recipe"``
picks another base recipe). ``--reference`` is timed first on every seed
(``none``: no reference). One JSON line per run, a summary per variant.
"""

from __future__ import annotations

import argparse
import json

from numpynets.data import load_mnist
from numpynets.models import build, build_architecture, get_model, get_recipe
from numpynets.runtime import blas_threads
from numpynets.train import fit, seeds
from numpynets.train.evaluate import evaluate


def variant(spec, base: str, overrides: dict):
    """(label, recipe): ``base`` with ``overrides`` (arch and schedule merged)."""
    over = dict(overrides)
    recipe = get_recipe(spec, over.pop("recipe", base))
    if "schedule" in over:
        over["schedule"] = {**recipe.schedule, **over["schedule"]}
    if "betas" in over:
        over["betas"] = tuple(over["betas"])
    return json.dumps(overrides), recipe.with_overrides(**over)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="*", default=["{}"],
                    help="JSON objects of recipe fields (default: '{}', the recipe as it is)")
    ap.add_argument("--recipe", default="fast", help="the recipe the variants change (default fast)")
    ap.add_argument("--reference", default="default", help="recipe timed first on each seed, or 'none'")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir")
    args = ap.parse_args()

    spec = get_model("cnn")
    runs = [variant(spec, args.recipe, json.loads(v)) for v in args.variants]
    if args.reference != "none":
        runs.insert(0, (f"reference: {args.reference}", get_recipe(spec, args.reference)))
    mn = load_mnist(args.data_dir, val_fraction=0.1, log=lambda *a: None)
    seconds = [[] for _ in runs]
    accuracy = [[] for _ in runs]
    with blas_threads(args.threads):
        for seed in args.seeds:
            for i, (label, recipe) in enumerate(runs):
                init_rng, shuffle_rng = seeds(seed)
                model = build(build_architecture(spec, dict(recipe.arch)), seed=init_rng)
                r = fit(model, mn.train, None, recipe, shuffle_rng, progress=False, log=None)
                acc = evaluate(model, mn.test.x, mn.test.y)["accuracy"]      # percent
                seconds[i].append(r.train_seconds)
                accuracy[i].append(acc)
                print(json.dumps({"variant": label, "seed": seed, "train_seconds": round(r.train_seconds, 3),
                                  "test_accuracy": acc}), flush=True)
    for i, (label, _) in enumerate(runs):
        accs = " ".join(f"{a:.2f}" for a in accuracy[i])
        ratio = ("" if args.reference == "none"
                 else f", {sum(seconds[i]) / sum(seconds[0]):.3f}x the reference's seconds")
        print(f"{label}: test % {accs} (worst {min(accuracy[i]):.2f}, mean "
              f"{sum(accuracy[i]) / len(accuracy[i]):.3f}); {sum(seconds[i]):.1f} s in all{ratio}")


if __name__ == "__main__":
    main()
