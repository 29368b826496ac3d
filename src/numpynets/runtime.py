"""BLAS threads, chosen deliberately.

OpenBLAS threads spin while they wait for each other. On a 2-core machine
where another process holds a core, a 2-thread GEMM was measured 25x slower
than a 1-thread one, so ``auto`` only uses the cores that look free: all
cores minus the 1-minute load average (at least 1).
"""

from __future__ import annotations

import contextlib
import os

from .errors import ConfigError


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                     # not Linux
        return os.cpu_count() or 1


def resolve_threads(spec) -> int:
    if spec in (None, "auto"):
        cores = cpu_count()
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
        return max(1, min(cores, int(cores - busy + 0.5)))
    try:
        n = int(spec)
    except (TypeError, ValueError):
        raise ConfigError(f"--threads must be a number or 'auto', got {spec!r}") from None
    if n < 1:
        raise ConfigError(f"--threads must be >= 1, got {n}")
    return n


@contextlib.contextmanager
def blas_threads(n: int):
    """Limit BLAS (and OpenMP) to ``n`` threads inside the block."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n):
        yield n
