"""Nothing lost on a hard stop (issue 13 part 3).

Real ``numpynets train`` runs in subprocesses are sent SIGKILL at random
moments, some of them while a checkpoint is being written (a temp file
``.checkpoint.safetensors.*.part`` exists). After every kill: each
``*.safetensors`` in the run folder loads and evaluates (or does not
exist), ``log.csv`` has only complete rows, and ``--resume`` continues; the
run finished by resumes ends bit-identical to an uninterrupted one. Also a
full disk (a file-size limit, RLIMIT_FSIZE) and a run folder made read-only
mid-run: a one-line error, exit 2, and the last good files intact.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parent.parent
RUNS, KILLS = 3, 3                     # runs x kills; each run then finishes by a last resume
FLAGS = ["--limit", "3000", "--hidden", "128", "--epochs", "5"]
RUN_SECONDS: list[float] = []
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals and rlimits as on Linux")


def command(out, mnist_path, *extra, resume=False):
    base = [sys.executable, "-m", "numpynets", "train"]
    if resume:
        return [*base, "--resume", str(out), "--no-progress", *extra]
    return [*base, "mlp", *FLAGS, "--out", str(out), "--threads", "1", "--no-progress",
            "--data-dir", str(mnist_path), *extra]


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": "1"}


def start(cmd, **kw):
    return subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def log_rows(run: Path) -> int:
    try:
        return max(0, len((run / "log.csv").read_text().splitlines()) - 1)
    except OSError:
        return 0


def kill_sometime(proc, run: Path, rng: random.Random, mode: str, run_seconds: float) -> str | None:
    """SIGKILL ``proc``: at a random moment of its life ("random", within the
    time an uninterrupted run takes on this machine), in the middle of a
    random epoch still to come ("training": once the log holds that many
    rows, a few milliseconds later), or as soon as a checkpoint write is
    under way ("checkpoint"). The moments are relative to the run's own
    progress, so kills land mid-run on a fast machine as on a slow one.
    Returns where the kill landed, or None if the run ended first."""
    t0 = time.monotonic()
    deadline = t0 + rng.uniform(0.05, 0.95) * run_seconds if mode == "random" else t0 + 120
    epochs = int(FLAGS[FLAGS.index("--epochs") + 1])
    target = rng.randrange(log_rows(run), epochs) if mode == "training" else None
    while proc.poll() is None:
        now = time.monotonic()
        if mode == "checkpoint" and any(run.glob(".checkpoint.safetensors.*.part")):
            break
        if mode == "training" and deadline == t0 + 120 and (run / "config.json").exists() \
                and log_rows(run) >= target:
            deadline = now + rng.uniform(0.0, 0.01)
        if now > deadline:
            break
        time.sleep(0.0005 if mode in ("checkpoint", "training") else 0.005)
    writing = any(run.glob(".checkpoint.safetensors.*.part"))
    if proc.poll() is not None:
        return None
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return "checkpoint write" if writing else "training" if (run / "config.json").exists() else "start-up"


def check_folder(run: Path, test_x, test_y) -> int:
    """Every model file loads and evaluates; log.csv only complete rows.
    Returns the number of logged epochs."""
    from numpynets.io import load_model

    for f in run.glob("*.safetensors"):
        model, _ = load_model(f)
        out = model.forward(test_x)
        assert out.shape == (len(test_x), 10) and np.all(np.isfinite(out)), f
    log = run / "log.csv"
    if not log.exists():
        return 0
    text = log.read_text()
    assert text == "" or text.endswith("\n"), "a cut-off row"
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return 0
    assert rows[0] == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate",
                       "epoch_seconds"]
    for i, r in enumerate(rows[1:], 1):
        assert len(r) == 7 and int(r[0]) == i and all(math.isfinite(float(v)) for v in r[1:]), r
    return len(rows) - 1


def same_tensors(a: Path, b: Path) -> bool:
    ta, tb = load_file(str(a)), load_file(str(b))
    return sorted(ta) == sorted(tb) and all(ta[k].tobytes() == tb[k].tobytes() for k in ta)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mnist_path):
    out = tmp_path_factory.mktemp("ref") / "run"
    t0 = time.monotonic()
    p = subprocess.run(command(out, mnist_path), env=env(), capture_output=True, text=True, timeout=300)
    RUN_SECONDS.append(time.monotonic() - t0)          # how long a whole run takes here, for the random kills
    assert p.returncode == 0, p.stderr
    return out


@pytest.fixture(scope="module")
def test_images(mnist_path):
    from numpynets.data import load_mnist

    t = load_mnist(mnist_path, limit=100).test
    return t.x[:100], t.y[:100]


def test_sigkill_at_random_moments(tmp_path, mnist_path, reference, test_images):
    rng = random.Random(1234)
    landed = []
    for r in range(RUNS):
        run = tmp_path / f"run{r}"
        for mode in ("training", "checkpoint", "random")[:KILLS]:
            resumable = (run / "checkpoint.safetensors").exists()
            proc = start(command(run, mnist_path, resume=resumable))
            landed.append(kill_sometime(proc, run, rng, mode, RUN_SECONDS[0]))
            check_folder(run, *test_images)
        if (run / "checkpoint.safetensors").exists():
            p = subprocess.run(command(run, mnist_path, resume=True), env=env(), capture_output=True, text=True,
                               timeout=300)
            if not (p.returncode == 2 and "completed all its" in p.stderr):   # or the last kill came after the end
                assert p.returncode == 0, p.stderr
        else:                                                               # killed before the first checkpoint
            p = subprocess.run(command(run, mnist_path), env=env(), capture_output=True, text=True, timeout=300)
            assert p.returncode == 0, p.stderr
        assert check_folder(run, *test_images) == 5
        assert same_tensors(reference / "model.safetensors", run / "model.safetensors")
        assert same_tensors(reference / "best.safetensors", run / "best.safetensors")
    counts = {k: landed.count(k) for k in ("start-up", "training", "checkpoint write", None)}
    print(f"\n{RUNS} runs x {KILLS} kills: {counts} (None: the run ended first); every run resumed to "
          "bit-identical weights")
    assert counts["training"] + counts["checkpoint write"] >= RUNS          # most kills land mid-run


def last_good(run: Path) -> dict:
    return {p.name: p.read_bytes() for p in run.iterdir() if p.suffix in (".safetensors", ".csv", ".json")}


def test_disk_full_is_one_line_and_keeps_the_last_good_files(tmp_path, mnist_path, reference, test_images):
    """A file-size limit between the first checkpoint's size and the last's:
    the checkpoint grows with the history it carries, so a write fails
    mid-run, as on a full disk."""
    from numpynets.io.native import read_native

    first = len(_checkpoint_at(reference, mnist_path, tmp_path / "probe"))
    last = (reference / "checkpoint.safetensors").stat().st_size
    assert last > first
    limit = (first + last) // 2
    run = tmp_path / "full"

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    p = subprocess.run(command(run, mnist_path), env=env(), capture_output=True, text=True, timeout=300,
                       preexec_fn=small_files)
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip()
    assert err.startswith("numpynets: error:") and "\n" not in err and "File too large" in err, err
    assert "cannot write the checkpoint" in err and "--resume" in err
    done = json.loads(read_native(run / "checkpoint.safetensors")[0]["training"])["epoch"]
    epochs = check_folder(run, *test_images)
    assert 1 <= done < 5 and epochs in (done, done + 1)        # the log row comes before the checkpoint
    assert not list(run.glob(".*.part"))                                    # no temp file left behind
    p = subprocess.run(command(run, mnist_path, resume=True), env=env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert same_tensors(reference / "model.safetensors", run / "model.safetensors")


def _checkpoint_at(reference, mnist_path, out) -> bytes:
    """The epoch-0 checkpoint of the reference run (its size, for the limit)."""
    p = start(command(out, mnist_path))
    try:
        while not (out / "checkpoint.safetensors").exists():
            assert p.poll() is None, p.communicate()[1]
            time.sleep(0.005)
        return (out / "checkpoint.safetensors").read_bytes()
    finally:
        p.kill()
        p.communicate()


def test_read_only_folder_mid_run(tmp_path, mnist_path, reference, test_images):
    """The run folder made read-only after two epochs: the next checkpoint
    cannot be written; one line, exit 2, the files written before intact.
    (Root ignores permission bits: the run then goes without the
    capabilities that let it.)"""
    run = tmp_path / "ro"
    run.mkdir()
    kw = {"preexec_fn": _drop_root_file_powers} if os.geteuid() == 0 else {}
    proc = start(command(run, mnist_path), **kw)
    try:
        while check_folder(run, *test_images) < 2:
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.002)
        run.chmod(0o555)
        before = last_good(run)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err.strip()
    assert proc.returncode == 2 and err.startswith("numpynets: error:") and "\n" not in err, err
    assert "Permission denied" in err
    after = last_good(run)
    # the model files are as they were when the folder became read-only
    # (log.csv is a file of its own and may gain a row)
    assert {k: v for k, v in after.items() if k != "log.csv"} == {k: v for k, v in before.items() if k != "log.csv"}
    assert check_folder(run, *test_images) >= 2
    run.chmod(0o755)
    p = subprocess.run(command(run, mnist_path, resume=True), env=env(), capture_output=True, text=True, timeout=300,
                       **kw)
    assert p.returncode == 0, p.stderr
    assert same_tensors(reference / "model.safetensors", run / "model.safetensors")
    shutil.rmtree(run, ignore_errors=True)


def _drop_root_file_powers():
    """In the child, before exec: drop CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from the bounding set, so that the program it runs
    (as root still) obeys permission bits."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):                                     # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:              # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
