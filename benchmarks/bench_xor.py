"""XOR, the original recipe (2 -> 4 sigmoid -> 1 sigmoid, per-sample SGD,
1,000,000 epochs = 4,000,000 updates): our general training loop against a
plain NumPy loop written without the library, measured in the same run.

    python benchmarks/bench_xor.py                  # 1,000,000 epochs (minutes)
    python benchmarks/bench_xor.py --epochs 100000  # a tenth, extrapolated

The Rust original took 0.74 s for 1,000,000 epochs: a compiled loop over 17
floats. In NumPy every tiny array operation costs about a microsecond of
interpreter and dispatch overhead, which is what this measures.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from common import machine, set_threads


def plain_numpy(epochs: int, seed: int = 0) -> tuple[float, float]:
    """The whole algorithm in a dozen lines: the reference for per-step cost.
    Returns (seconds, final MSE)."""
    rng = np.random.default_rng(seed)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    Y = np.array([[0], [1], [1], [0]], np.float32)
    W1 = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
    b1 = np.zeros(4, np.float32)
    l2 = np.sqrt(6 / 5)
    W2 = rng.uniform(-l2, l2, (4, 1)).astype(np.float32)
    b2 = np.zeros(1, np.float32)
    lr = 0.01
    t = time.perf_counter()
    for _ in range(epochs):
        for i in rng.permutation(4):
            x, y = X[i:i + 1], Y[i:i + 1]
            h = 1 / (1 + np.exp(-(x @ W1 + b1)))          # (1, 4)
            o = 1 / (1 + np.exp(-(h @ W2 + b2)))          # (1, 1)
            do = (o - y) * o * (1 - o)                    # d(E)/dz2 for E = (y - o)^2 / 2
            dh = (do @ W2.T) * h * (1 - h)                # (1, 4)
            W2 -= lr * (h.T @ do)
            b2 -= lr * do[0]
            W1 -= lr * (x.T @ dh)
            b1 -= lr * dh[0]
    seconds = time.perf_counter() - t
    h = 1 / (1 + np.exp(-(X @ W1 + b1)))
    o = 1 / (1 + np.exp(-(h @ W2 + b2)))
    return seconds, float(np.mean((o - Y) ** 2))


def ours(epochs: int, seed: int = 0) -> tuple[float, float]:
    from numpynets.data import xor_data
    from numpynets.models import build, build_architecture, get_model
    from numpynets.train import fit, seeds

    spec = get_model("xor")
    recipe = spec.recipes["original"].with_overrides(epochs=epochs)
    init_rng, shuffle_rng = seeds(seed)
    model = build(build_architecture(spec, recipe.arch), seed=init_rng)
    data = xor_data()
    r = fit(model, data, None, recipe, shuffle_rng, progress=False, log=lambda *a: None,
            log_every=max(1, epochs // 100))
    return r.train_seconds, model.loss(model.forward(data.x), data.y)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    set_threads(1)
    scale = 1_000_000 / args.epochs
    s_plain, mse_plain = plain_numpy(args.epochs)
    s_ours, mse_ours = ours(args.epochs)
    print(f"machine: {machine()}")
    print(f"{args.epochs:,d} epochs ({4 * args.epochs:,d} updates), original recipe")
    print(f"  plain NumPy loop : {s_plain:8.2f} s  ({1e6 * s_plain / (4 * args.epochs):.1f} us/update), "
          f"final MSE {mse_plain:.4f}")
    print(f"  numpynets fit()  : {s_ours:8.2f} s  ({1e6 * s_ours / (4 * args.epochs):.1f} us/update), "
          f"final MSE {mse_ours:.4f}")
    print(f"  ratio ours / plain: {s_ours / s_plain:.2f}")
    if scale != 1:
        print(f"  extrapolated to 1,000,000 epochs: ours {s_ours * scale:.1f} s, plain {s_plain * scale:.1f} s")
    print("  the Rust original: 0.74 s for 1,000,000 epochs")
    if args.json:
        print(json.dumps({"epochs": args.epochs, "plain_seconds": s_plain, "ours_seconds": s_ours,
                          "ratio": s_ours / s_plain, "mse_plain": mse_plain, "mse_ours": mse_ours}))


if __name__ == "__main__":
    main()
