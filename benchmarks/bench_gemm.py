"""A training step's matrix products alone, NumPy's BLAS against PyTorch's,
at the shapes the step runs; and, with ``--steps``, what the rest of each
step costs.

For the MLP's and the attention model's recipes this lists every matrix
product of one training step (forward, the weight gradients, the input
gradients, and the attention's per-head products, as
``numpynets/nn/linear.py``, ``fold.py`` and ``attention.py`` run them: a
LayerNorm folded into the next product adds a row of ones, so K = D + 1)
and times the list, alternating, with ``np.matmul`` (NumPy's BLAS, OpenBLAS
in the PyPI wheels) and with ``torch.matmul`` (MKL in the PyTorch CPU
wheels), on contiguous float32 operands, each side writing into its own
preallocated output, with the same thread count. The table gives each
product's GFLOP/s on both sides and the GEMM seconds per 54,000-image epoch.

``--steps`` also times one ``fit`` pass and one PyTorch twin pass of the
same recipe in the same rounds (``run_all.py``'s) and splits each epoch
into its products and the rest: ``rest = step - products``. The products'
ratio is a floor for the step's ratio set by the two BLAS libraries; what a
goal such as "0.8x PyTorch" leaves for the rest follows::

    ours_products + ours_rest <= goal * (torch_products + torch_rest)

    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_gemm.py --threads 1
    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_gemm.py --threads 1 --steps --repeats 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, set_threads, table  # noqa: E402

EPOCH_SAMPLES = 54_000


@dataclass(frozen=True)
class Gemm:
    """``C (m, n) = op(A) op(B)``, ``batch`` times, ``count`` times per step;
    ``ta``: A is stored (k, m) and used transposed (``x.T @ dy``), ``tb``: B
    is stored (n, k) (``dy @ W.T``)."""
    name: str
    m: int
    k: int
    n: int
    ta: bool = False
    tb: bool = False
    batch: int = 1
    count: int = 1

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n * self.batch * self.count


def mlp_gemms(arch: dict, B: int) -> list[Gemm]:
    """The five products of an MLP 784-hidden-10 step (the first layer
    computes no input gradient)."""
    h = int(arch.get("hidden", 512))
    return [Gemm("x W1", B, 784, h), Gemm("h W2", B, h, 10),
            Gemm("dW2 = h^T dy", h, B, 10, ta=True), Gemm("dh = dy W2^T", B, 10, h, tb=True),
            Gemm("dW1 = x^T dh", 784, B, h, ta=True)]


def attention_gemms(arch: dict, B: int) -> list[Gemm]:
    """The products of an attention step (models/attention.py), per block
    (``count`` = blocks) and for the patch embedding and the classifier."""
    from numpynets.models.attention import IMAGE, PATCH, _flag

    D, F = int(arch.get("d_model", 64)), int(arch.get("ff_dim", 128))
    H, L = int(arch.get("heads", 1)), int(arch.get("blocks", 1))
    ln = _flag("layernorm", arch.get("layernorm", False))
    T, P, E = (IMAGE // PATCH) ** 2, PATCH * PATCH, D // H
    R, Kin = B * T, D + 1 if ln else D                  # rows; K of a product a LayerNorm is folded into
    per_head = dict(batch=B * H, count=L)
    return [
        Gemm("patch embed", R, P, D), Gemm("dW patch", P, R, D, ta=True),
        Gemm("x Wqkv", R, Kin, 3 * D, count=L), Gemm("dWqkv", 3 * D, R, Kin, ta=True, count=L),
        Gemm("dx qkv", R, 3 * D, D, tb=True, count=L),
        Gemm("q k^T", T, E, T, tb=True, **per_head), Gemm("a v", T, T, E, **per_head),
        Gemm("da = dy v^T", T, E, T, tb=True, **per_head), Gemm("dv = a^T dy", T, T, E, ta=True, **per_head),
        Gemm("dq = ds k", T, T, E, **per_head), Gemm("dk = ds^T q", T, T, E, ta=True, **per_head),
        Gemm("x W1 (ff)", R, Kin, F, count=L), Gemm("dW1 (ff)", F, R, Kin, ta=True, count=L),
        Gemm("dx ff1", R, F, D, tb=True, count=L),
        Gemm("h W2 (ff)", R, F, D, count=L), Gemm("dW2 (ff)", F, R, D, ta=True, count=L),
        Gemm("dh ff2", R, D, F, tb=True, count=L),
        # the last LayerNorm's affine is taken on the pooled rows: the classifier's K is D
        Gemm("classifier", B, D, 10), Gemm("dW classifier", D, B, 10, ta=True),
        Gemm("dx classifier", B, 10, D, tb=True),
    ]


MODELS = {"mlp": mlp_gemms, "attention": attention_gemms}


def operands(g: Gemm, rng, lib):
    """``(a, b, out)`` for ``g`` in NumPy or torch (``lib``), contiguous as stored."""
    lead = (g.batch,) if g.batch > 1 else ()
    a = rng.standard_normal((*lead, *((g.k, g.m) if g.ta else (g.m, g.k))), dtype=np.float32)
    b = rng.standard_normal((*lead, *((g.n, g.k) if g.tb else (g.k, g.n))), dtype=np.float32)
    out = np.empty((*lead, g.m, g.n), dtype=np.float32)
    if lib is not np:
        a, b, out = lib.from_numpy(a), lib.from_numpy(b), lib.from_numpy(out)
    a = a.swapaxes(-1, -2) if g.ta else a
    b = b.swapaxes(-1, -2) if g.tb else b
    return a, b, out


def time_gemm(g: Gemm, ops, lib, reps: int) -> float:
    """Seconds for one step's worth of ``g`` (``count`` products), the best
    of three timings of ``reps`` repetitions."""
    a, b, out = ops
    mm = lib.matmul
    mm(a, b, out=out)                                   # warm: page in, pack buffers
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            mm(a, b, out=out)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best * g.count


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mlp:original", "attention:default", "attention:original"],
                    help="model:recipe pairs (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of every product (median)")
    ap.add_argument("--steps", action="store_true", help="also time fit and the PyTorch twin, alternating")
    ap.add_argument("--samples", type=int, default=3200, help="images per pass with --steps")
    ap.add_argument("--repeats", type=int, default=3, help="passes per side with --steps (best of)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import torch

    from numpynets.models.registry import get_model, get_recipe

    set_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    report, text = [], []
    for pair in args.models:
        name, _, recipe_name = pair.partition(":")
        recipe = get_recipe(get_model(name), recipe_name or "default")
        B = recipe.batch_size
        gemms = MODELS[name](dict(recipe.arch), B)
        ops = {lib: [operands(g, rng, lib) for g in gemms] for lib in (np, torch)}
        reps = [max(3, int(2e7 // max(1, g.flops // g.count))) for g in gemms]   # ~20 MFLOP per timing
        times = {lib: [[] for _ in gemms] for lib in (np, torch)}
        for r in range(args.rounds):                    # alternate the libraries, product by product
            for i, g in enumerate(gemms):
                for lib in ((np, torch) if r % 2 == 0 else (torch, np)):
                    times[lib][i].append(time_gemm(g, ops[lib][i], lib, reps[i]))
        steps = EPOCH_SAMPLES / B
        rows, products = [], []
        for i, g in enumerate(gemms):
            ours, theirs = median(times[np][i]), median(times[torch][i])
            products.append({"name": g.name, "m": g.m, "k": g.k, "n": g.n, "batch": g.batch, "count": g.count,
                             "numpy_gflops": g.flops / ours / 1e9, "torch_gflops": g.flops / theirs / 1e9,
                             "numpy_s_per_epoch": ours * steps, "torch_s_per_epoch": theirs * steps})
            shape = f"{g.batch} x " * (g.batch > 1) + f"({g.m}x{g.k})({g.k}x{g.n})" + f" x{g.count}" * (g.count > 1)
            rows.append([g.name, shape, f"{g.flops / ours / 1e9:.0f}", f"{g.flops / theirs / 1e9:.0f}",
                         f"{theirs / ours:.2f}", f"{ours * steps:.2f}"])
        ours_s = sum(p["numpy_s_per_epoch"] for p in products)
        torch_s = sum(p["torch_s_per_epoch"] for p in products)
        entry = {"model": name, "recipe": recipe_name or "default", "batch_size": B, "threads": args.threads,
                 "products": products, "numpy_gemm_s_per_epoch": ours_s, "torch_gemm_s_per_epoch": torch_s,
                 "gemm_ratio": ours_s / torch_s}
        rows.append(["all products", "", "", "", f"{torch_s / ours_s:.2f}", f"{ours_s:.2f}"])
        text += [f"\n{name} ({entry['recipe']} recipe, batch {B}): products of one step; "
                 f"epoch seconds: NumPy {ours_s:.2f}, PyTorch {torch_s:.2f}, ratio {ours_s / torch_s:.2f}",
                 table(rows, ["product", "shape", "NumPy GFLOP/s", "PyTorch GFLOP/s", "PyTorch/NumPy time",
                              "NumPy s/epoch"])]
        if args.steps:
            entry.update(step_split(torch, name, entry["recipe"], args.samples, args.repeats, ours_s, torch_s))
            s = entry
            text.append(f"whole step, s/epoch (best of {args.repeats}, alternating): numpynets {s['ours_step_s']:.2f}"
                        f" = products {ours_s:.2f} + rest {s['ours_rest_s']:.2f}; PyTorch {s['torch_step_s']:.2f}"
                        f" = products {torch_s:.2f} + rest {s['torch_rest_s']:.2f}; step ratio {s['step_ratio']:.3f};"
                        f" at 0.8x our rest could be at most {s['rest_budget_at_0.8_s']:.2f}")
        report.append(entry)
    head = f"{machine()}; torch {torch.__version__}; {args.threads} thread(s); median of {args.rounds} rounds"
    if args.json:
        print(json.dumps({"machine": head, "models": report}, indent=2))
    else:
        print(head + "\n".join(text))
    return 0


def step_split(torch, name: str, recipe_name: str, samples: int, repeats: int, ours_gemm: float,
               torch_gemm: float) -> dict:
    """One fit pass and one PyTorch pass, alternating, and the rest of each step."""
    from run_all import mnist, ours_pass, subset, torch_pass_for

    data = subset(mnist().train, samples)
    ours, theirs = [], []
    for r in range(repeats):
        ours.append(ours_pass(name, recipe_name, data, r))
        theirs.append(torch_pass_for(torch, name, recipe_name, data, r))
    scale = EPOCH_SAMPLES / samples
    o, t = min(ours) * scale, min(theirs) * scale
    return {"ours_step_s": o, "torch_step_s": t, "step_ratio": o / t, "ours_rest_s": o - ours_gemm,
            "torch_rest_s": t - torch_gemm, "rest_budget_at_0.8_s": 0.8 * t - ours_gemm}


if __name__ == "__main__":
    sys.exit(main())
