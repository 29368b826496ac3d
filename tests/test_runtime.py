"""Thread choice for ``--threads auto``: idle cores from fresh /proc/stat
readings, the timing of candidate counts, the probe leaving the model
untouched, and the choice recorded in config.json and the summary."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest

import numpynets.runtime as runtime
from numpynets.errors import ConfigError

STAT = """cpu  {a} 0 0 {b} 0 0 0 0 0 0
cpu0 {c0u} 0 0 {c0i} 0 0 0 0 0 0
cpu1 {c1u} 0 0 {c1i} 0 0 0 0 0 0
intr 1 2 3
"""


def test_idle_cores_from_two_readings(tmp_path, monkeypatch):
    """cpu0 spent the window idle, cpu1 busy: one idle core, one free."""
    path = tmp_path / "stat"
    readings = [dict(c0u=100, c0i=100, c1u=100, c1i=100), dict(c0u=100, c0i=200, c1u=175, c1i=125)]

    own = [3.0]                                               # this process's CPU seconds (all threads)

    def fake_sleep(_):
        path.write_text(STAT.format(a=0, b=0, **readings[1]))

    path.write_text(STAT.format(a=0, b=0, **readings[0]))
    monkeypatch.setattr(runtime.time, "sleep", fake_sleep)
    monkeypatch.setattr(runtime.time, "process_time", lambda: own[0])
    monkeypatch.setattr(runtime, "_our_cpus", lambda: {0, 1})
    idle = runtime.idle_cores(path=str(path))
    assert idle == pytest.approx(1.0 + 25 / 100)
    monkeypatch.setattr(runtime, "idle_cores", lambda: 1.25)
    monkeypatch.setattr(runtime, "cpu_count", lambda: 2)
    assert runtime.free_cores() == 1
    monkeypatch.setattr(runtime, "idle_cores", lambda: 1.7)
    assert runtime.free_cores() == 2
    monkeypatch.setattr(runtime, "idle_cores", lambda: 0.0)
    assert runtime.free_cores() == 1                          # never fewer than one


def test_idle_cores_counts_our_own_spinning_threads_as_idle(tmp_path, monkeypatch):
    """cpu1 was busy for the whole 0.1 s window, but 0.06 s of that was this
    process's own BLAS workers spinning after a GEMM: 0.6 of a core is ours
    to use, so 1.0 + 0.6 cores are idle (and never more than we have)."""
    path = tmp_path / "stat"
    readings = [dict(c0u=100, c0i=100, c1u=100, c1i=100), dict(c0u=100, c0i=110, c1u=110, c1i=100)]
    own = [5.0]

    def fake_sleep(window):
        path.write_text(STAT.format(a=0, b=0, **readings[1]))
        own[0] += spun * window

    monkeypatch.setattr(runtime.time, "sleep", fake_sleep)
    monkeypatch.setattr(runtime.time, "process_time", lambda: own[0])
    monkeypatch.setattr(runtime, "_our_cpus", lambda: {0, 1})
    for spun, expected in ((0.0, 1.0), (0.6, 1.6), (1.5, 2.0)):
        path.write_text(STAT.format(a=0, b=0, **readings[0]))
        assert runtime.idle_cores(window=0.1, path=str(path)) == pytest.approx(expected)


def test_idle_cores_unreadable(tmp_path):
    assert runtime.idle_cores(window=0.0, path=str(tmp_path / "missing")) is None


def test_choose_threads_keeps_the_faster_count(monkeypatch):
    """A step that is slow with 2 threads (a busy machine) and one that is
    slow with 1 (big GEMMs on a quiet one): the faster count wins each time,
    and the slow candidate's best time is reported. A fake clock advances
    by each call's cost, so the test does not depend on the machine's load."""
    current = {"n": 1}
    now = [0.0]

    @contextlib.contextmanager
    def fake_threads(n):
        current["n"] = n
        yield n

    monkeypatch.setattr(runtime, "blas_threads", fake_threads)
    for slow, fast in ((2, 1), (1, 2)):
        calls = {1: 0, 2: 0}

        def step():
            calls[current["n"]] += 1
            now[0] += 0.004 if current["n"] == slow else 0.001

        n, seconds = runtime.choose_threads(step, [1, 2], min_seconds=0.005, clock=lambda: now[0])
        assert n == fast
        assert seconds[slow] == pytest.approx(0.004) and seconds[fast] == pytest.approx(0.001)
        assert calls[1] > 1 and calls[2] > 1                    # both were timed, more than the warm-up
    assert runtime.choose_threads(lambda: None, [1]) == (1, {})


def test_choose_threads_drops_a_hopeless_candidate(monkeypatch):
    """Two spinning threads on a busy core can be 25x slower: after one
    round that candidate is no longer timed."""
    current = {"n": 1}
    now = [0.0]
    calls = {1: 0, 2: 0}

    @contextlib.contextmanager
    def fake_threads(n):
        current["n"] = n
        yield n

    def step():
        calls[current["n"]] += 1
        now[0] += 0.025 if current["n"] == 2 else 0.001

    monkeypatch.setattr(runtime, "blas_threads", fake_threads)
    n, _ = runtime.choose_threads(step, [1, 2], rounds=5, min_seconds=0.001, clock=lambda: now[0])
    assert n == 1 and calls[2] == 2 and calls[1] == 6          # warm-up + one round, against warm-up + 5


def test_resolve_threads_numbers_and_errors(monkeypatch):
    assert runtime.resolve_threads(3) == 3 and runtime.resolve_threads("2") == 2
    monkeypatch.setattr(runtime, "free_cores", lambda: 1)
    assert runtime.resolve_threads("auto") == 1 and runtime.resolve_threads(None) == 1
    for bad in ("many", 0, "-1"):
        with pytest.raises(ConfigError, match="--threads"):
            runtime.resolve_threads(bad)


def test_auto_threads_probe_leaves_the_model_untouched(monkeypatch):
    from numpynets.models.registry import build, build_architecture, get_model

    model = build(build_architecture(get_model("mlp"), {"hidden": 32}), seed=0)
    before = model.flat_params.copy()
    model.flat_grads[:] = 5.0
    grads = model.flat_grads.copy()
    rng = np.random.default_rng(0)
    xb, yb = rng.random((8, 784), dtype=np.float32), rng.integers(0, 10, 8)
    monkeypatch.setattr(runtime, "free_cores", lambda: 2)
    n, record = runtime.auto_threads(model, xb, yb)
    assert n in (1, 2) and record["free_cores"] == 2
    assert set(record["step_seconds"]) == {"1", "2"} and all(v > 0 for v in record["step_seconds"].values())
    assert np.array_equal(model.flat_params, before) and np.array_equal(model.flat_grads, grads)
    monkeypatch.setattr(runtime, "free_cores", lambda: 1)
    assert runtime.auto_threads(model, xb, yb) == (1, {"free_cores": 1})


def test_auto_threads_recorded_in_config_and_summary(tmp_path, monkeypatch):
    from numpynets.train.run import TrainOptions, run_training

    monkeypatch.setattr(runtime, "free_cores", lambda: 2)
    r = run_training(TrainOptions(model="xor", seed=0, out=str(tmp_path / "run"), progress=False,
                                  threads="auto", overrides={"epochs": 10}), log=lambda *a: None)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["threads"] == r["threads"] in (1, 2)
    assert config["threads_auto"]["free_cores"] == 2 and set(config["threads_auto"]["step_seconds"]) == {"1", "2"}
    assert config["result"]["threads"] == r["threads"]


# -- the tuner: --threads auto re-checked during the run -------------------------------

class _Machine:
    """A fake clock and BLAS: each step costs ``cost(n, t)`` seconds with n
    threads at time t; the tuner sets n through ``set_threads``."""

    def __init__(self, cost):
        self.cost, self.now, self.n, self.sets, self.steps = cost, 0.0, None, [], 0

    def set_threads(self, n):
        self.n = n
        self.sets.append(n)

    def run(self, tuner, seconds, batch=64, steps_per_epoch=100):
        from types import SimpleNamespace

        trainer = SimpleNamespace(recipe=SimpleNamespace(batch_size=batch))
        tuner.on_fit_start(trainer)
        epoch, spent = 0, {}
        while self.now < seconds:
            tuner.on_epoch_start(trainer, epoch)
            for s in range(steps_per_epoch):
                dt = self.cost(self.n, self.now)
                spent[self.n] = spent.get(self.n, 0.0) + dt
                self.now += dt
                self.steps += 1
                tuner.on_step(trainer, s, batch if s < steps_per_epoch - 1 else batch // 2, 0.0)
            epoch += 1
        tuner.on_fit_end(trainer)
        return spent


def _tuner(machine, start, **kw):
    from numpynets.train.threads import ThreadTuner

    kw.setdefault("cpu_times", lambda: None)                   # idle cores unknown: every trial runs
    return ThreadTuner(start, [1, 2], clock=lambda: machine.now, set_threads=machine.set_threads, **kw)


def test_tuner_leaves_a_count_that_is_three_times_slower():
    """auto started on 2 threads, then another job took a core (2 threads 3x
    slower): within the first checks the tuner is on 1 thread and stays;
    its later trials of 2 threads stop after a step or two."""
    m = _Machine(lambda n, t: 0.003 if n == 2 else 0.001)
    tuner = _tuner(m, start=2)
    spent = m.run(tuner, seconds=60.0)
    rec = tuner.record()
    assert rec["threads"] == 1 and m.n == 1
    assert rec["switches"][0]["from"] == 2 and rec["switches"][0]["to"] == 1
    assert len(rec["switches"]) == 1
    assert spent[2] < 1.5 + 0.05 * 60                       # the first second, then a few steps per check
    assert sum(rec["steps_by_threads"].values()) == m.steps


def test_tuner_moves_to_the_faster_count_and_does_not_flap():
    m = _Machine(lambda n, t: 0.0007 if n == 2 else 0.001)    # big GEMMs, a quiet machine: 2 threads win
    tuner = _tuner(m, start=1)
    m.run(tuner, seconds=30.0)
    assert tuner.current == 2 and tuner.record()["threads"] == 2 and len(tuner.switches) == 1
    m = _Machine(lambda n, t: 0.001 if n == 2 else 0.00101)   # within the margin: stay where it started
    tuner = _tuner(m, start=1)
    m.run(tuner, seconds=30.0)
    assert tuner.switches == [] and tuner.current == 1 and tuner.trials >= 3


def test_tuner_follows_a_load_that_changes_during_the_run():
    """2 threads are faster for the first 20 s; then another job starts and
    they become 3x slower: the tuner is back on 1 thread within seconds."""
    m = _Machine(lambda n, t: (0.0007 if n == 2 else 0.001) if t < 20 else (0.003 if n == 2 else 0.001))
    tuner = _tuner(m, start=1)
    spent = m.run(tuner, seconds=60.0)
    assert [(s["from"], s["to"]) for s in tuner.switches] == [(1, 2), (2, 1)]
    assert tuner.current == 1
    assert spent[2] < 20 + 3.0                               # back on 1 thread within ~3 s of the change


def test_tuner_tries_more_threads_only_where_cores_are_idle(monkeypatch):
    """Other jobs keep both cores busy (no idle jiffies in /proc/stat): no
    trial of a second thread, which would only wait (and spin); once a core
    is idle, the trial runs and the faster count is found."""
    m = _Machine(lambda n, t: 0.0007 if n == 2 else 0.001)
    freed = {"at": None}

    def cpu_times():                                         # {cpu: (idle, total)} jiffies, 100 per second
        total = int(m.now * 100)
        idle1 = 0 if freed["at"] is None else int((m.now - freed["at"]) * 100)
        return {0: (0, total), 1: (idle1, total)}

    monkeypatch.setattr(runtime, "_our_cpus", lambda: {0, 1})
    tuner = _tuner(m, start=1, cpu_times=cpu_times)
    m.run(tuner, seconds=20.0)
    assert tuner.trials == 0 and tuner.current == 1
    freed["at"] = m.now                                      # from now on core 1 is idle
    m.run(tuner, seconds=60.0)
    assert tuner.trials >= 1 and tuner.current == 2


def test_tuner_records_threads_used_in_a_real_fit(monkeypatch):
    """In the real loop: every step is counted under the count it ran with,
    the trials really change the BLAS count, and the count in force at the
    end is the tuner's."""
    from numpynets.models import Recipe, build
    from numpynets.train import fit, seeds
    from numpynets.train.threads import ThreadTuner

    arch = {"input_shape": [6], "loss": "softmax_cross_entropy", "layers": [
        {"type": "linear", "in_features": 6, "out_features": 16}, {"type": "relu"},
        {"type": "linear", "in_features": 16, "out_features": 4}]}
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((300, 6)).astype(np.float32), rng.integers(0, 4, 300)
    sets = []
    tuner = ThreadTuner(1, [1, 2], first=0.0, every=0.0, trial_steps=2, set_threads=sets.append,
                        cpu_times=lambda: None)
    init_rng, shuffle_rng = seeds(0)
    fit(build(arch, seed=init_rng), (x, y), None, Recipe(epochs=3, batch_size=16, lr=0.1), shuffle_rng,
        progress=False, log=None, callbacks=[tuner])
    rec = tuner.record()
    assert sum(rec["steps_by_threads"].values()) == 3 * 19
    assert 2 in sets and tuner.trials >= 1 and sets[-1] == tuner.current
    assert rec["threads"] in (1, 2)


def test_auto_mlp_run_records_the_threads_used(tmp_path, mnist_path, monkeypatch):
    from numpynets.train.run import TrainOptions, run_training

    monkeypatch.setattr(runtime, "free_cores", lambda: 2)
    monkeypatch.setattr(runtime, "cpu_count", lambda: 2)
    r = run_training(TrainOptions(model="mlp", recipe="original", seed=0, out=str(tmp_path / "run"), progress=False,
                                  threads="auto", limit=1000, overrides={"epochs": 1}), log=lambda *a: None)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    used = config["threads_auto"]["steps_by_threads"]
    assert sum(used.values()) == 15                          # 900 training images, batch 64
    assert config["threads"] == r["threads"] == config["result"]["threads"] in (1, 2)
    assert r["threads_used"] == used and config["threads_auto"]["switches"] == []
