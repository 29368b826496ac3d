"""MNIST: where it is looked for, SHA-256 verification, the validation split,
--limit, dtypes; and the real data set's shapes."""

from __future__ import annotations

import gzip
import os
import shutil

import numpy as np
import pytest
from fake_mnist import write_fake_mnist

from numpynets.data.idx import encode_idx, read_idx
from numpynets.data.mnist import FILES, cache_dir, check_bytes, find_mnist, load_mnist, search_dirs
from numpynets.errors import ConfigError, DataError, NumpynetsError


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Four candidate folders and a working directory, with the environment
    pointed at them: {"arg", "env", "cwd", "cache"} -> folder."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("NUMPYNETS_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NUMPYNETS_MIRRORS", "http://127.0.0.1:9/")   # never the internet
    return {"arg": tmp_path / "arg", "env": tmp_path / "env", "cwd": cwd / "data",
            "cache": tmp_path / "xdg" / "numpynets"}


def loaded_from(folder_sizes, data_dir=None):
    mn = load_mnist(data_dir, verify=False, val_fraction=0.0, download_missing=False)
    return folder_sizes[len(mn.train)], mn.folder


def test_lookup_order(places):
    # each folder gets a data set of its own size, so a load shows where it came from
    sizes = {"arg": 11, "env": 12, "cwd": 13, "cache": 14}
    for key, n in sizes.items():
        write_fake_mnist(places[key], n_train=n, n_test=5, seed=n)
    by_size = {n: key for key, n in sizes.items()}
    assert search_dirs() == [places["env"], places["cwd"].relative_to(os.getcwd()), places["cache"]]
    assert loaded_from(by_size, places["arg"]) == ("arg", places["arg"])
    assert loaded_from(by_size)[0] == "env"
    # a folder missing one of the four files is passed over
    os.unlink(places["env"] / "t10k-labels-idx1-ubyte.gz")
    assert loaded_from(by_size)[0] == "cwd"
    shutil.rmtree(places["cwd"])
    assert loaded_from(by_size)[0] == "cache"
    assert cache_dir() == places["cache"]


def test_cache_defaults_to_home(places, monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("NUMPYNETS_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "numpynets"
    assert find_mnist() is None
    write_fake_mnist(cache_dir(), n_train=10, n_test=5)
    assert find_mnist() == cache_dir()


def test_named_data_dir_is_the_only_place_looked_in(places):
    write_fake_mnist(places["env"], n_train=10, n_test=5)
    places["arg"].mkdir()
    assert find_mnist(places["arg"]) is None
    assert find_mnist() == places["env"]
    with pytest.raises(DataError) as e:
        load_mnist(places["arg"], verify=False)
    msg = str(e.value)
    assert "\n" not in msg and str(places["arg"]) in msg and "--data-dir" in msg
    assert not list(places["arg"].iterdir())                      # nothing downloaded there


def test_nothing_found_without_download(places):
    with pytest.raises(DataError) as e:
        load_mnist(download_missing=False)
    msg = str(e.value)
    assert str(places["env"]) in msg and str(places["cache"]) in msg and "numpynets data --download" in msg


def test_mixed_namings_and_compression_in_one_folder(tmp_path):
    arrays = write_fake_mnist(tmp_path, n_train=20, n_test=5, gz=True)
    os.rename(tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "train-images.idx3-ubyte.gz")
    raw = gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())
    os.unlink(tmp_path / "t10k-labels-idx1-ubyte.gz")
    (tmp_path / "t10k-labels.idx1-ubyte").write_bytes(raw)
    mn = load_mnist(tmp_path, verify=False, val_fraction=0.0)
    np.testing.assert_array_equal(mn.test.y, arrays["t10k-labels-idx1-ubyte"])
    np.testing.assert_array_equal(np.rint(mn.train.x * 255), arrays["train-images-idx3-ubyte"])


# -- verification ----------------------------------------------------------------

def test_verification_rejects_fake_files(tmp_path):
    write_fake_mnist(tmp_path, n_train=20, n_test=5)
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path)                                    # verify=True by default
    msg = str(e.value)
    assert "\n" not in msg
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in msg
    assert "SHA-256 mismatch" in msg and "--no-verify" in msg and "numpynets data --download" in msg


def test_sha256_of_the_real_labels_and_one_changed_byte(mnist_path, tmp_path):
    from numpynets.data.idx import read_bytes
    from numpynets.data.mnist import find_file

    name = "t10k-labels-idx1-ubyte"
    data = read_bytes(find_file(mnist_path, name))
    check_bytes(data, name, "real")                             # passes
    changed = bytearray(data)
    changed[5000] = (changed[5000] + 1) % 10                    # still a valid label
    with pytest.raises(DataError, match="^modified: contents do not match the standard MNIST file "
                                        "t10k-labels-idx1-ubyte"):
        check_bytes(bytes(changed), name, "modified")


def test_modified_real_file_rejected_at_load(mnist_path, tmp_path):
    from numpynets.data.mnist import find_file

    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in FILES:
        src = find_file(mnist_path, name)
        os.symlink(src.resolve(), folder / src.name)
    labels = find_file(folder, "t10k-labels-idx1-ubyte")
    y = read_idx(labels)
    y[123] = (y[123] + 1) % 10
    labels.unlink()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(y))
    with pytest.raises(DataError) as e:
        load_mnist(folder)
    msg = str(e.value)
    assert "\n" not in msg and str(folder / "t10k-labels-idx1-ubyte") in msg and "SHA-256" in msg


# -- the split, --limit, dtypes --------------------------------------------------

@pytest.fixture
def fake(tmp_path):
    arrays = write_fake_mnist(tmp_path, n_train=100, n_test=20, seed=3)
    return tmp_path, arrays


def test_validation_is_the_last_tenth_of_the_training_file(fake):
    folder, arrays = fake
    x_all = arrays["train-images-idx3-ubyte"].astype(np.float32) / np.float32(255)
    y_all = arrays["train-labels-idx1-ubyte"]
    mn = load_mnist(folder, verify=False)
    assert (len(mn.train), len(mn.val), len(mn.test)) == (90, 10, 20)
    np.testing.assert_array_equal(mn.train.x, x_all[:90])
    np.testing.assert_array_equal(mn.val.x, x_all[90:])
    np.testing.assert_array_equal(mn.train.y, y_all[:90])
    np.testing.assert_array_equal(mn.val.y, y_all[90:])


@pytest.mark.parametrize("frac,sizes", [(0.0, (100, 0)), (0.25, (75, 25)), (0.3, (70, 30)),
                                        (0.5, (50, 50)), (0.99, (1, 99))])
def test_split_is_configurable(fake, frac, sizes):
    folder, arrays = fake
    mn = load_mnist(folder, verify=False, val_fraction=frac)
    assert (len(mn.train), len(mn.val)) == sizes
    np.testing.assert_array_equal(np.concatenate([mn.train.y, mn.val.y]), arrays["train-labels-idx1-ubyte"])


@pytest.mark.parametrize("frac", [1, 1.0, 1.5, -0.1, -1, float("nan"), float("inf"), "0.1", True])
def test_split_outside_unit_interval_rejected(fake, frac):
    folder, _ = fake
    with pytest.raises(ConfigError, match=r"validation split must be in \[0, 1\)"):
        load_mnist(folder, verify=False, val_fraction=frac)


def test_limit_takes_the_first_images_then_splits(fake):
    folder, arrays = fake
    mn = load_mnist(folder, verify=False, limit=40)
    assert (len(mn.train), len(mn.val), len(mn.test)) == (36, 4, 20)
    np.testing.assert_array_equal(np.concatenate([mn.train.y, mn.val.y]), arrays["train-labels-idx1-ubyte"][:40])
    assert len(load_mnist(folder, verify=False, limit=10**6).train) == 90
    for bad in (0, -5, 2.5):
        with pytest.raises(ConfigError, match="--limit"):
            load_mnist(folder, verify=False, limit=bad)
    with pytest.raises(NumpynetsError, match="no training images left"):
        load_mnist(folder, verify=False, limit=1, val_fraction=0.9999999999999)


def test_pixels_float32_in_unit_range_labels_int64(fake):
    folder, arrays = fake
    mn = load_mnist(folder, verify=False)
    for split in (mn.train, mn.val, mn.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape[1:] == (28, 28)
        assert split.x.min() >= 0 and split.x.max() <= 1
    # exactly p / 255 computed in float32 (not rounded from float64)
    want = np.divide(arrays["t10k-images-idx3-ubyte"], np.float32(255), dtype=np.float32)
    np.testing.assert_array_equal(mn.test.x, want)
    assert mn.test.x.max() == 1.0 and mn.test.x.min() == 0.0    # 255 -> 1 exactly, 0 -> 0
    assert not any(a.dtype == np.float64 for s in (mn.train, mn.val, mn.test) for a in (s.x, s.y))


# -- the real data ---------------------------------------------------------------

def test_real_mnist_shapes_and_dtypes(mnist, mnist_path):
    from numpynets.data.mnist import find_file

    assert mnist.train.x.shape == (54000, 28, 28) and mnist.train.y.shape == (54000,)
    assert mnist.val.x.shape == (6000, 28, 28) and mnist.val.y.shape == (6000,)
    assert mnist.test.x.shape == (10000, 28, 28) and mnist.test.y.shape == (10000,)
    for split in (mnist.train, mnist.val, mnist.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.min() == 0.0 and split.x.max() == 1.0
        assert set(np.unique(split.y)) == set(range(10))
    labels = read_idx(find_file(mnist_path, "train-labels-idx1-ubyte"))
    np.testing.assert_array_equal(mnist.val.y, labels[54000:])  # the last 6,000 of the training file
    assert mnist.train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.test.y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
