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

    def fake_sleep(_):
        path.write_text(STAT.format(a=0, b=0, **readings[1]))

    path.write_text(STAT.format(a=0, b=0, **readings[0]))
    monkeypatch.setattr(runtime.time, "sleep", fake_sleep)
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
