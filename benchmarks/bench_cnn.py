"""The MNIST CNN, numpynets against PyTorch (CPU): seconds per training epoch
for each recipe, and forward / backward time per layer.

Epoch time. For each recipe (original: SGD batch 32; default: Adam batch
16 with a per-batch cosine schedule) this times, in the same run and with
the same number of threads:

* numpynets: ``numpynets.train.fit.fit`` itself (what ``numpynets train``
  runs) for one pass over the first ``--samples`` training images; its
  ``train_seconds`` count the steps only (batch gather, forward, loss,
  backward, optimizer, correct count), not validation;
* PyTorch: the same model in ``torch.nn`` (Conv2d 1->8 3x3 pad 1, ReLU,
  MaxPool2d 2, Flatten, Linear 1568->10), the same optimizer, schedule and
  batch size, and the same loop over the same images.

The pass over ``--samples`` images is EXTRAPOLATED to one epoch of 54,000
images (the training split) unless ``--samples 54000``. Repeats alternate
between the two and the table keeps the best of each; the ratio is
numpynets / PyTorch (below 1: numpynets is faster). The machine may be
shared, so the ratio, measured within one run, means more than the seconds.

Per layer. Each layer's forward (training mode) and backward on one batch
of real images, in microseconds, for both (PyTorch: each module on its own,
autograd backward from a random upstream gradient; the first layer computes
no input gradient in either).

    python benchmarks/bench_cnn.py --threads 1
    python benchmarks/bench_cnn.py --threads 1 --samples 54000 --repeats 1     # whole epochs
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from common import machine, set_threads, table, torch_pass, torch_version

EPOCH_SAMPLES = 54_000


def load_images(n: int):
    """The first ``n`` MNIST training images, or random ones when the files
    are not found (the timing does not depend on pixel values)."""
    from numpynets.data.mnist import Split, find_mnist, load_mnist

    if find_mnist() is not None:
        mn = load_mnist(val_fraction=0.1, limit=max(n * 10 // 9 + 10, 20), log=lambda *a: None)
        return Split(mn.train.x[:n], mn.train.y[:n]), "MNIST"
    rng = np.random.default_rng(0)
    return Split(rng.random((n, 28, 28), dtype=np.float32), rng.integers(0, 10, n)), "random"


# -- epoch time ----------------------------------------------------------------

def time_numpynets(arch, recipe, data, seed: int) -> float:
    from numpynets.models.registry import build
    from numpynets.train.fit import fit, seeds

    init_rng, shuffle_rng = seeds(seed)
    model = build(arch, seed=init_rng)
    return fit(model, data, None, recipe, shuffle_rng, progress=False, log=lambda *a: None).train_seconds


def torch_cnn(torch, channels: int = 8):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(channels * 14 * 14, 10))


def torch_optimizer(torch, model, recipe):
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                               nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay)


def time_torch(torch, recipe, data, seed: int, channels: int) -> float:
    """The same loop as ``fit``: shuffled gather, forward, loss, zero_grad,
    backward, step (learning rate set per batch), correct count."""
    torch.manual_seed(seed)
    model = torch_cnn(torch, channels)
    opt = torch_optimizer(torch, model, recipe)
    X, Y = torch.from_numpy(data.x).unsqueeze(1), torch.from_numpy(data.y)     # (n, 1, 28, 28)
    return torch_pass(torch, model, opt, recipe, X, Y, seed)


# -- per layer -------------------------------------------------------------------

def layer_times_numpynets(arch, xb, iters: int) -> list[tuple[str, float, float]]:
    """[(layer, forward us, backward us)] on one batch, best of 3 rounds."""
    from numpynets.models.registry import build

    model = build(arch, seed=0)
    rng = np.random.default_rng(0)
    x0 = model._as_input(xb)
    best_f = np.full(len(model.layers), np.inf)
    best_b = np.full(len(model.layers), np.inf)
    for _ in range(3):
        tf, tb = np.zeros(len(model.layers)), np.zeros(len(model.layers))
        for it in range(iters + 5):
            x = x0
            for i, layer in enumerate(model.layers):
                t = time.perf_counter()
                x = layer.forward(x, training=True)
                if it >= 5:
                    tf[i] += time.perf_counter() - t
            d = rng.standard_normal(x.shape).astype(np.float32)
            model.zero_grad()
            for i in reversed(range(len(model.layers))):
                t = time.perf_counter()
                d = model.layers[i].backward(d)
                if it >= 5:
                    tb[i] += time.perf_counter() - t
        best_f, best_b = np.minimum(best_f, tf / iters), np.minimum(best_b, tb / iters)
    return [(type(l).__name__, best_f[i] * 1e6, best_b[i] * 1e6) for i, l in enumerate(model.layers)]


def layer_times_torch(torch, xb, iters: int, channels: int) -> list[tuple[str, float, float]]:
    model = torch_cnn(torch, channels)
    x0 = torch.from_numpy(xb).unsqueeze(1)
    ins, x = [], x0
    with torch.no_grad():
        for m in model:
            ins.append(x)
            x = m(x)
    rows = []
    for i, m in enumerate(model):
        xi = ins[i].clone().requires_grad_(i > 0)             # the first layer needs no input gradient
        g = torch.randn_like(m(xi))
        best_f = best_b = np.inf
        for _ in range(3):
            tf = tb = 0.0
            for it in range(iters + 5):
                for p in m.parameters():
                    p.grad = None
                xi.grad = None
                t = time.perf_counter()
                y = m(xi)
                t1 = time.perf_counter()
                y.backward(g)
                t2 = time.perf_counter()
                if it >= 5:
                    tf, tb = tf + t1 - t, tb + t2 - t1
            best_f, best_b = min(best_f, tf / iters), min(best_b, tb / iters)
        rows.append((type(m).__name__, best_f * 1e6, best_b * 1e6))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1)")
    p.add_argument("--recipes", default="original,default")
    p.add_argument("--samples", type=int, default=9600,
                   help="images timed per repeat, extrapolated to 54,000 (default 9600)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--layer-batch", type=int, default=32, help="batch size of the per-layer timings")
    p.add_argument("--layer-iters", type=int, default=200)
    p.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = p.parse_args(argv)
    set_threads(args.threads)

    from numpynets.models.registry import build_architecture, get_model, get_recipe

    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: numpynets timings only", file=sys.stderr)
    data, source = load_images(max(args.samples, args.layer_batch))
    data.x, data.y = data.x[:args.samples], data.y[:args.samples]
    spec = get_model("cnn")
    extrapolated = "" if args.samples >= EPOCH_SAMPLES else f", extrapolated to {EPOCH_SAMPLES:,d} per epoch"
    print(f"cnn: {args.threads} thread(s); {machine()}; torch {torch_version()}")
    print(f"epoch time: one pass over {args.samples:,d} {source} images{extrapolated}, "
          f"best of {args.repeats} alternating repeats")

    epoch_rows, results = [], {"threads": args.threads, "samples": args.samples, "epochs": [], "layers": []}
    for name in args.recipes.split(","):
        full = get_recipe(spec, name)
        recipe = full.with_overrides(epochs=1)                # one pass; the schedule spans it
        arch = build_architecture(spec, dict(full.arch))
        channels = int(full.arch.get("channels", 8))
        ours, theirs = [], []
        for r in range(args.repeats):
            ours.append(time_numpynets(arch, recipe, data, seed=r))
            if torch is not None:
                theirs.append(time_torch(torch, recipe, data, seed=r, channels=channels))
        scale = EPOCH_SAMPLES / args.samples
        row = {"recipe": name, "optimizer": full.optimizer, "batch": full.batch_size,
               "numpynets_s_per_epoch": min(ours) * scale,
               "torch_s_per_epoch": min(theirs) * scale if theirs else None,
               "ratio": min(ours) / min(theirs) if theirs else None}
        results["epochs"].append(row)
        epoch_rows.append([name, full.optimizer, full.batch_size, f"{row['numpynets_s_per_epoch']:.2f}",
                           f"{row['torch_s_per_epoch']:.2f}" if theirs else "-",
                           f"{row['ratio']:.3f}" if theirs else "-"])
    print(table(epoch_rows, ["recipe", "optimizer", "batch", "numpynets s/epoch", "torch s/epoch", "ratio"]))

    B = args.layer_batch
    arch = build_architecture(spec, {})
    xb = data.x[:B] if len(data.x) >= B else np.random.default_rng(0).random((B, 28, 28), dtype=np.float32)
    ours = layer_times_numpynets(arch, xb, args.layer_iters)
    theirs = layer_times_torch(torch, xb, args.layer_iters, 8) if torch is not None else None
    print(f"\nper layer, batch {B}, microseconds per call (best of 3 rounds of {args.layer_iters}):")
    layer_rows = []
    for i, (name, f, b) in enumerate(ours):
        tname, tf, tb = theirs[i] if theirs else ("-", np.nan, np.nan)
        results["layers"].append({"layer": name, "numpynets_forward_us": f, "numpynets_backward_us": b,
                                  "torch_forward_us": tf, "torch_backward_us": tb})
        layer_rows.append([name, f"{f:.1f}", f"{b:.1f}", f"{tf:.1f}", f"{tb:.1f}",
                           f"{(f + b) / (tf + tb):.2f}" if theirs else "-"])
    sf, sb = sum(r[1] for r in ours), sum(r[2] for r in ours)
    tf, tb = (sum(r[1] for r in theirs), sum(r[2] for r in theirs)) if theirs else (np.nan, np.nan)
    layer_rows.append(["total", f"{sf:.1f}", f"{sb:.1f}", f"{tf:.1f}", f"{tb:.1f}",
                       f"{(sf + sb) / (tf + tb):.2f}" if theirs else "-"])
    print(table(layer_rows, ["layer", "ours fwd", "ours bwd", "torch fwd", "torch bwd", "ratio"]))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
