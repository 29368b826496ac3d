"""What BatchNorm (and Dropout) cost per epoch, and whether the models
without them got slower.

1. **Cost per epoch.** ``numpynets.train.fit.fit`` (what ``numpynets train``
   runs) on the first ``--samples`` training images, extrapolated to an
   epoch of 54,000, for each built-in recipe with and without the layer
   (``cnn --batchnorm``, ``mlp --batchnorm``, ``mlp --dropout 0.2``).
2. **Before / after.** The same timing of the default and original recipes of
   ``mlp`` and ``cnn`` (no new layers) with this checkout's ``src`` and with
   the ``src`` of ``--before REF`` (a git ref; default ``main``), each run in
   its own process.

With ``--cpu-time`` the training is timed by the process's CPU time
(``time.process_time``) instead of the wall clock: with 1 BLAS thread that
is the work done, much less disturbed by other jobs on a shared machine.

Every measurement runs in a fresh process, alternating between the variants
for ``--repeats`` rounds; the table keeps the best time of each and the
ratio of the bests, all in this one run (the machine may be shared: the
ratios mean more than the seconds).

    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_batchnorm.py --threads 1
    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_batchnorm.py --before 57f760a --repeats 5 --cpu-time
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EPOCH_SAMPLES = 54_000

# runs in a fresh interpreter with PYTHONPATH set to the src under test
SNIPPET = r"""
import json, sys
import numpy as np
from threadpoolctl import threadpool_limits
model_name, recipe_name, n, threads, opts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
threadpool_limits(threads)
from numpynets.data.mnist import Split, load_mnist
from numpynets.models.registry import MODELS, build, build_architecture, get_recipe
from numpynets.train.fit import fit
spec = MODELS[model_name]
recipe = get_recipe(spec, recipe_name).with_overrides(epochs=1)
model = build(build_architecture(spec, {**recipe.arch, **opts}), seed=0)
mn = load_mnist(limit=n * 10 // 9 + 10, log=lambda *a: None)
train = Split(mn.train.x[:n], mn.train.y[:n])
import time
cpu = time.process_time()
res = fit(model, train, None, recipe, np.random.default_rng(0), progress=False, log=lambda *a: None)
print(json.dumps({"seconds": res.train_seconds, "cpu_seconds": time.process_time() - cpu}))
"""


CLOCK = "seconds"          # or "cpu_seconds" (--cpu-time)


def time_once(src: Path, model: str, recipe: str, opts: dict, samples: int, threads: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", SNIPPET, model, recipe, str(samples), str(threads),
                          json.dumps(opts)], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])[CLOCK] * EPOCH_SAMPLES / samples


def export_src(ref: str, into: Path) -> Path:
    """The ``src`` folder of git ``ref``, unpacked into ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def best_of(cases: dict, repeats: int, **kw) -> dict:
    """{name: best seconds per epoch}, alternating between the cases each round."""
    best = {name: float("inf") for name in cases}
    for _ in range(repeats):
        for name, (src, model, recipe, opts) in cases.items():
            best[name] = min(best[name], time_once(src, model, recipe, opts, **kw))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samples", type=int, default=6000, help="images timed per run (extrapolated to an epoch)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--before", default="main", help="git ref of the code to compare with (part 2)")
    ap.add_argument("--skip-before", action="store_true", help="only part 1")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time the training with the process's CPU time instead of the wall clock: on a "
                    "machine shared with other jobs (and 1 BLAS thread) it is far less disturbed by them")
    args = ap.parse_args()
    global CLOCK
    CLOCK = "cpu_seconds" if args.cpu_time else "seconds"
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import machine, table

    kw = {"samples": args.samples, "threads": args.threads}
    here = ROOT / "src"
    print(f"{machine()}; {args.threads} BLAS thread(s); {args.samples} images per run, best of {args.repeats}; "
          f"{'CPU time' if args.cpu_time else 'wall-clock time'}")

    variants = [("cnn", "default", {"batchnorm": True}), ("cnn", "original", {"batchnorm": True}),
                ("mlp", "default", {"batchnorm": True}), ("mlp", "default", {"dropout": 0.2})]
    rows = []
    for model, recipe, opts in variants:
        flag = " ".join(f"--{k}" if v is True else f"--{k} {v}" for k, v in opts.items())
        best = best_of({"plain": (here, model, recipe, {}), "with": (here, model, recipe, opts)},
                       args.repeats, **kw)
        rows.append([f"{model} {recipe}", flag, f"{best['plain']:.2f}", f"{best['with']:.2f}",
                     f"{best['with'] - best['plain']:+.2f}", f"{best['with'] / best['plain']:.2f}"])
    print("\nCost per epoch (seconds per 54,000 images)")
    print(table(rows, ["recipe", "layer", "without", "with", "cost", "ratio"]))

    if args.skip_before:
        return
    with tempfile.TemporaryDirectory() as tmp:
        before = export_src(args.before, Path(tmp))
        rows = []
        for model, recipe in [("mlp", "default"), ("mlp", "original"), ("cnn", "default"), ("cnn", "original")]:
            best = best_of({"before": (before, model, recipe, {}), "after": (here, model, recipe, {})},
                           args.repeats, **kw)
            rows.append([f"{model} {recipe}", f"{best['before']:.2f}", f"{best['after']:.2f}",
                         f"{best['after'] / best['before']:.3f}"])
    print(f"\nBefore ({args.before}) and after (this checkout), seconds per epoch")
    print(table(rows, ["recipe", "before", "after", "ratio"]))


if __name__ == "__main__":
    main()
