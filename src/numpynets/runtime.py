"""BLAS threads, chosen deliberately.

OpenBLAS threads spin while they wait for each other. On a 2-core machine
where another process holds a core, a 2-thread GEMM was measured 25x slower
than a 1-thread one. ``auto`` therefore decides in two steps:

1. :func:`idle_cores`: how many of our cores are idle *now*, from two
   readings of ``/proc/stat`` 0.1 s apart (the 1-minute load average, used
   before, lags by minutes: four runs of the same training picked 1 or 2
   threads depending on what had run a minute earlier). Only idle cores are
   candidates; this process's own BLAS workers, which spin for a while
   after a multi-threaded GEMM, count as idle.
2. :func:`choose_threads`: when more than one core is idle, a few real
   training steps (forward and backward on a copy of the model, so the run
   itself is untouched) are timed with each candidate count, alternating,
   and the fastest count is kept. Small models run faster on one thread
   even on an idle machine; large GEMMs faster on two.

The load can change within a run: :class:`numpynets.train.threads.ThreadTuner`
then re-checks the count with real training steps.
"""

from __future__ import annotations

import contextlib
import os
import time

from .checks import show
from .errors import ConfigError


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                     # not Linux
        return os.cpu_count() or 1


def _our_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:
        return None


def _cpu_times(path: str = "/proc/stat") -> dict[int, tuple[int, int]]:
    """{cpu: (idle jiffies, total jiffies)} from ``/proc/stat``."""
    times = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            name, *fields = line.split()
            values = [int(v) for v in fields[:8]]                  # user nice system idle iowait irq softirq steal
            idle = values[3] + values[4]
            times[int(name[3:])] = (idle, sum(values))
    return times


def idle_cores(window: float = 0.1, path: str = "/proc/stat") -> float | None:
    """Cores among ours that the *other* processes leave idle over the next
    ``window`` seconds (0.0 to cpu_count()), from two readings of
    ``/proc/stat``; None where it cannot be read (not Linux).

    This thread sleeps meanwhile, but this process's own BLAS workers may
    not: OpenBLAS threads spin for a while after a multi-threaded GEMM
    (measured here: right after a second of 2-thread GEMMs the machine read
    0.9 idle cores for ~0.1 s, 2.0 once they stopped). Their CPU time
    (``time.process_time``, all of our threads) is ours to reuse, so it is
    counted back as idle."""
    try:
        before = _cpu_times(path)
        own = time.process_time()
        time.sleep(window)
        own = time.process_time() - own                            # seconds our own threads ran meanwhile
        after = _cpu_times(path)
    except (OSError, ValueError, IndexError):
        return None
    ours = idle_between(before, after) + (own / window if window > 0 else 0.0)
    return min(ours, float(len(_our_cpus() or after)))


def idle_between(before: dict, after: dict) -> float:
    """Idle cores among ours between two :func:`_cpu_times` readings."""
    ours = _our_cpus() or set(after)
    idle = 0.0
    for cpu in ours:
        if cpu in before and cpu in after:
            d_idle = after[cpu][0] - before[cpu][0]
            d_total = after[cpu][1] - before[cpu][1]
            idle += d_idle / d_total if d_total > 0 else 1.0       # no ticks at all: nothing ran there
    return idle


def free_cores() -> int:
    """Cores that look free now: idle cores rounded to the nearest whole
    one, at least 1 (falls back to the load average off Linux)."""
    cores = cpu_count()
    idle = idle_cores()
    if idle is None:
        try:
            idle = cores - os.getloadavg()[0]
        except (AttributeError, OSError):
            idle = cores
    return max(1, min(cores, int(idle + 0.5)))


def resolve_threads(spec) -> int:
    """A thread count from ``--threads``: a number >= 1, or ``auto`` (None)
    for the free cores (:func:`free_cores`; :func:`choose_threads` then
    times the candidates when a model is at hand)."""
    if spec in (None, "auto"):
        return free_cores()
    try:
        n = int(spec)
    except (TypeError, ValueError):
        raise ConfigError(f"--threads must be a number or 'auto', got {spec!r}") from None
    if n < 1:
        raise ConfigError(f"--threads must be >= 1, got {n}")
    if n > 4096:                                       # BLAS takes a C int; no machine has more cores
        raise ConfigError(f"--threads must be <= 4096, got {show(n)}; 'auto' uses the free cores")
    return n


def choose_threads(step, candidates, rounds: int = 3, min_seconds: float = 0.02,
                   budget: float = 2.0, clock=time.perf_counter) -> tuple[int, dict[int, float]]:
    """The fastest thread count for ``step()`` (a callable doing one unit of
    real work) among ``candidates``, and the best seconds per call of each.

    Each candidate is warmed up once, then the candidates are timed in turn,
    ``rounds`` times over (alternating, so a change of load hits them
    alike), each time over enough calls to last ``min_seconds``; the best
    time of each is kept. A candidate more than 3x slower than the best so
    far is dropped (2 spinning threads on a busy machine can be 25x slower),
    and timing stops after about ``budget`` seconds. ``clock`` is the
    timer (tests pass a fake one)."""
    candidates = sorted(set(int(c) for c in candidates))
    if len(candidates) == 1:
        return candidates[0], {}
    best: dict[int, float] = {}
    calls = {}
    start = clock()
    for n in candidates:                                       # warm-up, and the number of calls
        with blas_threads(n):
            t = clock()
            step()
            once = max(clock() - t, 1e-6)
        calls[n] = max(1, min(50, int(min_seconds / once + 0.999)))
        best[n] = once
    alive = list(candidates)
    for _ in range(rounds):
        for n in list(alive):
            with blas_threads(n):
                t = clock()
                for _ in range(calls[n]):
                    step()
                best[n] = min(best[n], (clock() - t) / calls[n])
            if best[n] > 3 * min(best.values()):
                alive.remove(n)
        if clock() - start > budget:
            break
    return min(best, key=best.get), best


def training_step_probe(model, xb, yb):
    """A callable that runs forward and backward of one training step on a
    copy of ``model`` (its own buffers; the model itself is untouched), for
    :func:`choose_threads`."""
    probe = model.astype(model.dtype)

    def step():
        out = probe.forward(xb, training=True)
        _, dout = probe.loss(out, yb)
        probe.zero_grad()
        probe.backward(dout)

    return step


def auto_threads(model, xb, yb) -> tuple[int, dict]:
    """``--threads auto`` for a training run: the free cores now, and if
    that is more than one, the fastest count for this model's step on the
    batch ``(xb, yb)``. Returns the count and a record for config.json."""
    free = free_cores()
    record = {"free_cores": free}
    if free <= 1:
        return 1, record
    try:
        n, seconds = choose_threads(training_step_probe(model, xb, yb), range(1, free + 1))
    except Exception as exc:                                  # a probe must never stop a run
        record["probe_error"] = type(exc).__name__
        return free, record
    record["step_seconds"] = {str(k): round(v, 6) for k, v in seconds.items()}
    return n, record


_CONTROLLER = []


def blas_controller():
    """One ``threadpoolctl.ThreadpoolController`` for the process (finding
    the BLAS libraries takes about a millisecond; ``limit`` on it then tens
    of microseconds, cheap enough to change the count during a run)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


@contextlib.contextmanager
def blas_threads(n: int):
    """Limit BLAS (and OpenMP) to ``n`` threads inside the block."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n):
        yield n
