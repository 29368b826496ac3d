"""What augmentation costs per training epoch, for the MLP, the CNN and the
convnet at their default recipes' batch sizes.

For each model this times, in one run and alternating: ``fit`` for one pass
over the first ``--samples`` training images without augmentation, the same
with the default augmentation (shift 2 px, rotation 10 degrees, zoom 10 %:
the bilinear affine path), with whole-pixel shifts only (``--augment-rotate
0 --augment-scale 0``: the crop path), and each augmenter alone over the
same images, called as ``fit`` calls it: on chunks of whole batches of
about ``Trainer.augment_pixels`` pixels; and the affine augmentation called
once per batch, as before chunking (``--per-batch``: every pass per batch).
Each round runs every pass once, in a shuffled order; "added" is the median
over the rounds of (augmented - plain) / plain, the plain pass being that
round's, so a machine whose speed drifts between rounds moves it less.
Times are the process's CPU seconds (``time.process_time``), which a busy
shared machine inflates far less than wall-clock seconds; the seconds
shown are the best of ``--repeats`` rounds::

    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_augment.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace
from statistics import median

import numpy as np

from common import machine, set_threads, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mlp", "cnn", "convnet"])
    ap.add_argument("--samples", type=int, default=6000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--per-batch", action="store_true",
                    help="call the augmenter once per batch (Trainer.augment_pixels = 1), not per chunk")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    set_threads(args.threads)

    from numpynets.data.augment import AugmentConfig, Augmenter
    from numpynets.data.mnist import Split, find_mnist, load_mnist
    from numpynets.models import build, build_architecture, get_model, get_recipe
    from numpynets.train import fit, seeds
    from numpynets.train.fit import Trainer

    if find_mnist() is not None:
        mn = load_mnist(limit=args.samples, val_fraction=0.0, log=lambda *a: None)
        data, source = mn.train, "MNIST"
    else:
        rng = np.random.default_rng(0)
        data = Split(rng.random((args.samples, 28, 28), dtype=np.float32), rng.integers(0, 10, args.samples))
        source = "random"
    rows, out = [], []
    chunked = Trainer.augment_pixels
    per_call = [1] if args.per_batch else [chunked, 1]   # pixels per augmenter call in fit (1: one batch)
    compare = len(per_call) > 1                          # the per-batch call beside the chunked one
    for name in args.models:
        spec = get_model(name)
        recipe = replace(get_recipe(spec, "default"), epochs=1, augment=None)
        arch = build_architecture(spec, recipe.arch)
        B = recipe.batch_size
        configs = {"affine": AugmentConfig(), "shift": AugmentConfig(shift=2, rotate=0, scale=0)}
        kinds = ["plain", "affine", "shift", "affine alone", "shift alone"]
        if compare:
            kinds.append("affine per batch")

        def one(kind: str, rep: int) -> float:
            """CPU seconds of one pass of ``kind``."""
            cfg = configs[kind.split()[0]] if kind != "plain" else None
            pixels = 1 if kind.endswith("per batch") else per_call[0]
            if kind.endswith("alone"):                 # as fit calls it: chunks of whole batches
                aug, chunk = Augmenter(cfg, 0), max(1, pixels // (B * data.x[0].size)) * B
                c0 = time.process_time()
                for s in range(0, len(data), chunk):
                    aug(data.x[s:s + chunk])
                return time.process_time() - c0
            init_rng, shuffle_rng = seeds(rep)
            model = build(arch, seed=init_rng)
            Trainer.augment_pixels = pixels
            c0 = time.process_time()
            fit(model, data, None, recipe, shuffle_rng, progress=False, log=lambda *a: None,
                augment=Augmenter(cfg, 0) if cfg else None)
            return time.process_time() - c0

        times = {k: [] for k in kinds}
        for rep in range(args.repeats):                # every kind once per round, in a shuffled order
            for kind in random.Random(rep).sample(kinds, len(kinds)):
                times[kind].append(one(kind, rep))
        Trainer.augment_pixels = chunked
        scale = 54_000 / len(data)
        plain = min(times["plain"])

        def share(kind: str) -> float:
            """Median over the rounds of kind / that round's plain pass, in %."""
            return 100 * median(t / p for t, p in zip(times[kind], times["plain"]))

        def added(kind: str) -> str:
            return f"{min(times[kind]) * scale:.2f} ({share(kind) - 100:+.0f}%)"

        rows.append([name, B, f"{plain * scale:.2f}", added("affine"), added("shift"),
                     f"{share('affine alone'):.0f}% / {share('shift alone'):.0f}%"]
                    + ([added("affine per batch")] if compare else []))
        out.append({"model": name, "batch_size": B, "plain_epoch_cpu_s": round(plain * scale, 3),
                    **{f"{k.replace(' ', '_')}_epoch_cpu_s": round(min(v) * scale, 3) for k, v in times.items()
                       if k != "plain"},
                    # inside fit: the time added, in % of the plain pass; alone: the augmenter's time, in %
                    **{f"{k.replace(' ', '_')}_{'share' if k.endswith('alone') else 'added'}_pct":
                       round(share(k) - (0 if k.endswith("alone") else 100), 1) for k in times if k != "plain"}})
    calls = "per batch" if args.per_batch else f"on chunks of ~{per_call[0] // data.x[0].size} images"
    print(f"{machine()}; {args.threads} thread(s); {source} images; {args.samples} samples per pass, "
          f"CPU seconds extrapolated to a 54,000-image epoch (best of {args.repeats}); augmenter called {calls}; "
          "percentages: the median over the rounds of each pass against that round's plain pass")
    print(table(rows, ["model", "batch", "epoch CPU s", "affine (added)", "shift only (added)",
                       "augmenter alone: affine / shift"] + (["affine, per batch (added)"] if compare else [])))
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
