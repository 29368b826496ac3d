"""A training step's matrix products alone, NumPy's BLAS against PyTorch's,
at the shapes the step runs; and, with ``--steps``, what the rest of each
step costs.

For the MLP's and the attention model's recipes this lists every
matrix-matrix product (GEMM) of one training step (forward, the weight
gradients, the input gradients, and the attention's per-head products, as
``numpynets/nn/linear.py``, ``fold.py`` and ``attention.py`` run them: a
LayerNorm folded into the next product adds a row of ones, so K = D + 1;
the matrix-vector products, bias sums and means, count as the rest)
and times the list, alternating, with ``np.matmul`` (NumPy's BLAS, OpenBLAS
in the PyPI wheels) and with ``torch.matmul`` (MKL in the PyTorch CPU
wheels), on contiguous float32 operands, each side writing into its own
preallocated output, with the same thread count. The table gives each
product's GFLOP/s on both sides and the GEMM seconds per 54,000-image epoch.

``--steps`` also times one ``fit`` pass and one PyTorch twin pass of the
same recipe (``run_all.py``'s) in each round and splits each round's epoch
into its products and the rest, ``rest = step - products``: the passes,
the matrix-vector products, the optimizer and Python around the products,
and what the products cost in the step beyond their hot, contiguous timing
here (strided views, cold caches). PyTorch's rest is its step less our
list timed with ``torch.matmul``: its twin runs nearly the same products
(K = D where we fold a LayerNorm in), so it is an estimate. The figures are medians
over the rounds. What a goal such as "0.8x PyTorch" leaves for our rest
follows, round by round::

    ours_products + ours_rest <= 0.8 (torch_products + torch_rest)

    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_gemm.py --threads 1
    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_gemm.py --threads 1 --steps
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
    is stored (n, k) (``dy @ W.T``); ``split``: NumPy runs it as that many
    products of ``m / split`` rows with the same B (``Linear`` on (N, T, K)
    tokens: ``np.matmul`` broadcasts W over the samples), PyTorch as one
    (``nn.Linear`` folds the samples into the rows)."""
    name: str
    m: int
    k: int
    n: int
    ta: bool = False
    tb: bool = False
    batch: int = 1
    count: int = 1
    split: int = 1

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
    tokens = dict(split=B)                              # Linear.forward on (B, T, K) tokens

    def weight_grad(name: str, n_out: int) -> Gemm:
        # folded: (dz^T [xh | 1])^T, the GEMM dz^T xa (fold.affine_backward); plain: x^T dz (Linear.backward)
        return Gemm(name, n_out, R, Kin, ta=True, count=L) if ln else Gemm(name, D, R, n_out, ta=True, count=L)

    return [
        Gemm("patch embed", R, P, D, **tokens), Gemm("dW patch", P, R, D, ta=True),
        Gemm("x Wqkv", R, Kin, 3 * D, count=L), weight_grad("dWqkv", 3 * D),
        Gemm("dx qkv", R, 3 * D, D, tb=True, count=L),
        Gemm("q k^T", T, E, T, tb=True, **per_head), Gemm("a v", T, T, E, **per_head),
        Gemm("da = dy v^T", T, E, T, tb=True, **per_head), Gemm("dv = a^T dy", T, T, E, ta=True, **per_head),
        Gemm("dq = ds k", T, T, E, **per_head), Gemm("dk = ds^T q", T, T, E, ta=True, **per_head),
        # ff1 folded: the 2-D [xh | 1] (Linear.forward_folded); plain: the (B, T, D) tokens
        Gemm("x W1 (ff)", R, Kin, F, count=L, **({} if ln else tokens)), weight_grad("dW1 (ff)", F),
        Gemm("dx ff1", R, F, D, tb=True, count=L),
        Gemm("h W2 (ff)", R, F, D, count=L, **tokens), Gemm("dW2 (ff)", F, R, D, ta=True, count=L),
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
    if g.split > 1 and lib is np:                       # (split, m / split, k) @ (k, n), as Linear runs it
        a, out = a.reshape(g.split, g.m // g.split, g.k), out.reshape(g.split, g.m // g.split, g.n)
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
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (medians over them)")
    ap.add_argument("--steps", action="store_true",
                    help="also time a fit pass and a PyTorch twin pass in each round")
    ap.add_argument("--samples", type=int, default=3200, help="images per pass with --steps")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import torch

    from numpynets.models.registry import get_model, get_recipe

    set_threads(args.threads)                          # ours and torch's
    rng = np.random.default_rng(0)
    data = None
    if args.steps:
        from run_all import mnist, subset

        data = subset(mnist().train, args.samples)
    report, text = [], []
    for pair in args.models:
        name, _, recipe_name = pair.partition(":")
        recipe_name = recipe_name or "default"
        entry, lines = measure(torch, name, recipe_name, get_recipe(get_model(name), recipe_name), rng,
                               args.rounds, data)
        entry["threads"] = args.threads
        report.append(entry)
        text += lines
    head = f"{machine()}; torch {torch.__version__}; {args.threads} thread(s); medians of {args.rounds} rounds"
    if args.json:
        print(json.dumps({"machine": head, "models": report}, indent=2))
    else:
        print(head + "\n".join(text))
    return 0


def measure(torch, name: str, recipe_name: str, recipe, rng, rounds: int, data) -> tuple[dict, list[str]]:
    """Every GEMM of one step with both libraries, and with ``data`` a
    fit pass and a PyTorch pass, in each of ``rounds`` rounds (the order
    alternating between rounds); a round's rest is its step less its
    products, so that a machine whose speed drifts between rounds moves
    both alike."""
    from run_all import ours_pass, torch_pass_for

    B = recipe.batch_size
    gemms = MODELS[name](dict(recipe.arch), B)
    ops = {lib: [operands(g, rng, lib) for g in gemms] for lib in (np, torch)}
    reps = [max(3, int(1e8 // max(1, g.flops // g.count))) for g in gemms]   # ~100 MFLOP per timing
    times = {lib: [[] for _ in gemms] for lib in (np, torch)}
    step = {"ours": [], "torch": []}
    per_epoch = EPOCH_SAMPLES / B                       # steps per epoch
    for r in range(rounds):
        order = (np, torch) if r % 2 == 0 else (torch, np)
        for i, g in enumerate(gemms):
            for lib in order:
                times[lib][i].append(time_gemm(g, ops[lib][i], lib, reps[i]) * per_epoch)
        if data is not None:
            scale = EPOCH_SAMPLES / len(data)
            for side in (("ours", "torch") if r % 2 == 0 else ("torch", "ours")):
                t = ours_pass(name, recipe_name, data, r) if side == "ours" else \
                    torch_pass_for(torch, name, recipe_name, data, r)
                step[side].append(t * scale)
    rows, products = [], []
    for i, g in enumerate(gemms):
        ours, theirs = median(times[np][i]), median(times[torch][i])
        products.append({"name": g.name, "m": g.m, "k": g.k, "n": g.n, "batch": g.batch, "count": g.count,
                         "split": g.split,
                         "numpy_gflops": g.flops * per_epoch / ours / 1e9,
                         "torch_gflops": g.flops * per_epoch / theirs / 1e9,
                         "numpy_s_per_epoch": ours, "torch_s_per_epoch": theirs})
        m = f"{g.split} x {g.m // g.split}" if g.split > 1 else g.m
        shape = f"{g.batch} x " * (g.batch > 1) + f"({m}x{g.k})({g.k}x{g.n})" + f" x{g.count}" * (g.count > 1)
        rows.append([g.name, shape, f"{products[-1]['numpy_gflops']:.0f}", f"{products[-1]['torch_gflops']:.0f}",
                     f"{theirs / ours:.2f}", f"{ours:.2f}"])
    total = {lib: [sum(times[lib][i][r] for i in range(len(gemms))) for r in range(rounds)] for lib in (np, torch)}
    ours_s, torch_s = median(total[np]), median(total[torch])
    entry = {"model": name, "recipe": recipe_name, "batch_size": B, "rounds": rounds, "products": products,
             "numpy_products_s_per_epoch": ours_s, "torch_products_s_per_epoch": torch_s,
             "products_ratio": median(o / t for o, t in zip(total[np], total[torch]))}
    rows.append(["all products", "", "", "", f"{1 / entry['products_ratio']:.2f}", f"{ours_s:.2f}"])
    lines = [f"\n{name} ({recipe_name} recipe, batch {B}): the products of one step, s/epoch: NumPy {ours_s:.2f}, "
             f"PyTorch {torch_s:.2f}, ratio {entry['products_ratio']:.2f}",
             table(rows, ["product", "shape", "NumPy GFLOP/s", "PyTorch GFLOP/s", "PyTorch/NumPy time",
                          "NumPy s/epoch"])]
    if data is not None:
        rest = {"ours": [s - p for s, p in zip(step["ours"], total[np])],
                "torch": [s - p for s, p in zip(step["torch"], total[torch])]}
        # at 0.8x: ours_products + ours_rest <= 0.8 (torch_products + torch_rest), round by round
        budget = [0.8 * t - p for t, p in zip(step["torch"], total[np])]
        entry.update({"ours_step_s": median(step["ours"]), "torch_step_s": median(step["torch"]),
                      "step_ratio": median(o / t for o, t in zip(step["ours"], step["torch"])),
                      "ours_rest_s": median(rest["ours"]), "torch_rest_s": median(rest["torch"]),
                      "rest_budget_at_0.8_s": median(budget),
                      "rest_cut_needed_at_0.8": median(1 - b / o for b, o in zip(budget, rest["ours"]))})
        e = entry
        lines.append(f"whole step, s/epoch ({len(data)} images per pass; medians over the rounds, so the parts need "
                     f"not add up): numpynets {e['ours_step_s']:.2f}, products {ours_s:.2f}, rest {e['ours_rest_s']:.2f}; "
                     f"PyTorch {e['torch_step_s']:.2f}, products {torch_s:.2f}, rest {e['torch_rest_s']:.2f}; "
                     f"step ratio {e['step_ratio']:.3f}; at 0.8x our "
                     f"rest could be at most {e['rest_budget_at_0.8_s']:.2f} ({cut_text(e['rest_cut_needed_at_0.8'])})")
    return entry, lines


def cut_text(cut: float) -> str:
    """How much less the rest must cost, or that it is already within the budget."""
    return f"{100 * cut:.0f} % less than now" if cut > 0 else f"it could grow by {100 * -cut:.0f} %"


if __name__ == "__main__":
    sys.exit(main())
