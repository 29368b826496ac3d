"""Exact resume (issue 13 part 2): ``numpynets train --resume RUN_DIR``
continues an interrupted run from its last completed epoch, and its final
weights and log are bit-identical to those of an uninterrupted run with the
same seed and threads. Also the checkpoint format's generic state hook, the
array training API and the one-line errors of a bad resume."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from numpynets.cli import main
from numpynets.nn.sequential import Sequential
from numpynets.train.callbacks import Callback

# small data and short runs: (model, flags) covering the three optimizers
CASES = {
    "mlp": ["--limit", "600", "--epochs", "3", "--hidden", "64"],                       # SGD, Nesterov
    "cnn": ["--limit", "400", "--epochs", "3", "--channels", "4"],                      # Adam
    "attention": ["--limit", "300", "--epochs", "3", "--d-model", "16", "--ff-dim", "32",
                  "--heads", "2", "--blocks", "1", "--warmup", "1.5"],                  # AdamW, warm-up, per batch
}


def train(out, model, flags, *extra):
    return main(["train", model, *flags, "--out", str(out), "--threads", "1", "--no-progress", *extra])


def rows(run):
    """log.csv without the timings (the only thing allowed to differ)."""
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in csv.DictReader(open(run / "log.csv"))]


def interrupt_at_step(monkeypatch, n):
    """Ctrl-C in the n-th backward pass of the process."""
    calls = {"n": 0}
    orig = Sequential.backward

    def backward(self, d):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return orig(self, d)

    monkeypatch.setattr(Sequential, "backward", backward)


def assert_same_tensors(a, b):
    ta, tb = load_file(str(a)), load_file(str(b))
    assert sorted(ta) == sorted(tb)
    for k in ta:
        assert ta[k].dtype == tb[k].dtype and ta[k].tobytes() == tb[k].tobytes(), k


@pytest.mark.parametrize("model", CASES)
def test_interrupted_then_resumed_is_bit_identical(model, tmp_path, mnist_path, monkeypatch, capsys):
    flags = [*CASES[model], "--data-dir", str(mnist_path)]
    assert train(tmp_path / "whole", model, flags) == 0
    steps = {"mlp": 10, "cnn": 23, "attention": 5}[model]            # steps per epoch with these limits
    with monkeypatch.context() as m:
        interrupt_at_step(m, 2 * steps + 2)                            # in epoch 3
        assert train(tmp_path / "cut", model, flags) == 130
    out = capsys.readouterr().out
    assert f"interrupted during epoch 3; saving what the run has; continue it with: numpynets train " \
           f"--resume {tmp_path / 'cut'}" in out
    assert len(rows(tmp_path / "cut")) == 2
    assert main(["train", "--resume", str(tmp_path / "cut"), "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert_same_tensors(tmp_path / "whole" / "model.safetensors", tmp_path / "cut" / "model.safetensors")
    assert_same_tensors(tmp_path / "whole" / "best.safetensors", tmp_path / "cut" / "best.safetensors")
    assert rows(tmp_path / "whole") == rows(tmp_path / "cut")
    result = json.loads((tmp_path / "cut" / "config.json").read_text())["result"]
    assert result["stopped"] == "completed" and result["epochs"] == 3
    assert json.loads((tmp_path / "whole" / "config.json").read_text())["result"]["final_loss"] == result["final_loss"]


def test_resume_restores_counters_and_extends(tmp_path, mnist_path, capsys):
    """Early-stopping counters and the best epoch survive a resume; --epochs
    extends a finished run (a new total), a smaller one is refused."""
    flags = ["--limit", "300", "--hidden", "16", "--data-dir", str(mnist_path), "--lr", "1e-6",
             "--min-delta", "0.5", "--patience", "3", "--schedule", "constant"]
    assert train(tmp_path / "r", "mlp", [*flags, "--epochs", "2"]) == 0
    ckpt = json.loads(load_meta(tmp_path / "r" / "checkpoint.safetensors")["training"])
    assert ckpt["epoch"] == 2 and ckpt["best_epoch"] == 1 and ckpt["state"]["callback_monitor"]["bad_epochs"] == 1
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "r"), "--epochs", "9", "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # epoch 1 set the best; 2 (before the resume), 3 and 4 did not: patience 3 stops after epoch 4
    assert summary["stopped"] == "early_stopping" and summary["epochs"] == 4 and summary["best_epoch"] == 1
    assert [r["epoch"] for r in rows(tmp_path / "r")] == ["1", "2", "3", "4"]
    assert train(tmp_path / "w", "mlp", [*flags, "--epochs", "9"]) == 0
    assert_same_tensors(tmp_path / "w" / "model.safetensors", tmp_path / "r" / "model.safetensors")


def load_meta(path):
    from numpynets.io.native import read_native

    return read_native(path)[0]


def test_checkpoint_is_a_model_file_that_evaluates(tmp_path, mnist_path, capsys):
    assert train(tmp_path / "r", "mlp", ["--limit", "300", "--hidden", "16", "--epochs", "1",
                                        "--data-dir", str(mnist_path)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "r" / "checkpoint.safetensors"), "--data-dir", str(mnist_path),
                 "--json"]) == 0
    acc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["test_accuracy"]
    assert 30 < acc <= 100


def bad_run(tmp_path, mnist_path):
    run = tmp_path / "bad"
    assert train(run, "mlp", ["--limit", "200", "--hidden", "8", "--epochs", "1", "--data-dir", str(mnist_path)]) == 0
    return run


@pytest.mark.parametrize("case, expect", [
    ("no folder", "no such run folder"),
    ("no checkpoint", "no checkpoint"),
    ("truncated", "damaged checkpoint"),
    ("not a checkpoint", "not a resumable checkpoint"),
    ("config", "not valid JSON"),
    ("finished", "completed all its 1 epochs"),
    ("fewer epochs", "already completed 1 epochs"),
    ("model too", "drop MODEL (mlp)"),
    ("lr too", "drop --lr"),
    ("arch too", "drop --hidden"),
])
def test_bad_resume_is_one_line_exit_2(case, expect, tmp_path, mnist_path, capsys):
    run = bad_run(tmp_path, mnist_path) if case != "no folder" else tmp_path / "nothing"
    args = ["train", "--resume", str(run), "--epochs", "3"]
    if case == "no checkpoint":
        (run / "checkpoint.safetensors").unlink()
    elif case == "truncated":
        data = (run / "checkpoint.safetensors").read_bytes()
        (run / "checkpoint.safetensors").write_bytes(data[:len(data) // 2])
    elif case == "not a checkpoint":
        (run / "checkpoint.safetensors").write_bytes((run / "model.safetensors").read_bytes())
    elif case == "config":
        (run / "config.json").write_text("{")
    elif case == "finished":
        args = ["train", "--resume", str(run)]
    elif case == "fewer epochs":
        args[-1] = "1"
    elif case == "model too":
        args.insert(1, "mlp")
    elif case == "lr too":
        args += ["--lr", "0.5"]
    elif case == "arch too":
        args += ["--hidden", "4"]
    before = {p.name: p.read_bytes() for p in run.iterdir()} if run.exists() else {}
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("numpynets: error:") and expect in err and "\n" not in err, err
    if case not in ("no folder",):
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before     # nothing touched


def test_no_model_and_no_resume(capsys):
    assert main(["train"]) == 2
    assert "give a MODEL" in capsys.readouterr().err


# -- the library side -------------------------------------------------------------

def blobs(n, seed):
    centres = np.random.default_rng(42).standard_normal((3, 5)) * 2
    r = np.random.default_rng(seed)
    y = r.integers(0, 3, n)
    return (centres[y] + r.standard_normal((n, 5))).astype(np.float32), y.astype(np.int64)


ARCH = {"input_shape": [5], "loss": "softmax_cross_entropy", "layers": [
    {"type": "linear", "in_features": 5, "out_features": 8}, {"type": "relu"},
    {"type": "linear", "in_features": 8, "out_features": 3}]}


class Augment(Callback):
    """A callback with a generator of its own, resumed through the hook:
    it draws once per epoch and records what it drew."""

    state_key = "augment"

    def __init__(self):
        self.rng, self.drawn = np.random.default_rng(5), []

    def on_epoch_start(self, trainer, epoch):
        self.drawn.append(float(self.rng.random()))

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state, "drawn": list(self.drawn), "scale": np.arange(3.0)}

    def load_state_dict(self, d):
        self.rng.bit_generator.state = d["rng"]
        self.drawn = list(d["drawn"])
        assert d["scale"].tolist() == [0.0, 1.0, 2.0]             # arrays come back as arrays


def test_library_checkpoint_restore_with_generic_state(tmp_path):
    """Trainer + Checkpoint + restore by hand, with an Adam optimizer, a
    layer generator and a callback's own state: a run cut after 2 of 4
    epochs and restored ends bit-identical to a whole one."""
    from numpynets.models import Recipe, build
    from numpynets.rundir import RunDir
    from numpynets.train.callbacks import Checkpoint, Monitor
    from numpynets.train.checkpoint import read_checkpoint, restore
    from numpynets.train.fit import Trainer, as_split, seeds

    train = as_split(blobs(120, 0), "train")
    recipe = Recipe(epochs=4, batch_size=16, lr=0.01, optimizer="adam",
                    schedule={"kind": "cosine", "per": "batch", "warmup_epochs": 1.5})

    class CutAfter(Callback):
        def __init__(self, epochs):
            self.epochs = epochs

        def on_epoch_end(self, trainer, end):
            if end.epoch == self.epochs:
                trainer.stop("interrupted", "cut")

    def trainer(run, cut=None):
        init, shuf = seeds(3)
        model = build(ARCH, seed=init)
        model.layers[1].rng = np.random.default_rng(11)          # a layer generator (as Dropout will have)
        aug = Augment()
        cbs = [Monitor(), aug, CutAfter(cut), Checkpoint(RunDir(run))]
        return Trainer(model, recipe, shuffle_rng=shuf, callbacks=cbs), aug

    whole, aug_whole = trainer(tmp_path / "a")
    (tmp_path / "a").mkdir()
    whole.fit(train)

    (tmp_path / "b").mkdir()
    first, _ = trainer(tmp_path / "b", cut=2)
    first.fit(train)
    first.model.layers[1].rng.random(7)                           # drawn after the checkpoint: forgotten
    model, info, tensors = read_checkpoint(RunDir(tmp_path / "b"))
    assert info["epoch"] == 2 and any(k.endswith("/m") for k in tensors) and "layer1_rng" in info["state"]
    (tmp_path / "c").mkdir()
    second, aug = trainer(tmp_path / "c")
    second.model = model
    model.layers[1].rng = np.random.default_rng(999)              # restored from the checkpoint
    from numpynets.train.fit import build_optimizer
    second.optimizer = build_optimizer(model, recipe)
    restore(second, info, tensors)
    assert second.optimizer.t == first.optimizer.t and second.epoch == 2
    second.fit(train)
    assert second.model.flat_params.tobytes() == whole.model.flat_params.tobytes()
    assert aug.drawn == aug_whole.drawn and len(aug.drawn) == 4
    assert model.layers[1].rng.bit_generator.state == whole.model.layers[1].rng.bit_generator.state
    assert [r["train_loss"] for r in second.result.history] == [r["train_loss"] for r in whole.result.history]


def test_fit_on_arrays(tmp_path):
    """The array API: (x, y) pairs, hyperparameters as keywords, an optimizer
    object or name, the run folder's files."""
    import numpynets.train as T
    from numpynets.errors import ConfigError
    from numpynets.models import build
    from numpynets.optim import SGD

    x, y = blobs(200, 0)
    xv, yv = blobs(60, 1)
    model = build(ARCH, seed=0)
    lines = []
    r = T.fit(model, (x, y), (xv, yv), epochs=5, batch_size=20, lr=0.1, momentum=0.9, nesterov=True,
              progress=False, log=lines.append, run_dir=tmp_path)
    assert r.epochs == 5 and len(lines) == 5 and r.history[-1]["val_accuracy"] > 80
    assert {p.name for p in tmp_path.iterdir()} >= {"log.csv", "best.safetensors", "checkpoint.safetensors"}
    again = build(ARCH, seed=0)
    opt = SGD([(again.flat_params, again.flat_grads)], 0.1, momentum=0.9, nesterov=True)
    r2 = T.fit(again, (x, y), (xv, yv), epochs=5, batch_size=20, optimizer=opt, progress=False, log=None)
    assert again.flat_params.tobytes() == model.flat_params.tobytes()
    assert [h["val_loss"] for h in r2.history] == [h["val_loss"] for h in r.history]
    with pytest.raises(ConfigError, match="unknown recipe field"):
        T.fit(build(ARCH, seed=0), (x, y), epochs=1, batch_sise=20, progress=False, log=None)
    with pytest.raises(ConfigError, match="one entry per sample"):
        T.fit(build(ARCH, seed=0), (x, y[:5]), epochs=1, progress=False, log=None)


def test_dropout_and_batchnorm_resume_bit_identical(tmp_path, mnist_path, monkeypatch, capsys):
    """A model with a Dropout generator and BatchNorm buffers (running
    statistics): the checkpoint carries both (the generator through the
    model's rng, the buffers in the model file), so the resumed run draws
    the same masks and ends bit-identical."""
    arch = {"name": "dropnet", "input_shape": [784], "loss": "softmax_cross_entropy", "layers": [
        {"type": "linear", "in_features": 784, "out_features": 32}, {"type": "batchnorm", "size": 32},
        {"type": "relu"}, {"type": "dropout", "p": 0.3}, {"type": "linear", "in_features": 32, "out_features": 10}]}
    f = tmp_path / "arch.json"
    f.write_text(json.dumps(arch))
    flags = ["--limit", "400", "--epochs", "3", "--lr", "0.05", "--data-dir", str(mnist_path)]
    assert train(tmp_path / "whole", str(f), flags) == 0
    with monkeypatch.context() as m:
        interrupt_at_step(m, 2 * 6 + 3)                                # 360 / 64 -> 6 steps per epoch: epoch 3
        assert train(tmp_path / "cut", str(f), flags) == 130
    ckpt = load_file(str(tmp_path / "cut" / "checkpoint.safetensors"))
    assert "1.running_mean" in ckpt                                    # the BatchNorm buffer
    assert "model_rng" in json.loads(load_meta(tmp_path / "cut" / "checkpoint.safetensors")["training"])["state"]
    assert main(["train", "--resume", str(tmp_path / "cut"), "--no-progress"]) == 0
    assert_same_tensors(tmp_path / "whole" / "model.safetensors", tmp_path / "cut" / "model.safetensors")
    assert rows(tmp_path / "whole") == rows(tmp_path / "cut")


def test_augmented_run_resumes_bit_identical(tmp_path, mnist_path, monkeypatch):
    """--augment draws from a generator of its own (trainer.extra_state): a
    resumed augmented run draws the same transforms and ends bit-identical."""
    flags = [*CASES["cnn"], "--augment", "--data-dir", str(mnist_path)]
    assert train(tmp_path / "whole", "cnn", flags) == 0
    with monkeypatch.context() as m:
        interrupt_at_step(m, 2 * 23 + 4)                               # in epoch 3
        assert train(tmp_path / "cut", "cnn", flags) == 130
    state = json.loads(load_meta(tmp_path / "cut" / "checkpoint.safetensors")["training"])["state"]
    assert "augment" in state
    assert main(["train", "--resume", str(tmp_path / "cut"), "--no-progress"]) == 0
    assert_same_tensors(tmp_path / "whole" / "model.safetensors", tmp_path / "cut" / "model.safetensors")
    assert rows(tmp_path / "whole") == rows(tmp_path / "cut")
