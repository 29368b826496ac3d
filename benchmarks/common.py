"""Shared pieces of the benchmarks: thread setup, the machine's float32 GEMM
peak, MNIST, and small printing helpers. Benchmarks report ratios measured in
one run (ours vs. a reference), because shared machines are noisy."""

from __future__ import annotations

import os
import platform
import time

import numpy as np


def set_threads(n: int) -> None:
    """Pin BLAS (ours and torch's) to ``n`` threads for the whole process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def gemm_peak_gflops(seconds: float = 1.5, size: int = 2048) -> float:
    """Best observed float32 GEMM throughput (GFLOP/s) on square matrices, with
    the current thread setting: the practical hardware limit for our loops."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    c = np.empty_like(a)
    np.matmul(a, b, out=c)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t)
    return 2 * size ** 3 / best / 1e9


def load_mnist_arrays():
    from numpynets.data import load_mnist

    return load_mnist(os.environ.get("NUMPYNETS_DATA"))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from numpynets.runtime import cpu_count

    return f"{cpu}, {cpu_count()} cores, {platform.system()}, Python {platform.python_version()}, NumPy {np.__version__}"


def torch_version() -> str | None:
    try:
        import torch

        return torch.__version__
    except ImportError:
        return None


def table(rows: list[list], header: list[str]) -> str:
    cols = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*r) for r in cols[1:]]
    return "\n".join(lines)


def torch_pass(torch, model, opt, recipe, X, Y, seed: int = 0) -> float:
    """Seconds for one shuffled pass of PyTorch training over (X, Y) with
    ``recipe``'s batch size and per-batch schedule: the loop our ``fit`` runs,
    written the usual PyTorch way (the running accuracy included, as ours)."""
    schedule = recipe.schedule_obj()
    n, B = len(Y), recipe.batch_size
    steps = -(-n // B)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    for s in range(steps):
        if schedule.per == "batch":
            for group in opt.param_groups:
                group["lr"] = schedule.lr(recipe.lr, s / steps, recipe.epochs)
        idx = perm[s * B:(s + 1) * B]
        xb, yb = X[idx], Y[idx]
        out = model(xb)
        loss = torch.nn.functional.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        int((out.argmax(1) == yb).sum())
    return time.perf_counter() - t0
