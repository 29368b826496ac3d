"""MNIST MLP (784 -> 512 ReLU -> 10): seconds per epoch for both recipes, the
fraction of the machine's float32 GEMM peak the training loop reaches, and the
ratio to PyTorch on CPU training the same model with the same recipe, all
measured in this one run.

    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_mlp.py --threads 1
    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_mlp.py --threads 2 --epochs 10

PyTorch is a benchmark-only dependency: pip install torch==2.13.0 (CPU).
The original Rust project reported 3.33 s for its 10-epoch run (Apple
laptop, Accelerate); its HEAD needs minutes per epoch (no BLAS).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from common import gemm_peak_gflops, load_mnist_arrays, machine, set_threads, table, torch_version

# FLOPs per training sample: forward x@W1 (784x512) and h@W2 (512x10),
# backward dW1 = x^T dh, dW2 = h^T dy, dh = dy W2^T (no dx for the first layer)
FLOPS_PER_SAMPLE = 2 * (784 * 512 * 2 + 512 * 10 * 3)


def ours(data, recipe_name: str, epochs: int, seed: int = 0) -> dict:
    from numpynets.models import build, build_architecture, get_model
    from numpynets.train import evaluate, fit, seeds

    spec = get_model("mlp")
    recipe = spec.recipes[recipe_name].with_overrides(epochs=epochs)
    init_rng, shuffle_rng = seeds(seed)
    model = build(build_architecture(spec, recipe.arch), seed=init_rng)
    r = fit(model, data.train, None, recipe, shuffle_rng, progress=False, log=lambda *a: None)
    acc = evaluate(model, data.test.x, data.test.y)["accuracy"]
    return {"seconds_per_epoch": r.train_seconds / r.epochs, "test_accuracy": acc}


def torch_run(data, recipe_name: str, epochs: int, seed: int = 0) -> dict:
    """The same model and recipe in PyTorch: Xavier-uniform (original) or He
    init, SGD (Nesterov momentum 0.9 and a per-batch cosine schedule for the
    default recipe), the same batch size, a fresh shuffle per epoch, the last
    partial batch kept, mean cross-entropy."""
    import torch

    from numpynets.models import get_model

    recipe = get_model("mlp").recipes[recipe_name].with_overrides(epochs=epochs)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    for m in model:
        if isinstance(m, torch.nn.Linear):
            if recipe.arch.get("init") == "he":
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                torch.nn.init.xavier_uniform_(m.weight)
            torch.nn.init.zeros_(m.bias)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    x = torch.from_numpy(data.train.x.reshape(len(data.train), -1))
    y = torch.from_numpy(data.train.y)
    n, B = len(y), recipe.batch_size
    steps = math.ceil(n / B)
    total = steps * epochs
    cosine = recipe.schedule.get("kind") == "cosine"
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    k = 0
    for _ in range(epochs):
        perm = torch.randperm(n)
        for s in range(steps):
            if cosine:
                for g in opt.param_groups:
                    g["lr"] = recipe.lr * (1 + math.cos(math.pi * k / total)) / 2
            idx = perm[s * B:(s + 1) * B]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            k += 1
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        pred = model(torch.from_numpy(data.test.x.reshape(len(data.test), -1))).argmax(1).numpy()
    return {"seconds_per_epoch": seconds / epochs, "test_accuracy": 100.0 * float((pred == data.test.y).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=2, help="epochs per measurement (the recipes use 10)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    set_threads(args.threads)
    data = load_mnist_arrays()
    peak = gemm_peak_gflops()
    print(f"machine: {machine()}; BLAS threads: {args.threads}; torch {torch_version()}")
    print(f"float32 GEMM peak (2048^3, best of 1.5 s): {peak:.1f} GFLOP/s")
    rows, out = [], {"threads": args.threads, "peak_gflops": peak, "epochs": args.epochs}
    for recipe in ("original", "default"):
        ours_r = ours(data, recipe, args.epochs)
        gflops = FLOPS_PER_SAMPLE * len(data.train) / ours_r["seconds_per_epoch"] / 1e9
        row = {"recipe": recipe, "ours_s_per_epoch": ours_r["seconds_per_epoch"], "ours_gflops": gflops,
               "fraction_of_peak": gflops / peak, "ours_test_accuracy": ours_r["test_accuracy"],
               "ours_10_epochs_s": 10 * ours_r["seconds_per_epoch"]}
        if not args.no_torch and torch_version():
            t = torch_run(data, recipe, args.epochs)
            row.update(torch_s_per_epoch=t["seconds_per_epoch"], torch_test_accuracy=t["test_accuracy"],
                       ratio_ours_to_torch=ours_r["seconds_per_epoch"] / t["seconds_per_epoch"])
        out[recipe] = row
        rows.append([recipe, f"{row['ours_s_per_epoch']:.3f}", f"{row['ours_10_epochs_s']:.2f}",
                     f"{gflops:.1f}", f"{100 * row['fraction_of_peak']:.0f}%",
                     f"{row.get('torch_s_per_epoch', float('nan')):.3f}",
                     f"{row.get('ratio_ours_to_torch', float('nan')):.2f}",
                     f"{row['ours_test_accuracy']:.2f} / {row.get('torch_test_accuracy', float('nan')):.2f}"])
    print(table(rows, ["recipe", "ours s/epoch", "ours 10 epochs s", "GFLOP/s", "of peak",
                       "torch s/epoch", "ours/torch", f"test acc after {args.epochs} ep (ours / torch)"]))
    print("the original reported 3.33 s for 10 epochs (Apple laptop, Accelerate)")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
