"""The training loop on small synthetic data: batching, determinism, early
stopping, divergence, interruption, the log."""

import csv

import numpy as np
import pytest

from numpynets.data.mnist import Split
from numpynets.models import Recipe, build
from numpynets.train import fit, seeds


def blobs(n=300, seed=0):
    """Four Gaussian blobs in 6-D: easy, but not trivially separable at init."""
    centres = np.random.default_rng(42).standard_normal((4, 6)) * 2   # same blobs for every split
    r = np.random.default_rng(seed)
    y = r.integers(0, 4, n)
    x = (centres[y] + r.standard_normal((n, 6))).astype(np.float32)
    return Split(x, y.astype(np.int64))


ARCH = {"input_shape": [6], "loss": "softmax_cross_entropy", "layers": [
    {"type": "linear", "in_features": 6, "out_features": 16}, {"type": "relu"},
    {"type": "linear", "in_features": 16, "out_features": 4}]}


def run(recipe, seed=0, run_dir=None, train=None, val=None):
    init_rng, shuffle_rng = seeds(seed)
    model = build(ARCH, seed=init_rng)
    train = train or blobs(300)
    val = val if val is not None else blobs(100, seed=9)
    return model, fit(model, train, val, recipe, shuffle_rng, run_dir=run_dir, progress=False, log=lambda *a: None)


def test_learns(tmp_path):
    model, r = run(Recipe(epochs=10, batch_size=16, lr=0.05), run_dir=tmp_path)
    assert r.stopped == "completed" and r.epochs == 10
    assert r.history[-1]["val_accuracy"] > 85                  # the blobs overlap: ~94% is the best
    assert r.history[-1]["train_loss"] < np.log(4) / 3         # chance level is log 4


def test_every_sample_once_per_epoch_with_partial_last_batch(monkeypatch):
    sizes = []
    from numpynets.nn.sequential import Sequential
    orig = Sequential.forward

    def spy(self, x, training=False):
        if training:
            sizes.append(len(x))
        return orig(self, x, training)

    monkeypatch.setattr(Sequential, "forward", spy)
    run(Recipe(epochs=2, batch_size=64, lr=0.01), train=blobs(300))
    assert sizes == [64, 64, 64, 64, 44] * 2                   # 300 = 4*64 + 44


def test_augmenter_gets_chunks_of_whole_batches_and_the_model_their_batches_in_order(monkeypatch):
    """With ``augment`` the trainer transforms about ``augment_pixels``
    pixels per call (whole batches, the epoch's rest last, chunks starting
    afresh each epoch) and trains on those transformed images, batch by
    batch in order; every sample once per epoch."""
    from numpynets.nn.sequential import Sequential
    from numpynets.train.fit import Trainer

    seen, calls = [], []
    orig = Sequential.forward

    def spy(self, x, training=False):
        if training:
            seen.append(x.copy())
        return orig(self, x, training)

    def augment(x):                                                # (n, 6): marks each call's images
        calls.append(x.copy())
        return x + 100.0 * len(calls)

    monkeypatch.setattr(Sequential, "forward", spy)
    monkeypatch.setattr(Trainer, "augment_pixels", 100 * 6)        # 100 samples of 6: 3 batches of 32 per call
    train = blobs(300)
    init_rng, shuffle_rng = seeds(0)
    fit(build(ARCH, seed=init_rng), train, None, Recipe(epochs=2, batch_size=32, lr=0.01), shuffle_rng,
        progress=False, log=lambda *a: None, augment=augment)
    assert [len(c) for c in calls] == [96, 96, 96, 12] * 2
    assert [len(x) for x in seen] == [32] * 9 + [12] + [32] * 9 + [12]
    want = np.concatenate([c + 100.0 * (i + 1) for i, c in enumerate(calls)])
    assert np.array_equal(np.concatenate(seen), want)              # the transformed images, in order
    for epoch in range(2):                                         # each epoch: every sample once
        got = np.concatenate(calls[4 * epoch:4 * epoch + 4])
        assert np.array_equal(got[np.lexsort(got.T)], train.x[np.lexsort(train.x.T)])


def test_same_seed_same_losses_bit_for_bit():
    recipe = Recipe(epochs=3, batch_size=32, lr=0.05, optimizer="adam")
    _, a = run(recipe, seed=7)
    _, b = run(recipe, seed=7)
    _, c = run(recipe, seed=8)
    la = [h["train_loss"] for h in a.history]
    assert la == [h["train_loss"] for h in b.history]
    assert la != [h["train_loss"] for h in c.history]


def test_log_csv_rows_and_checkpoint(tmp_path):
    run(Recipe(epochs=3, batch_size=50, lr=0.05), run_dir=tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert list(rows[0]) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                             "learning_rate", "epoch_seconds"]
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert all(float(r["epoch_seconds"]) > 0 for r in rows)
    assert (tmp_path / "best.safetensors").exists()


def test_early_stopping():
    # lr so small nothing improves by min_delta: stops after `patience` bad epochs
    _, r = run(Recipe(epochs=20, batch_size=50, lr=1e-6, patience=2, min_delta=0.5))
    assert r.stopped == "early_stopping"
    assert r.epochs == 3 and r.best_epoch == 1                 # epoch 1 sets the best, 2 and 3 fail


def test_divergence_stops_and_keeps_best(tmp_path):
    from numpynets.io import load_model

    # a fine first epoch, then the learning rate explodes (x 1e6 per epoch)
    recipe = Recipe(epochs=5, batch_size=30, lr=0.05, schedule={"kind": "exponential", "decay_rate": 1e6})
    model, r = run(recipe, run_dir=tmp_path)
    assert r.stopped == "diverged" and "diverged at epoch 2" in r.message
    best, meta = load_model(tmp_path / "best.safetensors")
    assert np.all(np.isfinite(best.flat_params)) and meta["metrics"]["best_epoch"] == 1


def test_interrupt_keeps_finished_epochs(tmp_path, monkeypatch):
    from numpynets.nn.sequential import Sequential
    calls = {"n": 0}
    orig = Sequential.backward

    def interrupting(self, d):
        calls["n"] += 1
        if calls["n"] == 15:                                   # epoch 2 (10 steps per epoch)
            raise KeyboardInterrupt
        return orig(self, d)

    monkeypatch.setattr(Sequential, "backward", interrupting)
    _, r = run(Recipe(epochs=5, batch_size=30, lr=0.05), run_dir=tmp_path)
    assert r.stopped == "interrupted" and r.epochs == 1
    assert len(list(csv.DictReader(open(tmp_path / "log.csv")))) == 1


def test_target_stop():
    _, r = run(Recipe(epochs=200, batch_size=300, lr=0.5, optimizer="sgd", momentum=0.9,
                      stop_loss=0.3, stop_accuracy=90.0))
    assert r.stopped == "target_reached" and r.epochs < 200
    assert r.history[-1]["train_loss"] < 0.3


def test_recipe_validation():
    from numpynets.errors import ConfigError
    for bad in ({"epochs": 0}, {"batch_size": 0}, {"lr": -0.1}, {"momentum": 1.5}, {"optimizer": "lbfgs"}):
        with pytest.raises(ConfigError):
            Recipe().with_overrides(**bad)


def test_interrupt_during_the_test_evaluation_keeps_the_trained_model(tmp_path, monkeypatch, capsys):
    """Ctrl-C after the last epoch, while the test set is evaluated: the run
    still saves model.safetensors (without test figures) and exits 130."""
    import json

    from numpynets.cli import main
    from numpynets.train import run as run_module

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "evaluate", interrupted)       # the test-set call only; fit has its own
    out = tmp_path / "run"
    assert main(["train", "xor", "--out", str(out), "--no-progress", "--threads", "1", "--json"]) == 130
    assert (out / "model.safetensors").exists()
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["stopped"] == "interrupted" and "test_accuracy" not in result
    assert json.loads((out / "config.json").read_text())["result"]["stopped"] == "interrupted"


def test_many_epochs_keep_only_reported_rows():
    """A million-epoch XOR run must not hold a million rows: only the
    reported epochs are kept (and logged), plus the last epoch's row."""
    init_rng, shuffle_rng = seeds(0)
    model = build(ARCH, seed=init_rng)
    r = fit(model, blobs(20), None, Recipe(epochs=500, batch_size=20, lr=0.01), shuffle_rng,
            progress=False, log=lambda *a: None, log_every=100)
    assert [h["epoch"] for h in r.history] == [100, 200, 300, 400, 500]
    assert r.last["epoch"] == 500
