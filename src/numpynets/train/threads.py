"""``--threads auto`` kept right during the run: :class:`ThreadTuner`.

The count ``auto`` starts with (:func:`numpynets.runtime.auto_threads`: the
idle cores now, and a short timed probe) can turn wrong within minutes on
a shared machine: another job starts on the second core (two BLAS threads
then wait on each other, several times slower than one) or ends (a second
thread would pay again). So after the first 0.2 s of training, and then
every few seconds, the tuner runs a few real training steps with a
neighbouring count and keeps whichever is clearly faster.

How one check goes, from the times between successive steps (each step
being ``gather, forward, loss, backward, update``; partial batches are not
counted):

1. the current count's last ``trial_steps`` step times are at hand (the
   first step after a change of count is never counted: threads wake up);
2. the next count in turn (one below or above the current) runs one
   warm-up step and then ``trial_steps`` steps; a warm-up step over three
   times the current median, or a step over twice it, ends the trial at
   once (an over-subscribed core costs a step or two, not many);
3. the trial's median below ``1 - margin`` times the current's: the new
   count stays; otherwise the old one comes back and that neighbour's next
   check waits twice as long (up to ``max_every`` seconds), so a steady
   machine pays almost nothing;
4. a trial of more threads than now runs only when the cores others left
   idle since the last check (``/proc/stat``) add up to half a core per
   extra thread: on a machine kept busy by other jobs a second thread would
   only wait, and even a trial of it costs (its BLAS thread spins on);
5. between checks, the current count's own median step time is watched:
   when it grows past ``slowdown`` times what it was after the last check
   (another job started), the waits start over and the next check comes
   within ``every`` seconds.

What was used is recorded (:meth:`record`): the steps run with each
count, the switches, and ``threads``, the count that ran the most steps.
The bits of a run depend on where the count changed (BLAS sums in another
order with another thread count); ``--threads N`` gives a bit-exact rerun.
"""

from __future__ import annotations

import time
from statistics import median

from ..runtime import _cpu_times, auto_threads, blas_controller, cpu_count, idle_between
from .callbacks import Callback


class ThreadTuner(Callback):
    """Re-checks the BLAS thread count during training (see the module
    docstring). ``start``: the count in force when training starts;
    ``candidates``: the counts it may move between (one step at a time);
    ``first``: seconds of training before the first check; ``every``:
    between checks after that, doubling up to ``max_every`` while the
    current count keeps winning; ``clock``, ``set_threads`` and
    ``cpu_times`` (``/proc/stat`` readings) are for tests."""

    def __init__(self, start: int, candidates, first: float = 0.2, every: float = 1.0, max_every: float = 16.0,
                 trial_steps: int = 5, margin: float = 0.05, slowdown: float = 1.5, clock=time.perf_counter,
                 set_threads=None, cpu_times=None):
        self.candidates = sorted(set(int(c) for c in candidates) | {int(start)})
        self.current = int(start)
        self.every, self.max_every = float(every), float(max_every)
        self.trial_steps, self.margin, self.slowdown = int(trial_steps), float(margin), float(slowdown)
        self.clock = clock
        self._set = set_threads if set_threads is not None else _blas_setter()
        self.steps_by_threads: dict[int, int] = {}
        self.switches: list[dict] = []
        self.trials = 0
        # seconds of training before each neighbour's next trial: the first
        # soon (the starting count came from a 0.1 s look at the machine)
        self._wait = {n: float(first) for n in self.candidates}
        self._turn = 0                                          # which neighbour is tried next
        self._recent: list[float] = []                          # the current count's step times
        self._trial: list[float] | None = None                  # the trial count's, while one runs
        self._trial_n = None
        self._skip = True                                       # the next step is a warm-up
        self._since = 0.0                                       # training seconds since the last check
        self._last = None
        self._epoch = 0
        self._ref = None                                        # the current count's median when last judged
        self.cpu_times = cpu_times if cpu_times is not None else _cpu_times_or_none
        self._times = None                                      # the last /proc/stat reading

    # -- the callback -------------------------------------------------------
    def on_fit_start(self, trainer):
        self._set(self.current)
        self._times = self.cpu_times()

    def on_epoch_start(self, trainer, epoch):
        self._epoch = epoch
        self._last = self.clock()                               # the epoch's start: validation is not a step

    def on_step(self, trainer, step, size, loss_sum):
        now = self.clock()
        dt, self._last = now - self._last, now
        running = self._trial_n if self._trial is not None else self.current
        self.steps_by_threads[running] = self.steps_by_threads.get(running, 0) + 1
        if size != trainer.recipe.batch_size:                   # the epoch's short last batch
            return
        if self._skip:                                          # the first step after a change
            self._skip = False
            if self._trial is not None:
                self._warm_up_step(dt, step)
            return
        if self._trial is not None:
            self._trial_step(dt, step)
            return
        self._recent = [*self._recent[-(self.trial_steps - 1):], dt]
        self._since += dt
        if len(self._recent) >= self.trial_steps:
            now_median = median(self._recent)
            if self._ref is None:
                self._ref = now_median
            elif now_median > self.slowdown * self._ref:        # the load changed: check again soon
                self._wait = {c: self.every for c in self.candidates}
                self._ref = now_median
        if len(self._recent) >= self.trial_steps and len(self.candidates) > 1:
            n = self._neighbour()
            if n is not None and self._since >= self._wait[n]:
                if n > self.current and not self._room_for(n - self.current):
                    self._since = 0.0                           # no idle core for it: look again later
                    self._wait[n] = min(2 * self._wait[n], self.max_every)
                    self._turn += 1                             # (and at the other neighbour first)
                else:
                    self._start_trial(n)

    def on_fit_end(self, trainer):
        if self._trial is not None:                             # a run that ended mid-trial
            self._trial = None
            self._set(self.current)

    # -- the checks -----------------------------------------------------------
    def _neighbour(self) -> int | None:
        i = self.candidates.index(self.current)
        near = [self.candidates[j] for j in (i - 1, i + 1) if 0 <= j < len(self.candidates)]
        if not near:
            return None
        return near[self._turn % len(near)]

    def _room_for(self, extra: int) -> bool:
        """Whether ``extra`` more threads would find idle cores: the cores
        others left idle since the last look (``/proc/stat``; our own
        running thread is busy there, not idle) hold at least half a core
        per extra thread. Unknown (not Linux): yes, let the trial decide."""
        now = self.cpu_times()
        before, self._times = self._times, now
        idle = idle_between(before, now) if before and now else None
        return idle is None or idle >= 0.5 * extra

    def _start_trial(self, n: int) -> None:
        self.trials += 1
        self._turn += 1                                         # the other neighbour next time
        self._trial, self._trial_n, self._skip = [], n, True
        self._set(n)

    def _warm_up_step(self, dt: float, step: int) -> None:
        if dt > 3 * median(self._recent):                       # hopeless (an over-subscribed core)
            self._end_trial(self._trial_n, won=False, step=step)

    def _trial_step(self, dt: float, step: int) -> None:
        base = median(self._recent)
        self._trial.append(dt)
        n = self._trial_n
        if dt > 2 * base:                                       # clearly worse: stop paying for it now
            self._end_trial(n, won=False, step=step)
        elif len(self._trial) >= self.trial_steps:
            self._end_trial(n, won=median(self._trial) < (1 - self.margin) * base, step=step)

    def _end_trial(self, n: int, won: bool, step: int) -> None:
        self._trial, self._since, self._ref = None, 0.0, None
        if won:
            self.switches.append({"epoch": self._epoch + 1, "step": step + 1, "from": self.current, "to": n})
            self._wait = {c: self.every for c in self.candidates}
            self.current = n
            self._recent = []
        else:
            self._wait[n] = min(2 * self._wait[n], self.max_every)
        self._set(self.current)
        self._skip = True

    # -- what was used -------------------------------------------------------------
    def record(self) -> dict:
        """For config.json and the summary: ``threads`` (the count that ran
        the most steps), ``steps_by_threads``, ``switches``, ``trials``."""
        used = self.steps_by_threads or {self.current: 0}
        return {"threads": max(used, key=lambda n: (used[n], n == self.current)),
                "steps_by_threads": {str(k): v for k, v in sorted(used.items())},
                "switches": list(self.switches), "trials": self.trials}


def _cpu_times_or_none():
    try:
        return _cpu_times()
    except (OSError, ValueError, IndexError):
        return None


def _blas_setter():
    controller = blas_controller()

    def set_threads(n: int) -> None:
        controller.limit(limits=n)

    return set_threads


def auto_start(model, xb, yb, tune: bool = True) -> tuple[int, dict, ThreadTuner | None]:
    """``--threads auto`` for a training run, as ``numpynets train`` does
    it: the starting count and its record for config.json
    (:func:`~numpynets.runtime.auto_threads`, on the batch ``(xb, yb)``),
    and the :class:`ThreadTuner` that keeps it right during the run (None
    with ``tune=False`` or on a single core)."""
    threads, record = auto_threads(model, xb, yb)
    tuner = ThreadTuner(threads, range(1, cpu_count() + 1)) if tune and cpu_count() > 1 else None
    return threads, record, tuner
