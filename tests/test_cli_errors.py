"""Bad input on the command line (issue 2's list): each gives ONE line on
stderr ("numpynets: error: ..." naming the file or option and the fix), exit
status 2, no traceback, and overwrites nothing. Most cases call
``numpynets.cli.main`` in-process (fast); two run the real program."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_mnist import write_fake_mnist
from needs import unavailable
from PIL import Image

from numpynets.cli import main
from numpynets.data.idx import write_idx
from numpynets.io import save_model
from numpynets.models import mlp
from numpynets.models.registry import build


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A fresh working directory, no MNIST to be found and no network to
    fetch it from: a case that got as far as loading data would fail loudly."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("NUMPYNETS_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("NUMPYNETS_MIRRORS", "http://127.0.0.1:9/")
    return cwd


def snapshot(*roots) -> dict:
    """Every file under ``roots`` -> (size, mtime_ns, bytes)."""
    out = {}
    for root in roots:
        for p in sorted(Path(root).rglob("*")):
            if p.is_file():
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns, p.read_bytes())
    return out


def fails(argv, capsys, *expected, roots=()) -> str:
    """Run ``main(argv)``: exit 2, one line on stderr holding ``expected``,
    nothing under ``roots`` (and the working directory) changed."""
    roots = (os.getcwd(), *roots)
    before = snapshot(*roots)
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("numpynets: error: "), err
    for e in expected:
        assert e in err, (e, err)
    assert snapshot(*roots) == before
    return err


# -- train: names and hyperparameters -------------------------------------------

@pytest.mark.parametrize("args,expected", [
    (["nope"], ["unknown model 'nope'", "choose one of", "mlp"]),
    (["mnist_mlp.json"], ["mnist_mlp.json: cannot read"]),
    (["mlp", "--recipe", "fast"], ["no recipe 'fast'", "original", "default"]),
    (["mlp", "--lr", "-0.1"], ["learning rate must be > 0", "-0.1"]),
    (["mlp", "--lr", "0"], ["learning rate must be > 0"]),
    (["mlp", "--lr", "nan"], ["learning rate must be > 0"]),
    (["mlp", "--batch-size", "0"], ["batch size must be", ">= 1, got 0"]),
    (["mlp", "--batch-size", "-64"], ["batch size must be"]),
    (["mlp", "--epochs", "0"], ["epochs must be", ">= 1, got 0"]),
    (["mlp", "--val-split", "1"], ["validation split must be in [0, 1)", "1.0"]),
    (["mlp", "--val-split", "1.5"], ["validation split must be in [0, 1)"]),
    (["mlp", "--val-split", "-0.1"], ["validation split must be in [0, 1)"]),
    (["mlp", "--val-split", "nan"], ["validation split must be in [0, 1)"]),
    (["mlp", "--limit", "0"], ["--limit must be >= 1"]),
    (["mlp", "--momentum", "1.5"], ["momentum must be in [0, 1)"]),
    (["mlp", "--recipe", "original", "--nesterov"], ["Nesterov needs a momentum > 0", "--momentum"]),
    (["mlp", "--lr", "inf"], ["learning rate must be > 0 and finite", "inf"]),
    (["mlp", "--weight-decay", "nan"], ["weight decay must be >= 0 and finite", "nan"]),
    (["mlp", "--min-delta", "nan"], ["min delta must be >= 0 and finite", "nan"]),
    (["mlp", "--threads", "zero"], ["--threads must be a number"]),
])
def test_train_bad_names_and_hyperparameters(args, expected, capsys):
    fails(["train", *args, "--threads", "1"] if "--threads" not in args else ["train", *args], capsys, *expected)


# -- train: schedule files -------------------------------------------------------

@pytest.mark.parametrize("content,expected", [
    ({"scheduler_type": "warp_drive"}, ["unknown scheduler_type 'warp_drive'", "step_decay"]),
    ({"kind": "zigzag"}, ["unknown schedule 'zigzag'"]),
    ({"scheduler_type": "step_decay", "step_size": -3, "gamma": 0.5}, ["step_size must be > 0"]),
    ({"scheduler_type": "step_decay", "step_size": 3, "gamma": "half"}, ["'gamma' must be a number"]),
    ({"scheduler_type": "exponential", "decay": 0.9}, ["unknown schedule field(s) ['decay']"]),
    ({"scheduler_type": "cosine_annealing", "min_lr": 1e-4, "T_max": 0}, ["T_max must be > 0"]),
    ({"scheduler_type": "constant", "per": "week"}, ["'per' must be"]),
    ([1, 2, 3], ["must be a JSON object"]),
    ("{not json", ["not valid JSON"]),
])
def test_train_bad_schedule_file(content, expected, capsys, tmp_path):
    path = tmp_path / "sched.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    err = fails(["train", "mlp", "--schedule-config", path, "--threads", "1"], capsys, *expected, roots=[tmp_path])
    assert str(path) in err


def test_train_missing_schedule_file(capsys, tmp_path):
    fails(["train", "mlp", "--schedule-config", tmp_path / "nope.json"], capsys,
          str(tmp_path / "nope.json"), "cannot read")


# -- train: bad data files -------------------------------------------------------

@pytest.fixture
def fake_data(tmp_path):
    folder = tmp_path / "fake"
    write_fake_mnist(folder, n_train=64, n_test=16, gz=True)
    return folder


def test_train_corrupt_idx_files(fake_data, capsys, tmp_path):
    base = ["train", "mlp", "--data-dir", fake_data, "--no-verify", "--threads", "1", "--no-progress"]
    images = fake_data / "train-images-idx3-ubyte.gz"
    good = images.read_bytes()
    images.write_bytes(gzip.compress(bytes([0, 0, 8, 3, 0, 0, 0, 64, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(999)))
    fails(base, capsys, str(images), "truncated", "download again", roots=[tmp_path])
    images.write_bytes(gzip.compress(b"\x50\x4b\x03\x04" + bytes(20)))         # a zip, not IDX
    fails(base, capsys, str(images), "bad magic number", roots=[tmp_path])
    images.write_bytes(good[:len(good) // 2])                                  # gzip cut short
    fails(base, capsys, str(images), "corrupt or truncated gzip", roots=[tmp_path])
    images.write_bytes(good)
    labels = fake_data / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.zeros(63, np.uint8))
    fails(base, capsys, str(labels), "64 images", "63 labels", roots=[tmp_path])
    fails(base[:4] + base[5:], capsys, "SHA-256 mismatch", "--no-verify", roots=[tmp_path])    # verified


def test_train_named_data_dir_without_data(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    fails(["train", "mlp", "--data-dir", empty, "--threads", "1"], capsys, str(empty),
          f"numpynets data --download --data-dir {empty}")


# -- train: output folders -------------------------------------------------------

def test_train_out_under_a_file(fake_data, capsys, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    base = ["train", "mlp", "--data-dir", fake_data, "--no-verify", "--threads", "1", "--no-progress",
            "--epochs", "1"]
    fails(base + ["--out", a_file / "run"], capsys, str(a_file / "run"), "choose another with --out",
          roots=[tmp_path])
    fails(base + ["--out", a_file], capsys, str(a_file), "--out", roots=[tmp_path])
    assert a_file.read_text() == "keep me"


def read_only_folder(tmp_path) -> Path:
    """A folder nobody may create anything in: a chmod 555 one, or, for root
    (whom permissions do not stop), a kernel file system such as /sys."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        (ro / "probe").mkdir()
    except PermissionError:
        return ro
    (ro / "probe").rmdir()
    for cand in (Path("/sys"), Path("/proc")):
        try:
            (cand / "numpynets-probe").mkdir()
        except OSError:
            return cand
        (cand / "numpynets-probe").rmdir()
    unavailable("no folder here refuses writes", "run the tests as a user that cannot write /proc")


def test_train_out_in_a_read_only_folder(fake_data, capsys, tmp_path):
    ro = read_only_folder(tmp_path)
    try:
        fails(["train", "mlp", "--data-dir", fake_data, "--no-verify", "--threads", "1", "--no-progress",
               "--out", ro / "numpynets-run"], capsys, str(ro / "numpynets-run"), "cannot write the run folder",
              "choose another with --out", roots=[tmp_path])
        assert not (ro / "numpynets-run").exists()
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_train_save_original_where_it_cannot_be_written(capsys, tmp_path):
    """Checked before the data and the training, not after them."""
    fails(["train", "mlp", "--threads", "1", "--save-original", tmp_path / "no" / "mnist_model.bin"], capsys,
          str(tmp_path / "no" / "mnist_model.bin"), "cannot write there", "--save-original", roots=[tmp_path])
    fails(["train", "mlp", "--threads", "1", "--save-original", tmp_path], capsys, str(tmp_path), "is a folder",
          roots=[tmp_path])


def test_train_out_already_holding_a_run(fake_data, capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("epoch,train_loss\n1,0.5\n")
    (run / "model.safetensors").write_bytes(b"precious")
    fails(["train", "mlp", "--data-dir", fake_data, "--no-verify", "--threads", "1", "--no-progress",
           "--out", run], capsys, str(run), "already holds a run", roots=[tmp_path])
    assert (run / "model.safetensors").read_bytes() == b"precious"


# -- model files -----------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A valid model, bad model files of every kind, and a digit image."""
    d = tmp_path_factory.mktemp("models")
    from safetensors.numpy import save_file

    arch = mlp.architecture(hidden=32)
    arch.update(name="mlp", dataset="mnist")
    good = d / "good.safetensors"
    save_model(good, build(arch, seed=0))
    data = good.read_bytes()
    f = {"good": good}
    f["text"] = d / "text.safetensors"
    f["text"].write_text("this is not a model\n" * 10)
    f["empty"] = d / "empty.safetensors"
    f["empty"].write_bytes(b"")
    f["noise"] = d / "noise.safetensors"
    f["noise"].write_bytes(np.random.default_rng(0).bytes(5000))
    f["png"] = d / "digit.safetensors"
    Image.new("L", (28, 28)).save(f["png"], format="PNG")
    f["truncated"] = d / "truncated.safetensors"
    f["truncated"].write_bytes(data[:len(data) // 2])
    f["truncated_header"] = d / "header.safetensors"
    f["truncated_header"].write_bytes(data[:40])
    f["foreign"] = d / "foreign.safetensors"                   # safetensors, no numpynets metadata
    save_file({"weight": np.zeros((3, 3), np.float32)}, str(f["foreign"]))
    # the right metadata (hidden 32) over tensors of another architecture (hidden 16)
    from numpynets.io.native import read_native

    meta, _ = read_native(good)
    other = build({**arch, **mlp.architecture(hidden=16)}, seed=0)
    f["other_arch"] = d / "other_arch.safetensors"
    save_file({n: np.ascontiguousarray(p) for n, p, _ in other.named_parameters()}, str(f["other_arch"]),
              metadata={k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})
    # the right shapes but a parameter missing
    f["missing_tensor"] = d / "missing.safetensors"
    tensors = {n: np.ascontiguousarray(p) for n, p, _ in build(arch, seed=0).named_parameters()}
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, str(f["missing_tensor"]), metadata={k: v if isinstance(v, str) else json.dumps(v)
                                                          for k, v in meta.items()})
    f["not_a_classifier"] = d / "xorish.safetensors"
    save_model(f["not_a_classifier"], build({"name": "custom", "input_shape": [2], "loss": "mse", "layers": [
        {"type": "linear", "in_features": 2, "out_features": 1}]}, seed=0))
    f["folder"] = d / "empty-run"
    f["folder"].mkdir()
    f["missing"] = d / "missing-model.safetensors"
    f["image"] = d / "seven.png"
    img = np.zeros((28, 28), np.uint8)
    img[5:8, 6:22] = 255
    img[8:24, 15:18] = 255
    Image.fromarray(img).save(f["image"])
    return f


BAD_MODELS = {
    "text": "not a safetensors model file",
    "empty": "not a safetensors model file",
    "noise": "not a safetensors model file",
    "png": "not a safetensors model file",
    "truncated": "truncated",
    "truncated_header": "not a safetensors model file",
    "foreign": "not a numpynets model",
    "other_arch": "disagree with the file's architecture",
    "missing_tensor": "disagree with the file's architecture",
    "folder": "no model.safetensors",
    "missing": "no such model file",
}


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("kind", sorted(BAD_MODELS))
def test_bad_model_file(files, kind, command, capsys):
    argv = [command, files[kind]] + ([files["image"]] if command == "predict" else ["--limit", "10"])
    fails(argv, capsys, str(files[kind]), BAD_MODELS[kind], roots=[files["good"].parent])


def test_predict_with_a_model_that_is_not_a_digit_classifier(files, capsys):
    fails(["predict", files["not_a_classifier"], files["image"]], capsys, str(files["not_a_classifier"]),
          "not an MNIST digit classifier")


def test_good_model_predicts(files, capsys):
    assert main(["predict", str(files["good"]), str(files["image"]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(sum(result["predictions"][0]["probabilities"]) - 1) < 1e-4


# -- predict: unreadable images --------------------------------------------------

def test_predict_unreadable_images(files, capsys, tmp_path):
    text = tmp_path / "digit.png"
    text.write_text("not a picture")
    cut = tmp_path / "cut.png"
    cut.write_bytes(files["image"].read_bytes()[:60])
    for path, expected in [(text, "not an image Pillow can read"), (cut, "not an image Pillow can read"),
                           (tmp_path / "nope.png", "no such image file"), (tmp_path, "is a folder")]:
        err = fails(["predict", files["good"], files["image"], path], capsys, str(path), expected,
                    roots=[tmp_path])
        assert "use a PNG" in err or "check the path" in err or "name the image files" in err


# -- the real program ------------------------------------------------------------

def run_cli(args, cwd, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "numpynets", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_subprocess_bad_hyperparameter(isolated):
    r = run_cli(["train", "mlp", "--epochs", "0", "--threads", "1"], cwd=isolated)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "numpynets: error: epochs must be a whole number >= 1, got 0\n"
    assert list(isolated.iterdir()) == []


def test_subprocess_bad_model_file(files, isolated):
    r = run_cli(["predict", files["truncated"], files["image"]], cwd=isolated)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1 and str(files["truncated"]) in r.stderr


# -- architectures that do not fit the data -----------------------------------------

@pytest.mark.parametrize("arch,expected", [
    ({"input_shape": [100], "layers": [{"type": "linear", "in_features": 100, "out_features": 10}]},
     "takes (100,)"),
    ({"input_shape": [784], "layers": [{"type": "linear", "in_features": 784, "out_features": 3}]},
     "gives (3,)"),
    ({"input_shape": [784], "loss": "mse", "layers": [{"type": "linear", "in_features": 784, "out_features": 10}]},
     "loss mse"),
    ({"input_shape": [2], "dataset": "xor", "layers": [{"type": "linear", "in_features": 2, "out_features": 2}]},
     "xor needs 2 input values"),
])
def test_train_architecture_that_does_not_fit_the_data(arch, expected, capsys, tmp_path):
    """Caught before any run folder or data: not an IndexError deep in the loss."""
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch))
    fails(["train", path, "--threads", "1"], capsys, str(path), expected, "fix the architecture",
          roots=[tmp_path])


def test_evaluate_a_model_that_does_not_fit_mnist(capsys, tmp_path):
    path = tmp_path / "three.safetensors"
    save_model(path, build({"name": "custom", "input_shape": [784], "layers": [
        {"type": "linear", "in_features": 784, "out_features": 3}]}, seed=0))
    fails(["evaluate", path, "--limit", "10"], capsys, str(path), "gives (3,)", roots=[tmp_path])
