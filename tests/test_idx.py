"""IDX files: round trips for every type code (raw and gzipped, gzip found by
its magic number), both file namings, and every kind of bad file: each must
give a one-line DataError that names the file and the fix, and none may make
the reader allocate what a lying header asks for."""

from __future__ import annotations

import gzip
import tracemalloc

import numpy as np
import pytest
from fake_mnist import dotted, write_fake_mnist

from numpynets.data.idx import DTYPES, encode_idx, parse_idx, read_bytes, read_idx, write_idx
from numpynets.data.mnist import candidates, find_file, find_mnist, load_mnist
from numpynets.errors import DataError

DTYPE_CASES = [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
               (0x0D, np.float32), (0x0E, np.float64)]


def sample(dtype, shape, rng):
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is not None:
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return rng.standard_normal(shape).astype(dtype)


def one_line_error(excinfo, path, *fix_words):
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert str(path) in msg, msg
    assert any(w in msg for w in fix_words), msg
    return msg


@pytest.mark.parametrize("code,dtype", DTYPE_CASES)
@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_every_type_code(tmp_path, rng, code, dtype, gz):
    arr = sample(dtype, (3, 5, 7), rng)
    path = tmp_path / ("a.idx" + (".gz" if gz else ""))
    write_idx(path, arr)
    head = path.read_bytes()
    assert (head[:2] == b"\x1f\x8b") == gz
    data = gzip.decompress(head) if gz else head
    assert data[:4] == bytes([0, 0, code, 3])                   # magic: 0 0 type ndim
    assert data[4:16] == bytes([0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0, 7])    # big-endian sizes
    assert len(data) == 16 + arr.size * np.dtype(dtype).itemsize
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    back[0, 0, 0] = 0                                           # a writable copy


def test_big_endian_on_disk(tmp_path):
    write_idx(tmp_path / "x", np.array([1, 256], np.int16))
    assert (tmp_path / "x").read_bytes()[8:] == b"\x00\x01\x01\x00"
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), [1, 256])


def test_every_dimension_count_round_trips(tmp_path, rng):
    for shape in [(4,), (2, 3), (1, 2, 3, 2), (0, 28, 28)]:
        arr = rng.integers(0, 256, shape, dtype=np.uint8)
        write_idx(tmp_path / "a", arr)
        np.testing.assert_array_equal(read_idx(tmp_path / "a"), arr)
        assert read_idx(tmp_path / "a").shape == shape


def test_gzip_is_found_by_magic_not_by_name(tmp_path, rng):
    arr = rng.integers(0, 10, 50, dtype=np.uint8)
    write_idx(tmp_path / "gzipped-without-suffix", arr, compress=True)
    write_idx(tmp_path / "raw-with-suffix.gz", arr, compress=False)
    assert (tmp_path / "gzipped-without-suffix").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "raw-with-suffix.gz").read_bytes()[:2] == b"\x00\x00"
    np.testing.assert_array_equal(read_idx(tmp_path / "gzipped-without-suffix"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw-with-suffix.gz"), arr)


def test_writer_refuses_what_idx_cannot_hold(tmp_path):
    for bad in [np.zeros(3, np.int64), np.zeros(3, bool), np.float32(1.0)]:
        with pytest.raises(ValueError):
            encode_idx(bad)
    assert not list(tmp_path.iterdir())


def test_writer_is_atomic_and_leaves_no_temp_files(tmp_path):
    write_idx(tmp_path / "a.gz", np.arange(10, dtype=np.uint8))
    with pytest.raises(ValueError):
        write_idx(tmp_path / "a.gz", np.arange(10, dtype=np.int64))
    assert [p.name for p in tmp_path.iterdir()] == ["a.gz"]
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), np.arange(10))


def test_written_file_has_the_usual_permissions(tmp_path):
    """The temp file behind the atomic write is made 0600; the result must
    get the mode a plain open() would give, as model files do."""
    import os

    write_idx(tmp_path / "a", np.arange(3, dtype=np.uint8))
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("naming", ["standard", "dotted"])
@pytest.mark.parametrize("gz", [False, True])
def test_both_file_namings_found_and_loaded(tmp_path, naming, gz):
    arrays = write_fake_mnist(tmp_path, n_train=30, n_test=10, gz=gz, naming=naming)
    for name in arrays:
        found = find_file(tmp_path, name)
        want = (dotted(name) if naming == "dotted" else name) + (".gz" if gz else "")
        assert found is not None and found.name == want
    assert find_mnist(tmp_path) == tmp_path
    mn = load_mnist(tmp_path, verify=False, val_fraction=0.0)
    np.testing.assert_array_equal(mn.train.y, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(mn.test.x * 255, arrays["t10k-images-idx3-ubyte"])


def test_candidate_names():
    assert candidates("train-images-idx3-ubyte") == [
        "train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
        "train-images.idx3-ubyte", "train-images.idx3-ubyte.gz"]


# -- bad files -----------------------------------------------------------------

def header(code, dims):
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, ">u4").tobytes()


GOOD = header(0x08, [2, 3]) + bytes(6)
BAD_FILES = {
    "bad magic": (b"\x01\x02" + GOOD[2:], "bad magic number"),
    "text file": (b"hello, world, this is not IDX", "bad magic number"),
    "unknown type code": (bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 7]), "unknown IDX type code 0x0a"),
    "no dimensions": (bytes([0, 0, 0x08, 0]), "no dimensions"),
    "truncated header": (bytes([0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0]), "truncated IDX header"),
    "tiny": (b"\x00\x00", "only 2 bytes"),
    "empty": (b"", "only 0 bytes"),
    "short data": (GOOD[:-1], "truncated"),
    "long data": (GOOD + b"\x00", "too long"),
    "short float data": (header(0x0D, [4]) + bytes(15), "truncated"),
}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_one_line_error_naming_file_and_fix(tmp_path, case, gz):
    data, expected = BAD_FILES[case]
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError) as e:
        read_idx(path)
    msg = one_line_error(e, path, "download again")
    assert expected in msg


def test_wrong_length_reports_both_sizes(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(GOOD[:-2])
    with pytest.raises(DataError, match=r"header says shape \(2, 3\) \(18 bytes\), file has 16 bytes"):
        read_idx(path)


def test_corrupt_and_truncated_gzip(tmp_path, rng):
    blob = gzip.compress(encode_idx(rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)))
    for name, data in [("cut.gz", blob[:len(blob) // 2]), ("flipped.gz", blob[:20] + bytes(len(blob) - 20))]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError) as e:
            read_idx(tmp_path / name)
        one_line_error(e, tmp_path / name, "download again")


def test_unreadable_path(tmp_path):
    for path in (tmp_path / "missing", tmp_path):
        with pytest.raises(DataError) as e:
            read_idx(path)
        one_line_error(e, path, "check the path")


@pytest.mark.parametrize("gz", [False, True])
def test_absurd_dimensions_error_without_allocating(tmp_path, gz):
    # float64, (2^32-1)^3: the header asks for ~6e29 bytes; the file has 100
    data = header(0x0E, [2**32 - 1] * 3) + bytes(100)
    path = tmp_path / "absurd"
    path.write_bytes(gzip.compress(data) if gz else data)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="truncated") as e:
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one_line_error(e, path, "download again")
    assert peak < 4_000_000                                    # at most one read chunk (1 MiB)


def test_gzip_bomb_is_not_decompressed_past_its_declared_size(tmp_path):
    # the header declares 10 bytes; 200 MB of zeros follow (about 200 kB gzipped)
    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb") as f:
        f.write(header(0x08, [10]))
        zeros = bytes(1 << 20)
        for _ in range(200):
            f.write(zeros)
    assert bomb.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="too long") as e:
            read_idx(bomb)
        assert len(read_bytes(bomb)) == 4 + 4 + 10 + 1          # one byte past the declared size
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one_line_error(e, bomb, "download again")
    assert "more than" in str(e.value)
    assert peak < 5_000_000


def test_parse_idx_of_bytes_names_its_source():
    with pytest.raises(DataError, match="^mirror/x.gz: "):
        parse_idx(b"\x00\x00\x08", "mirror/x.gz")
    assert set(DTYPES) == {code for code, _ in DTYPE_CASES}


# -- a data set of valid IDX files that do not belong together ------------------

def test_image_label_count_mismatch(tmp_path, rng):
    write_fake_mnist(tmp_path, n_train=30, n_test=10, gz=False)
    labels = tmp_path / "train-labels-idx1-ubyte"
    write_idx(labels, rng.integers(0, 10, 29, dtype=np.uint8))
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path, verify=False)
    msg = one_line_error(e, labels, "put matching")
    assert "30 images" in msg and "29 labels" in msg and str(tmp_path / "train-images-idx3-ubyte") in msg


@pytest.mark.parametrize("bad", [10, 255])
def test_labels_above_nine(tmp_path, bad):
    write_fake_mnist(tmp_path, n_train=30, n_test=10, gz=True)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    y = np.zeros(10, np.uint8)
    y[7] = bad
    write_idx(labels, y)
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path, verify=False)
    msg = one_line_error(e, labels, "right labels file")
    assert f"label {bad} " in msg


def test_negative_labels_and_wrong_image_shape(tmp_path):
    write_fake_mnist(tmp_path, n_train=30, n_test=10, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(10, -1, np.int8))
    with pytest.raises(DataError, match="label -1 is not a digit"):
        load_mnist(tmp_path, verify=False)
    write_fake_mnist(tmp_path, n_train=30, n_test=10, gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    write_idx(images, np.zeros((30, 32, 32), np.uint8))
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path, verify=False)
    one_line_error(e, images, "MNIST-format images")
    write_idx(images, np.zeros((30, 28, 28), np.float32))
    with pytest.raises(DataError, match="28x28 uint8"):
        load_mnist(tmp_path, verify=False)


def test_bad_file_in_a_data_set_is_named(tmp_path):
    write_fake_mnist(tmp_path, n_train=30, n_test=10, gz=True)
    bad = tmp_path / "train-images-idx3-ubyte.gz"             # the first file read
    bad.write_bytes(gzip.compress(b"\x08\x03" + bytes(100)))
    for verify in (False, True):          # the IDX check comes first, even when verifying
        with pytest.raises(DataError) as e:
            load_mnist(tmp_path, verify=verify)
        assert "bad magic number" in one_line_error(e, bad, "download again")
