"""What augmentation costs per training epoch, for the MLP, the CNN and the
convnet at their default recipes' batch sizes.

For each model this times, in one run and alternating: ``fit`` for one pass
over the first ``--samples`` training images without augmentation, the same
with the default augmentation (shift 2 px, rotation 10 degrees, zoom 10 %),
and the augmenter alone over the same batches. The added cost is
(augmented - plain) / plain; "alone" is the augmenter's own time over the
plain pass. Best of ``--repeats``. The machine may be shared: the ratios,
measured within one run, mean more than the seconds::

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
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    set_threads(args.threads)

    from numpynets.data.augment import AugmentConfig, Augmenter
    from numpynets.data.mnist import Split, find_mnist, load_mnist
    from numpynets.models import build, build_architecture, get_model, get_recipe
    from numpynets.train import fit, seeds

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
        best = {"plain": np.inf, "augmented": np.inf, "alone": np.inf}
        for rep in range(args.repeats):
            for kind in ("plain", "augmented", "alone"):
                if kind == "alone":
                    aug = Augmenter(AugmentConfig(), 0)
                    t = time.perf_counter()
                    for s in range(0, len(data), recipe.batch_size):
                        aug(data.x[s:s + recipe.batch_size])
                    seconds = time.perf_counter() - t
                else:
                    init_rng, shuffle_rng = seeds(rep)
                    model = build(arch, seed=init_rng)
                    aug = Augmenter(AugmentConfig(), 0) if kind == "augmented" else None
                    seconds = fit(model, data, None, recipe, shuffle_rng, progress=False, log=lambda *a: None,
                                  augment=aug).train_seconds
                best[kind] = min(best[kind], seconds)
        scale = 54_000 / len(data)
        added = (best["augmented"] - best["plain"]) / best["plain"]
        alone = best["alone"] / best["plain"]
        rows.append([name, recipe.batch_size, f"{best['plain'] * scale:.1f}", f"{best['augmented'] * scale:.1f}",
                     f"{100 * added:+.1f}%", f"{100 * alone:.1f}%"])
        out.append({"model": name, "batch_size": recipe.batch_size, "plain_epoch_s": round(best["plain"] * scale, 2),
                    "augmented_epoch_s": round(best["augmented"] * scale, 2), "added": round(added, 4),
                    "augmenter_alone": round(alone, 4)})
    print(f"{machine()}; {args.threads} thread(s); {source} images; {args.samples} samples per pass, "
          "seconds extrapolated to a 54,000-image epoch")
    print(table(rows, ["model", "batch", "epoch s", "augmented s", "added", "augmenter alone"]))
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
