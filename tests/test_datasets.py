"""The data-set registry and everything that reads it: each entry, lookup in
per-data-set subfolders (MNIST's old places still work), verification by
the published checksums (and refusing another data set's files), the
downloader for a new data set against a local HTTP server, the data set
recorded in the model file and read back by evaluate/predict/draw, and the
bad-input cases, each a one-line error with exit status 2.

Only MNIST is real here; Fashion-MNIST and KMNIST are small synthetic IDX
files."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fake_mnist import NAMES, fake_arrays, write_fake_mnist
from test_download import PROXY_VARS, serve, server  # noqa: F401  (server: the local HTTP server fixture)

from numpynets.data.datasets import DATASETS, ROLES, IdxFile, class_names, get_dataset
from numpynets.data.idx import encode_idx, write_idx
from numpynets.data.mnist import dataset_folders, download, find_dataset, load_dataset
from numpynets.errors import ConfigError, DataError


def cli(capsys, *argv):
    from numpynets.cli import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc, err, *words):
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("numpynets: error: ") and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)


# -- the registry -------------------------------------------------------------------

@pytest.mark.parametrize("name", list(DATASETS))
def test_every_entry_is_complete(name):
    ds = DATASETS[name]
    assert ds.name == name and ds.title and len(ds.description) > 20
    assert set(ds.files) == set(ROLES)
    assert [f.name for f in ds.files.values()] == list(NAMES)
    for f in ds.files.values():
        assert f.size > 0 and (f.sha256 is None or len(f.sha256) == 64)
        assert f.gz_md5 is not None and len(f.gz_md5) == 32
    assert ds.sample_shape == (28, 28) and len(ds.classes) == 10 and len(set(ds.classes)) == 10
    assert ds.mirrors and all(m.startswith(("http://", "https://")) and m.endswith("/") for m in ds.mirrors)


def test_the_three_data_sets_and_their_classes():
    assert list(DATASETS)[:3] == ["mnist", "fashion-mnist", "kmnist"]
    assert DATASETS["fashion-mnist"].classes[0] == "T-shirt/top" and DATASETS["fashion-mnist"].classes[9] == "Ankle boot"
    assert DATASETS["kmnist"].classes[:3] == ("o", "ki", "su")
    assert DATASETS["mnist"].digits and not DATASETS["fashion-mnist"].digits
    # zalando-research's published MD5 of its training images .gz
    assert DATASETS["fashion-mnist"].file("train_images").gz_md5 == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert class_names("fashion-mnist", 10)[3] == "Dress" and class_names("xor", 1) == ["0"]


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown data set 'cifar'; known: mnist, fashion-mnist, kmnist"):
        get_dataset("cifar")


def test_mnist_checksums_match_the_real_files(mnist_path):
    from numpynets.data.idx import read_bytes
    from numpynets.data.mnist import find_file

    for f in DATASETS["mnist"].files.values():
        data = read_bytes(find_file(mnist_path, f.name))
        assert len(data) == f.size and hashlib.sha256(data).hexdigest() == f.sha256


# -- lookup ---------------------------------------------------------------------------

@pytest.fixture
def places(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("NUMPYNETS_DATA", raising=False)
    return tmp_path


def test_each_data_set_in_its_own_subfolder_mnist_also_where_it_was(places):
    write_fake_mnist(places / "data", n_train=10, n_test=5)                      # MNIST's old place
    assert find_dataset("mnist") == Path("data")
    assert find_dataset("fashion-mnist") is None                                 # ./data itself is MNIST's
    write_fake_mnist(places / "xdg" / "numpynets" / "fashion-mnist", n_train=10, n_test=5)
    assert find_dataset("fashion-mnist") == places / "xdg" / "numpynets" / "fashion-mnist"
    write_fake_mnist(places / "data" / "fashion-mnist", n_train=10, n_test=5)
    assert find_dataset("fashion-mnist") == Path("data") / "fashion-mnist"       # ./data before the cache
    write_fake_mnist(places / "data" / "mnist", n_train=10, n_test=5)
    assert find_dataset("mnist") == Path("data") / "mnist"                        # the subfolder first
    assert dataset_folders("kmnist")[-1] == places / "xdg" / "numpynets" / "kmnist"


def test_a_named_data_dir_may_hold_the_files_or_the_subfolder(places):
    write_fake_mnist(places / "mine", n_train=10, n_test=5)
    assert find_dataset("kmnist", places / "mine") == places / "mine"
    write_fake_mnist(places / "mine" / "kmnist", n_train=10, n_test=5)
    assert find_dataset("kmnist", places / "mine") == places / "mine" / "kmnist"


def test_missing_data_set_says_how_to_fetch_it(places):
    with pytest.raises(DataError) as e:
        load_dataset("kmnist", download_missing=False)
    assert "Kuzushiji-MNIST not found in" in str(e.value) and "numpynets data --download --dataset kmnist" in str(e.value)
    with pytest.raises(DataError, match="numpynets data --download --dataset kmnist --data-dir"):
        load_dataset("kmnist", places / "nothing")


# -- verification -----------------------------------------------------------------------

def published(monkeypatch, folder, name="fashion-mnist"):
    """Pretend the gz files in ``folder`` are the published ones: their MD5 into the registry."""
    ds = DATASETS[name]
    files = {}
    for role, f in ds.files.items():
        raw = (folder / (f.name + ".gz")).read_bytes()
        size = len(gzip.decompress(raw))
        files[role] = IdxFile(f.name, size, None, hashlib.md5(raw).hexdigest())
    monkeypatch.setitem(DATASETS, name, replace(ds, files=files))


def test_published_gz_md5_verifies_and_a_decompressed_copy_is_size_checked(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "fashion-mnist"
    arrays = write_fake_mnist(folder, n_train=30, n_test=10)
    published(monkeypatch, folder)
    fm = load_dataset("fashion-mnist", tmp_path, val_fraction=0.0)                # verified by the MD5
    assert fm.dataset == "fashion-mnist" and len(fm.train) == 30
    rc, out, err = cli(capsys, "data", "--verify", "--dataset", "fashion-mnist", "--data-dir", tmp_path)
    assert rc == 0 and out.count("MD5 of the .gz ok") == 4, err
    # decompressed: no published checksum of the contents, so size and shape only, said so
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx(folder / "t10k-labels-idx1-ubyte", arrays["t10k-labels-idx1-ubyte"], compress=False)
    assert len(load_dataset("fashion-mnist", tmp_path, val_fraction=0.0).test) == 10
    rc, out, err = cli(capsys, "data", "--verify", "--dataset", "fashion-mnist", "--data-dir", tmp_path)
    assert rc == 0 and out.count("MD5 of the .gz ok") == 3 and "no published checksum of these contents" in out


def test_corrupted_file_names_the_data_set_the_file_and_no_verify(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    write_fake_mnist(folder, n_train=30, n_test=10)
    published(monkeypatch, folder)
    arr = fake_arrays(30, 10, seed=1)["train-images-idx3-ubyte"]
    write_idx(folder / "train-images-idx3-ubyte.gz", arr)                        # same shape, other pixels
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist", tmp_path)
    msg = str(e.value)
    assert "standard Fashion-MNIST file train-images-idx3-ubyte" in msg and str(folder) in msg
    assert "--no-verify" in msg and "numpynets data --download --dataset fashion-mnist" in msg
    assert len(load_dataset("fashion-mnist", tmp_path, verify=False).train) == 27   # the user's own data
    rc, out, err = cli(capsys, "train", "mlp", "--dataset", "fashion-mnist", "--data-dir", tmp_path, "--threads", "1",
                       "--no-progress", "--out", tmp_path / "run")
    one_line_error(rc, err, "Fashion-MNIST", "train-images-idx3-ubyte", "--no-verify")
    assert not (tmp_path / "run").exists()


def test_another_data_sets_files_are_named_as_such(mnist_path, tmp_path, capsys):
    """The real MNIST files in the fashion-mnist folder: refused, saying what they are."""
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for f in DATASETS["mnist"].files.values():
        src = next(mnist_path.glob(f.name + "*"))
        (folder / src.name).symlink_to(src.resolve())
    with pytest.raises(DataError, match="it is MNIST's train-images-idx3-ubyte"):
        load_dataset("fashion-mnist", tmp_path, limit=10)
    rc, out, err = cli(capsys, "data", "--verify", "--data-dir", tmp_path)
    one_line_error(rc, err, "Fashion-MNIST", "it is MNIST's")
    assert "MNIST (mnist): not found" in out and "FAILED" in out and "Kuzushiji-MNIST (kmnist): not found" in out


def test_verify_every_data_set(capsys, mnist_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NUMPYNETS_DATA", str(mnist_path))
    write_fake_mnist(tmp_path / "data" / "kmnist", n_train=10, n_test=5)
    published(monkeypatch, tmp_path / "data" / "kmnist", "kmnist")
    rc, out, err = cli(capsys, "data", "--verify")
    assert rc == 0, err
    assert f"MNIST (mnist) found in {mnist_path}" in out and out.count("SHA-256 ok") == 4
    assert "Fashion-MNIST (fashion-mnist): not found (looked in" in out
    assert "numpynets data --download --dataset fashion-mnist" in out
    assert f"Kuzushiji-MNIST (kmnist) found in {Path('data') / 'kmnist'}" in out and out.count("MD5 of the .gz ok") == 4


@pytest.mark.parametrize("shape", [(30, 32, 32), (30, 784)])
def test_idx_of_another_shape_refused(tmp_path, capsys, shape):
    folder = tmp_path / "kmnist"
    write_fake_mnist(folder, n_train=30, n_test=10)
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros(shape, np.uint8))
    with pytest.raises(DataError, match=r"expected 28x28 uint8 images \(N, 28, 28\) for Kuzushiji-MNIST"):
        load_dataset("kmnist", tmp_path, verify=False)
    rc, out, err = cli(capsys, "train", "mlp", "--dataset", "kmnist", "--data-dir", tmp_path, "--no-verify",
                       "--threads", "1", "--no-progress", "--out", tmp_path / "run")
    one_line_error(rc, err, "expected 28x28")
    assert not (tmp_path / "run").exists()


def test_labels_beyond_the_classes_refused(tmp_path):
    folder = tmp_path / "fashion-mnist"
    write_fake_mnist(folder, n_train=30, n_test=10)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(10, 10, np.uint8))
    with pytest.raises(DataError, match="label 10 is not a Fashion-MNIST class 0-9"):
        load_dataset("fashion-mnist", tmp_path, verify=False)


def test_unknown_data_set_on_the_command_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv in (["train", "mlp", "--dataset", "cifar", "--threads", "1"], ["data", "--dataset", "cifar"],
                 ["data", "--download", "--dataset", "cifar"]):
        rc, out, err = cli(capsys, *argv)
        one_line_error(rc, err, "unknown data set 'cifar'", "known: mnist, fashion-mnist, kmnist")
    assert list(tmp_path.iterdir()) == []


# -- the downloader, for a new data set ---------------------------------------------------

@pytest.fixture
def fashion_blobs(monkeypatch):
    """Gzipped fake Fashion-MNIST files, with the registry's MD5s made theirs."""
    ds = DATASETS["fashion-mnist"]
    blobs, files = {}, {}
    for (role, f), arr in zip(ds.files.items(), fake_arrays(40, 10, seed=3).values()):
        raw = encode_idx(arr)
        blobs[f.name] = gzip.compress(raw, mtime=0)
        files[role] = IdxFile(f.name, len(raw), None, hashlib.md5(blobs[f.name]).hexdigest())
    monkeypatch.setitem(DATASETS, "fashion-mnist", replace(ds, files=files))
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return blobs


def test_download_a_new_data_set(server, fashion_blobs, tmp_path, capsys, monkeypatch):
    # valid gzip and IDX, one byte changed: the MD5 of the .gz does not match
    wrong = serve(server, "wrong", {n: gzip.compress(gzip.decompress(b)[:-1] + b"\x05", mtime=0)
                                    for n, b in fashion_blobs.items()})
    cut = serve(server, "cut", fashion_blobs, kind="cut")
    good = serve(server, "good", fashion_blobs)
    monkeypatch.setenv("NUMPYNETS_MIRRORS", f"{wrong} {cut} {good}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "data", "--download", "--dataset", "fashion-mnist")
    dest = tmp_path / "xdg" / "numpynets" / "fashion-mnist"                 # its own subfolder of the cache
    assert rc == 0, err
    assert f"Fashion-MNIST found in {dest}" in out and out.count("downloading") == 12
    assert sorted(p.name for p in dest.iterdir()) == sorted(n + ".gz" for n in fashion_blobs)   # no .part files
    assert len(load_dataset("fashion-mnist", val_fraction=0.0).train) == 40
    # only the wrong and the broken mirror: an error naming the data set, and nothing written
    monkeypatch.setenv("NUMPYNETS_MIRRORS", f"{wrong} {cut}")
    with pytest.raises(DataError) as e:
        download(tmp_path / "new", dataset="fashion-mnist", timeout=5.0, log=lambda s: None)
    msg = str(e.value)
    assert "contents do not match the standard Fashion-MNIST file (MD5 of the .gz)" in msg
    assert "connection closed after" in msg and "Put the four Fashion-MNIST files" in msg
    assert list((tmp_path / "new").iterdir()) == []


# -- the data set recorded in the model file, read back everywhere --------------------------

@pytest.fixture(scope="module")
def fashion_model(tmp_path_factory):
    """An MLP trained with --dataset fashion-mnist on synthetic files, and its data folder."""
    from numpynets.cli import main

    root = tmp_path_factory.mktemp("fashion")
    write_fake_mnist(root / "data" / "fashion-mnist", n_train=200, n_test=40, seed=4)
    write_fake_mnist(root / "data" / "mnist", n_train=200, n_test=40, seed=5)
    assert main(["train", "mlp", "--dataset", "fashion-mnist", "--data-dir", str(root / "data"), "--no-verify",
                 "--threads", "1", "--no-progress", "--epochs", "1", "--hidden", "16",
                 "--out", str(root / "run")]) == 0
    return root


def test_the_model_file_records_the_data_set(fashion_model):
    from numpynets.io import load_model

    model, meta = load_model(fashion_model / "run" / "model.safetensors")
    assert model.dataset == "fashion-mnist" and meta["architecture"]["dataset"] == "fashion-mnist"
    config = json.loads((fashion_model / "run" / "config.json").read_text())
    assert config["dataset"] == "fashion-mnist"


def test_evaluate_reads_it_and_names_the_classes(fashion_model, capsys):
    model = fashion_model / "run" / "model.safetensors"
    rc, out, err = cli(capsys, "evaluate", model, "--data-dir", fashion_model / "data", "--no-verify", "--json",
                       "--threads", "1")
    assert rc == 0, err
    assert "T-shirt/top" in out and "Ankle boot" in out and "class  name" in out
    assert json.loads(out.splitlines()[-1])["n"] == 40 and json.loads(out.splitlines()[-1])["dataset"] == "fashion-mnist"


def test_evaluate_on_another_data_set_refused_unless_forced(fashion_model, capsys):
    model = fashion_model / "run" / "model.safetensors"
    rc, out, err = cli(capsys, "evaluate", model, "--dataset", "mnist", "--data-dir", fashion_model / "data",
                       "--no-verify")
    one_line_error(rc, err, "trained on fashion-mnist, not mnist", "--force")
    assert out == ""
    rc, out, err = cli(capsys, "evaluate", model, "--dataset", "mnist", "--force", "--data-dir",
                       fashion_model / "data", "--no-verify", "--json", "--threads", "1")
    assert rc == 0 and json.loads(out.splitlines()[-1])["dataset"] == "mnist", err


def test_evaluate_plots_name_the_classes(fashion_model, capsys, tmp_path):
    from numpynets.apps.eval_plots import confusion_figure, gallery_figure

    fig = confusion_figure(np.eye(10, dtype=np.int64) * 3, class_names=DATASETS["fashion-mnist"].classes)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[0] == "0 T-shirt/top" and labels[9] == "9 Ankle boot"
    probs = np.full((2, 10), 0.01)
    probs[0, 3], probs[1, 0] = 0.91, 0.91                                   # both wrong
    fig = gallery_figure(np.zeros((2, 28, 28)), np.array([1, 2]), probs, class_names=DATASETS["fashion-mnist"].classes)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0].startswith("#0: Trouser\nas Dress") and titles[1].startswith("#1: Pullover\nas T-shirt/top")
    rc, out, err = cli(capsys, "evaluate", fashion_model / "run" / "model.safetensors", "--data-dir",
                       fashion_model / "data", "--no-verify", "--plots", tmp_path, "--threads", "1")
    assert rc == 0 and len(list(tmp_path.glob("*.png"))) == 2, err


def test_predict_names_the_class(fashion_model, capsys, tmp_path):
    from PIL import Image

    img = np.zeros((28, 28), np.uint8)
    img[6:22, 10:18] = 255
    Image.fromarray(img).save(tmp_path / "one.png")
    rc, out, err = cli(capsys, "predict", fashion_model / "run" / "model.safetensors", tmp_path / "one.png", "--json")
    assert rc == 0, err
    result = json.loads(out.splitlines()[-1])
    pred = result["predictions"][0]
    assert result["dataset"] == "fashion-mnist" and pred["class"] == DATASETS["fashion-mnist"].classes[pred["digit"]]
    assert f"{pred['digit']} {pred['class']}" in out.splitlines()[0] and "Ankle boot:" in out


def test_recognizer_names_the_classes_and_accepts_any_28x28_model(fashion_model):
    from numpynets.apps.recognizer import Recognizer

    r = Recognizer.load(fashion_model / "run")
    assert r.dataset == "fashion-mnist" and r.dataset_title == "Fashion-MNIST" and not r.digits
    assert r.label(0) == "T-shirt/top"


def test_plot_labels_a_run_with_its_data_set(fashion_model):
    from numpynets.apps.run_summary import load_run

    assert load_run(fashion_model / "run").label == "mlp (default, fashion-mnist)"


def test_architecture_file_with_an_unknown_data_set(capsys, tmp_path):
    arch = {"input_shape": [784], "layers": [{"type": "linear", "in_features": 784, "out_features": 10}],
            "dataset": "cifar"}
    (tmp_path / "a.json").write_text(json.dumps(arch))
    rc, out, err = cli(capsys, "train", tmp_path / "a.json", "--out", tmp_path / "run", "--threads", "1")
    one_line_error(rc, err, "unknown data set 'cifar'")
    assert not (tmp_path / "run").exists()
