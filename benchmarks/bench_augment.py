"""What augmentation costs per training epoch, for the MLP, the CNN and the
convnet at their default recipes' batch sizes.

For each model this times, in one run and alternating: ``fit`` for one pass
over the first ``--samples`` training images without augmentation, the same
with the default augmentation (shift 2 px, rotation 10 degrees, zoom 10 %:
the bilinear affine path), with whole-pixel shifts only (``--augment-rotate
0 --augment-scale 0``: the crop path), and each augmenter alone over the
same images, called as ``fit`` calls it: on chunks of whole batches of
about ``Trainer.augment_images`` images (``--per-batch``: once per batch,
as before chunking). "added" is (augmented - plain) / plain. Times are the
process's CPU seconds (``time.process_time``), which a busy shared machine
inflates far less than wall-clock seconds; best of ``--repeats``::

    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_augment.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np

from common import machine, set_threads, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mlp", "cnn", "convnet"])
    ap.add_argument("--samples", type=int, default=6000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--per-batch", action="store_true",
                    help="call the augmenter once per batch (Trainer.augment_images = 1), not per chunk")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    set_threads(args.threads)

    from numpynets.data.augment import AugmentConfig, Augmenter
    from numpynets.data.mnist import Split, find_mnist, load_mnist
    from numpynets.models import build, build_architecture, get_model, get_recipe
    from numpynets.train import fit, seeds
    from numpynets.train.fit import Trainer

    if args.per_batch:
        Trainer.augment_images = 1

    if find_mnist() is not None:
        mn = load_mnist(limit=args.samples, val_fraction=0.0, log=lambda *a: None)
        data, source = mn.train, "MNIST"
    else:
        rng = np.random.default_rng(0)
        data = Split(rng.random((args.samples, 28, 28), dtype=np.float32), rng.integers(0, 10, args.samples))
        source = "random"
    rows, out = [], []
    for name in args.models:
        spec = get_model(name)
        recipe = replace(get_recipe(spec, "default"), epochs=1, augment=None)
        arch = build_architecture(spec, recipe.arch)
        configs = {"affine": AugmentConfig(), "shift": AugmentConfig(shift=2, rotate=0, scale=0)}
        best = {k: np.inf for k in ("plain", "affine", "shift", "affine alone", "shift alone")}
        for rep in range(args.repeats):
            for kind in best:
                c0 = time.process_time()
                if kind.endswith("alone"):
                    aug = Augmenter(configs[kind.split()[0]], 0)
                    chunk = max(1, Trainer.augment_images // recipe.batch_size) * recipe.batch_size
                    for s in range(0, len(data), chunk):
                        aug(data.x[s:s + chunk])
                else:
                    init_rng, shuffle_rng = seeds(rep)
                    model = build(arch, seed=init_rng)
                    aug = Augmenter(configs[kind], 0) if kind != "plain" else None
                    c0 = time.process_time()
                    fit(model, data, None, recipe, shuffle_rng, progress=False, log=lambda *a: None, augment=aug)
                best[kind] = min(best[kind], time.process_time() - c0)
        scale = 54_000 / len(data)
        plain = best["plain"]
        rows.append([name, recipe.batch_size, f"{plain * scale:.2f}",
                     f"{best['affine'] * scale:.2f} ({100 * (best['affine'] - plain) / plain:+.0f}%)",
                     f"{best['shift'] * scale:.2f} ({100 * (best['shift'] - plain) / plain:+.0f}%)",
                     f"{100 * best['affine alone'] / plain:.0f}% / {100 * best['shift alone'] / plain:.0f}%"])
        out.append({"model": name, "batch_size": recipe.batch_size, "plain_epoch_cpu_s": round(plain * scale, 3),
                    **{f"{k.replace(' ', '_')}_epoch_cpu_s": round(v * scale, 3) for k, v in best.items() if k != "plain"}})
    calls = "per batch" if args.per_batch else f"on chunks of ~{Trainer.augment_images} images"
    print(f"{machine()}; {args.threads} thread(s); {source} images; {args.samples} samples per pass, "
          f"CPU seconds extrapolated to a 54,000-image epoch; augmenter called {calls}")
    print(table(rows, ["model", "batch", "epoch CPU s", "affine (added)", "shift only (added)",
                       "augmenter alone: affine / shift"]))
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
