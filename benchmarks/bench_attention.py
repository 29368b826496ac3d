"""Seconds per training epoch of the attention model, numpynets against PyTorch (CPU).

For each recipe (original, original-small, default) this times the training
step loop on the same model, recipe (optimizer, learning-rate schedule),
batch size and number of threads, in the same run:

* numpynets: ``numpynets.train.fit.fit`` itself (the code ``numpynets
  train`` runs), for one pass over a subset of ``--samples`` training images;
  its ``train_seconds`` counts the steps only (batch gathering, forward,
  loss, backward, optimizer), not validation.
* PyTorch: the same architecture written with ``torch.nn`` (autograd), the
  same loop (shuffled index gather, forward, cross-entropy, zero_grad,
  backward, step, correct count), on the same images.

Both are extrapolated to one epoch of 54,000 images (the original's
training split) and repeated ``--repeats`` times, alternating; the table
shows the best of the repeats for each, and the ratio numpynets / PyTorch
(below 1.0: numpynets is faster). The machine may be shared, so compare the
ratio, which is measured within one run, more than the absolute seconds.

    python benchmarks/bench_attention.py --threads 1
    python benchmarks/bench_attention.py --threads 1 --recipes original --samples 6400 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

from common import torch_pass

EPOCH_SAMPLES = 54_000


def load_images(n: int, seed: int = 0):
    """The first ``n`` MNIST training images when the files are found, else
    random images (the timing does not depend on the pixel values)."""
    from numpynets.data.mnist import Split, find_mnist, load_mnist

    if find_mnist() is not None:
        mn = load_mnist(val_fraction=0.1, limit=max(n, 10) * 10 // 9 + 10, log=lambda *a: None)
        return Split(mn.train.x[:n], mn.train.y[:n]), "MNIST"
    rng = np.random.default_rng(seed)
    return Split(rng.random((n, 28, 28), dtype=np.float32), rng.integers(0, 10, n)), "random images"


def time_numpynets(arch, recipe, data, seed: int) -> float:
    """Seconds for one pass of ``fit`` over ``data``."""
    from numpynets.models.registry import build
    from numpynets.train.fit import fit, seeds

    init_rng, shuffle_rng = seeds(seed)
    model = build(arch, seed=init_rng)
    r = fit(model, data, None, recipe, shuffle_rng, progress=False, log=lambda *a: None)
    return r.train_seconds


def torch_model(torch, arch_opts: dict):
    """The attention architecture in torch.nn, following models/attention.py."""
    from numpynets.models.attention import _flag

    nn = torch.nn
    D, F = int(arch_opts.get("d_model", 64)), int(arch_opts.get("ff_dim", 128))
    H, blocks = int(arch_opts.get("heads", 1)), int(arch_opts.get("blocks", 1))
    residual = _flag("residual", arch_opts.get("residual", False))
    layernorm = _flag("layernorm", arch_opts.get("layernorm", False))
    E = D // H

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(D, 3 * D)

        def forward(self, x):                                   # (N, T, D)
            N, T, _ = x.shape
            q, k, v = self.qkv(x).view(N, T, 3, H, E).permute(2, 0, 3, 1, 4)
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(E), dim=-1)
            return (a @ v).transpose(1, 2).reshape(N, T, D)

    class Sub(nn.Module):
        def __init__(self, *layers):
            super().__init__()
            self.f = nn.Sequential(*([nn.LayerNorm(D)] if layernorm else []), *layers)

        def forward(self, x):
            return x + self.f(x) if residual else self.f(x)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(16, D)
            self.pos = nn.Parameter(torch.zeros(49, D))
            self.blocks = nn.Sequential(*[m for _ in range(blocks) for m in (
                Sub(Attention()), Sub(nn.Linear(D, F), nn.ReLU(), nn.Linear(F, D)))])
            self.norm = nn.LayerNorm(D) if layernorm else nn.Identity()
            self.cls = nn.Linear(D, 10)

        def forward(self, x):                                   # (N, 28, 28)
            N = x.shape[0]
            t = x.view(N, 7, 4, 7, 4).permute(0, 1, 3, 2, 4).reshape(N, 49, 16)
            t = torch.relu(self.embed(t) + self.pos)
            t = self.norm(self.blocks(t))
            return self.cls(t.mean(dim=1))

    return Model()


def time_torch(torch, arch_opts, recipe, data, seed: int) -> float:
    torch.manual_seed(seed)
    model = torch_model(torch, arch_opts)
    if recipe.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                              nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    else:
        cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
        opt = cls(model.parameters(), lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay)
    X, Y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    return torch_pass(torch, model, opt, recipe, X, Y, seed)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1)")
    p.add_argument("--recipes", default="original,original-small,default")
    p.add_argument("--samples", type=int, default=4800, help="images timed per repeat (default 4800)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true", help="also print the table as one JSON line")
    args = p.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from numpynets.models.registry import build_architecture, get_model, get_recipe

    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: numpynets timings only", file=sys.stderr)
    if torch is not None:
        torch.set_num_threads(args.threads)
    data, source = load_images(args.samples)
    spec = get_model("attention")
    print(f"attention model, {args.threads} thread(s), {args.samples} {source} per repeat, best of "
          f"{args.repeats}, extrapolated to {EPOCH_SAMPLES:,d} images per epoch; numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch else "") + f", {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores")
    rows = []
    with threadpool_limits(limits=args.threads):
        for name in args.recipes.split(","):
            full = get_recipe(spec, name)
            recipe = full.with_overrides(epochs=1)                # one pass over the timed images
            arch = build_architecture(spec, dict(full.arch))
            ours, theirs = [], []
            for r in range(args.repeats):                         # alternate, so load changes hit both
                ours.append(time_numpynets(arch, recipe, data, seed=r))
                if torch is not None:
                    theirs.append(time_torch(torch, full.arch, recipe, data, seed=r))
            scale = EPOCH_SAMPLES / len(data)
            row = {"recipe": name, "batch": full.batch_size, "optimizer": full.optimizer,
                   "numpynets_s_per_epoch": round(min(ours) * scale, 2)}
            if theirs:
                row["torch_s_per_epoch"] = round(min(theirs) * scale, 2)
                row["ratio"] = round(min(ours) / min(theirs), 3)
            rows.append(row)
    print(f"{'recipe':<16}{'batch':>6}  {'optimizer':<9}{'numpynets s/epoch':>19}{'torch s/epoch':>15}{'ratio':>8}")
    for row in rows:
        print(f"{row['recipe']:<16}{row['batch']:>6}  {row['optimizer']:<9}{row['numpynets_s_per_epoch']:>19.2f}"
              f"{row.get('torch_s_per_epoch', float('nan')):>15.2f}{row.get('ratio', float('nan')):>8.3f}")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
