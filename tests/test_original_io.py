"""The original project's model files: MLP (float32 or float64), CNN, attention.

Byte layouts are checked against writers built here from ``struct`` alone,
the way the original's Rust and Python code write and read them (ORIGINAL.md
§3, §4.1), never against our own writer.
"""

import os
import struct
import tracemalloc

import numpy as np
import pytest

from numpynets.cli import main
from numpynets.errors import ModelFileError
from numpynets.io import load_model, save_model
from numpynets.io.original import detect
from numpynets.io.original_models import NotRepresentable, original_kind, read_original, write_original
from numpynets.models import build
from numpynets.models import attention as attention_model
from numpynets.models import mlp as mlp_model


def cnn_arch(oc=8, ic=1, k=3, h=28, w=28, out=10, padding=1):
    return {"input_shape": [ic, h, w], "name": "cnn", "layers": [
        {"type": "conv2d", "in_channels": ic, "out_channels": oc, "kernel_size": k, "stride": 1, "padding": padding},
        {"type": "relu"}, {"type": "maxpool2d", "kernel_size": 2, "stride": 2}, {"type": "flatten"},
        {"type": "linear", "in_features": oc * ((h + 2 * padding - k + 1) // 2) * ((w + 2 * padding - k + 1) // 2),
         "out_features": out}]}


def named(arch, name):
    arch = dict(arch)
    arch["name"] = name
    return arch


def randomised(model, seed=0):
    """Non-zero biases too, so a swapped or skipped array shows."""
    rng = np.random.default_rng(seed)
    for _, p, _ in model.named_parameters():
        p[...] = rng.standard_normal(p.shape).astype(p.dtype) * 0.3
    return model


def small_mlp(hidden=16, seed=0):
    return randomised(build(named(mlp_model.architecture(hidden=hidden), "mlp"), seed=seed), seed)


def small_cnn(seed=0):
    return randomised(build(cnn_arch(), seed=seed), seed)


def small_attention(d=8, f=16, seed=0, **kw):
    return randomised(build(named(attention_model.architecture(d_model=d, ff_dim=f, **kw), "attention"),
                            seed=seed), seed)


@pytest.fixture
def images(rng):
    return rng.random((16, 28, 28), dtype=np.float32)


# -- round trips -------------------------------------------------------------
@pytest.mark.parametrize("make", [small_mlp, small_cnn, small_attention])
def test_native_to_original_and_back_bitwise(tmp_path, make, images):
    model = make()
    path = tmp_path / "m.bin"
    layout = write_original(path, model, element_type="float32")
    assert os.path.getsize(path) == layout.nbytes
    back, meta = load_model(path)                          # dispatched on content: no safetensors header
    assert meta["original"]["kind"] == original_kind(model) and meta["original"]["element_type"] == "float32"
    assert np.array_equal(back.forward(images), model.forward(images))
    for (n, a, _), (m, b, _) in zip(model.named_parameters(), back.named_parameters()):
        assert n == m and np.array_equal(a, b)
    native = tmp_path / "m.safetensors"
    save_model(native, back)
    again, _ = load_model(native)
    again_bin = tmp_path / "again.bin"
    write_original(again_bin, again, element_type="float32")
    assert again_bin.read_bytes() == path.read_bytes()


def test_mlp_float64_file_of_a_float32_model_is_exact(tmp_path, images):
    model = small_mlp()
    path = tmp_path / "mnist_model.bin"
    layout = write_original(path, model)                     # float64 by default: the original GUI's type
    assert layout.element_type == "float64" and os.path.getsize(path) == 12 + 8 * model.num_parameters()
    back, meta = load_model(path)
    assert meta["original"]["element_type"] == "float64" and "float64" in meta["description"]
    assert np.array_equal(back.forward(images), model.forward(images))   # f32 -> f64 -> f32 is exact


def write_mlp_like_c(path, W1, b1, W2, b2):
    """An independent writer of the float64 layout (the C program's, which
    ``digit_recognizer.py`` reads): three int32, then each value as a double."""
    with open(path, "wb") as f:
        f.write(struct.pack("<iii", W1.shape[0], W1.shape[1], W2.shape[1]))
        for a in (W1, b1, W2, b2):
            f.write(struct.pack(f"<{a.size}d", *a.ravel().tolist()))


def read_mlp_like_digit_recognizer(path):
    """digit_recognizer.py's reader (§4.1), with the byte order made explicit."""
    with open(path, "rb") as f:
        n_in, h, n_out = struct.unpack("<3i", f.read(12))

        def take(*shape):
            n = int(np.prod(shape))
            return np.array(struct.unpack(f"<{n}d", f.read(8 * n))).reshape(shape)

        return take(n_in, h), take(h), take(h, n_out), take(n_out)


def test_float64_file_from_an_independent_writer(tmp_path, images):
    rng = np.random.default_rng(7)
    W1, b1 = rng.standard_normal((784, 12)) * 0.05, rng.standard_normal(12) * 0.1   # genuine float64 values
    W2, b2 = rng.standard_normal((12, 10)) * 0.3, rng.standard_normal(10) * 0.1
    path = tmp_path / "mnist_model.bin"
    write_mlp_like_c(path, W1, b1, W2, b2)
    model, meta = load_model(path)
    assert meta["description"] == "original mlp file (784-12-10, float64)" and model.name == "mlp"
    x = images.reshape(len(images), 784).astype(np.float64)
    logits = np.maximum(x @ W1 + b1, 0) @ W2 + b2                       # the original's forward pass
    ours = model.forward(images)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, logits, rtol=1e-5, atol=1e-5)       # float32 rounding only
    assert np.array_equal(ours.argmax(1), logits.argmax(1))
    # as float64 the model keeps every bit, and writing it back reproduces the file
    exact, _ = read_original(path, dtype=np.float64)
    assert np.array_equal(exact.layers[0].params["W"], W1) and np.array_equal(exact.layers[2].params["b"], b2)
    copy = tmp_path / "copy.bin"
    write_original(copy, exact, element_type="float64")
    assert copy.read_bytes() == path.read_bytes()
    # and digit_recognizer.py's reader reads our float64 files
    ours_path = tmp_path / "ours.bin"
    write_original(ours_path, model)
    for a, b in zip(read_mlp_like_digit_recognizer(ours_path),
                    (model.layers[0].params["W"], model.layers[0].params["b"],
                     model.layers[2].params["W"], model.layers[2].params["b"])):
        assert np.array_equal(a, b.astype(np.float64))


# -- byte-for-byte layouts on hand-built examples ---------------------------
def filled(model):
    """Parameters 0.01, 0.02, ... in file order: every value tells its position."""
    k = 1
    for _, p, _ in model.named_parameters():
        p[...] = (np.arange(k, k + p.size) / 100).reshape(p.shape)
        k += p.size
    return model


def test_mlp_bytes(tmp_path):
    m = filled(build({"input_shape": [3], "name": "tiny", "layers": [
        {"type": "linear", "in_features": 3, "out_features": 2}, {"type": "relu"},
        {"type": "linear", "in_features": 2, "out_features": 2}]}))
    W1 = m.layers[0].params["W"]                                 # [in][hidden]: W1[i][j] at i*2+j
    assert W1[1, 0] == np.float32(0.03)
    expected32 = struct.pack("<3i", 3, 2, 2) + struct.pack("<14f", *[k / 100 for k in range(1, 15)])
    expected64 = struct.pack("<3i", 3, 2, 2) + struct.pack(
        "<14d", *[float(np.float32(k / 100)) for k in range(1, 15)])
    write_original(tmp_path / "a.bin", m, element_type="float32")
    write_original(tmp_path / "b.bin", m, element_type="float64")
    assert (tmp_path / "a.bin").read_bytes() == expected32
    assert (tmp_path / "b.bin").read_bytes() == expected64
    assert expected32[:4] == b"\x03\x00\x00\x00"                  # little-endian, whatever this machine is


def test_cnn_bytes(tmp_path):
    m = filled(build(cnn_arch(oc=2, ic=1, k=3, h=4, w=4, out=3)))
    # conv W (2,1,3,3) = 18 values, conv b 2, fc W (8,3) = 24, fc b 3
    vals = [k / 100 for k in range(1, 48)]
    expected = (struct.pack("<5i", 2, 1, 3, 4, 4) + struct.pack("<20f", *vals[:20])
                + struct.pack("<2i", 8, 3) + struct.pack("<27f", *vals[20:]))
    write_original(tmp_path / "c.bin", m)
    assert (tmp_path / "c.bin").read_bytes() == expected
    back, meta = load_model(tmp_path / "c.bin")
    assert meta["original"]["kind"] == "cnn" and back.architecture()["layers"] == m.architecture()["layers"]


def test_attention_bytes_follow_the_original_order(tmp_path):
    d, f = 4, 8
    m = filled(build(attention_model.architecture(d_model=d, ff_dim=f)))
    L = m.layers
    order = [L[1].params["W"], L[1].params["b"], L[2].params["pos"],
             L[4].params["Wq"], L[4].params["bq"], L[4].params["Wk"], L[4].params["bk"],
             L[4].params["Wv"], L[4].params["bv"], L[5].params["W"], L[5].params["b"],
             L[7].params["W"], L[7].params["b"], L[9].params["W"], L[9].params["b"]]
    shapes = [a.shape for a in order]
    assert shapes == [(16, d), (d,), (49, d), (d, d), (d,), (d, d), (d,), (d, d), (d,),
                      (d, f), (f,), (f, d), (d,), (d, 10), (10,)]
    expected = b"".join(struct.pack(f"<{a.size}f", *a.ravel().tolist()) for a in order)
    write_original(tmp_path / "a.bin", m)
    assert (tmp_path / "a.bin").read_bytes() == expected
    assert len(expected) == 4 * (3 * d * d + 2 * d * f + f + 80 * d + 10)
    # D=4 is too narrow to be guessed from a size: it is read when the caller says so
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "a.bin")
    back, meta = read_original(tmp_path / "a.bin", kind="attention", d_model=4, ff_dim=8)
    assert meta["original"]["dims"] == {"d_model": 4, "ff_dim": 8}
    assert np.array_equal(back.flat_params, m.flat_params)


def test_original_sizes():
    assert build(attention_model.architecture(d_model=64, ff_dim=128)).num_parameters() == 33_930
    from numpynets.io.original import attention_layout, cnn_layout, mlp_layout

    assert mlp_layout(784, 512, 10, "float32").nbytes == 1_628_212
    assert mlp_layout(784, 512, 10, "float64").nbytes == 3_256_412
    assert cnn_layout(8, 1, 3, 28, 28, 1568, 10).nbytes == 63_108
    assert attention_layout(64, 128).nbytes == 135_720


def test_first_attention_version_is_recognised(tmp_path):
    m = small_attention(16, 32)
    write_original(tmp_path / "mnist_attention_model_best.bin", m)
    back, meta = load_model(tmp_path / "mnist_attention_model_best.bin")
    assert meta["description"] == "original attention file (D=16, F=32, float32)"


# -- damaged files -----------------------------------------------------------
def one_line_error(path, **kw):
    with pytest.raises(ModelFileError) as exc:
        read_original(path, **kw)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg
    return msg


@pytest.fixture
def mlp_file(tmp_path):
    path = tmp_path / "mnist_model.bin"
    write_original(path, small_mlp(), element_type="float32")
    return path


def test_truncated_and_oversized(tmp_path, mlp_file):
    data = mlp_file.read_bytes()
    for name, blob in [("cut1", data[:-1]), ("cut4", data[:-4]), ("half", data[: len(data) // 2]),
                       ("header_only", data[:12]), ("short_header", data[:7]),
                       ("plus4", data + b"\0" * 4), ("plus1", data + b"\0")]:
        p = tmp_path / f"{name}.bin"
        p.write_bytes(blob)
        msg = one_line_error(p)
        if len(blob) >= 12:
            assert "784-16-10" in msg                             # says what the header promised
        one_line_error(p, kind="mlp")
    cnn = tmp_path / "cnn.bin"
    write_original(cnn, small_cnn())
    (tmp_path / "cnn_cut.bin").write_bytes(cnn.read_bytes()[:-40])
    assert "truncated" in one_line_error(tmp_path / "cnn_cut.bin")
    att = tmp_path / "att.bin"
    write_original(att, small_attention())
    (tmp_path / "att_long.bin").write_bytes(att.read_bytes() + b"\0" * 8)
    assert "extra bytes" in one_line_error(tmp_path / "att_long.bin", kind="attention", d_model=8, ff_dim=16)


@pytest.mark.parametrize("header", [(784, -512, 10), (0, 512, 10), (784, 512, -10),
                                    (784, 2**30, 10), (784, 10_000_000, 10), (2**31 - 1, 2**31 - 1, 2**31 - 1)])
def test_bad_header_asks_for_nothing(tmp_path, header):
    """A header asking for gigabytes is refused from the size alone."""
    p = tmp_path / "bad.bin"
    p.write_bytes(struct.pack("<3i", *header) + b"\0" * 400)
    tracemalloc.start()
    try:
        msg = one_line_error(p)
        one_line_error(p, kind="mlp")
        one_line_error(p, kind="cnn")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000                                     # bytes: nothing like what the header asks
    assert "not a model file numpynets reads" in msg or "damaged original mlp" in msg


def test_empty_and_junk_files(tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert "empty" in one_line_error(empty)
    with pytest.raises(ModelFileError, match="empty"):
        load_model(empty)
    text = tmp_path / "notes.txt"
    text.write_text("not a model at all\n")
    with pytest.raises(ModelFileError, match="not a model file numpynets reads"):
        load_model(text)


def test_wrong_kind_is_refused(mlp_file):
    assert "not an original cnn model file" in one_line_error(mlp_file, kind="cnn")
    assert "not an original attention model file" in one_line_error(mlp_file, kind="attention")


def test_cnn_header_that_disagrees_with_itself(tmp_path):
    p = tmp_path / "cnn.bin"
    write_original(p, small_cnn())
    data = bytearray(p.read_bytes())
    at = 20 + 4 * (72 + 8)
    struct.pack_into("<2i", data, at, 1560, 10)                 # fc_in != 8 * 14 * 14, sizes shift
    p.write_bytes(bytes(data))
    one_line_error(p)
    data[at:at + 8] = struct.pack("<2i", 1045, 15)              # same byte count (1046*15 = 1569*10)
    p.write_bytes(bytes(data))
    assert "fc_in" in one_line_error(p)


# -- models the formats cannot hold -----------------------------------------
def test_unrepresentable_models_are_refused(tmp_path):
    two_hidden = build({"input_shape": [784], "name": "custom", "layers": [
        {"type": "linear", "in_features": 784, "out_features": 32}, {"type": "relu"},
        {"type": "linear", "in_features": 32, "out_features": 16}, {"type": "relu"},
        {"type": "linear", "in_features": 16, "out_features": 10}]})
    with pytest.raises(NotRepresentable, match="no original file layout"):
        write_original(tmp_path / "x.bin", two_hidden)
    with pytest.raises(NotRepresentable, match="one hidden"):
        write_original(tmp_path / "x.bin", two_hidden, kind="mlp")
    with pytest.raises(NotRepresentable, match="residual"):
        write_original(tmp_path / "x.bin", small_attention(residual=True))
    with pytest.raises(NotRepresentable, match="layer_norm"):
        write_original(tmp_path / "x.bin", small_attention(layernorm=True))
    with pytest.raises(NotRepresentable, match="one head"):
        write_original(tmp_path / "x.bin", small_attention(heads=2))
    with pytest.raises(NotRepresentable, match="padding 1"):
        write_original(tmp_path / "x.bin", build(cnn_arch(padding=0)))
    with pytest.raises(NotRepresentable, match="float32 only"):
        write_original(tmp_path / "x.bin", small_cnn(), element_type="float64")
    sigmoid = build({"input_shape": [2], "name": "xor", "loss": "mse", "layers": [
        {"type": "linear", "in_features": 2, "out_features": 4}, {"type": "sigmoid"},
        {"type": "linear", "in_features": 4, "out_features": 1}, {"type": "sigmoid"}]})
    with pytest.raises(NotRepresentable):
        write_original(tmp_path / "x.bin", sigmoid)
    assert not list(tmp_path.iterdir())                         # nothing half-written


def test_detect_reads_only_the_header(mlp_file):
    layout = detect(mlp_file)
    assert (layout.kind, layout.element_type, layout.dims) == ("mlp", "float32",
                                                               {"n_in": 784, "hidden": 16, "n_out": 10})


def test_native_file_named_bin_still_loads(tmp_path, images):
    model = small_mlp()
    save_model(tmp_path / "model.bin", model)                   # safetensors under another name
    back, meta = load_model(tmp_path / "model.bin")
    assert meta["format"] == "numpynets" and np.array_equal(back.forward(images), model.forward(images))


# -- the command line --------------------------------------------------------
@pytest.fixture
def fake_data(tmp_path):
    from fake_mnist import write_fake_mnist

    write_fake_mnist(tmp_path / "data", n_train=300, n_test=40)
    return str(tmp_path / "data")


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_convert_both_ways(tmp_path, capsys, images):
    model = small_attention(16, 32)
    native = tmp_path / "model.safetensors"
    save_model(native, model)
    rc, out, _ = cli(capsys, "convert", native, tmp_path / "att.bin")
    assert rc == 0 and "attention" in out and "135" not in out
    rc, out, _ = cli(capsys, "convert", tmp_path / "att.bin", tmp_path / "back.safetensors")
    assert rc == 0 and "D=16, F=32" in out
    back, _ = load_model(tmp_path / "back.safetensors")
    assert np.array_equal(back.forward(images), model.forward(images))
    # MLP: float64 by default, float32 on request, and the element type is reported when read
    save_model(tmp_path / "mlp.safetensors", small_mlp())
    rc, out, _ = cli(capsys, "convert", tmp_path / "mlp.safetensors", tmp_path / "mnist_model.bin")
    assert rc == 0 and "float64" in out
    rc, out, _ = cli(capsys, "convert", tmp_path / "mnist_model.bin", tmp_path / "m32.bin", "--dtype", "float32")
    assert rc == 0 and "read" in out and "float64" in out and "float32" in out
    assert os.path.getsize(tmp_path / "m32.bin") * 2 - 12 == os.path.getsize(tmp_path / "mnist_model.bin")


def test_cli_convert_refusals(tmp_path, capsys):
    path = tmp_path / "m.bin"
    write_original(path, small_mlp())
    before = path.read_bytes()
    rc, _, err = cli(capsys, "convert", path, path)
    assert rc == 2 and "never overwrites IN" in err and path.read_bytes() == before
    rc, _, err = cli(capsys, "convert", path, tmp_path / "m.safetensors", "--dtype", "float64")
    assert rc == 2 and err.count("\n") == 1
    save_model(tmp_path / "att.safetensors", small_attention(residual=True))
    rc, _, err = cli(capsys, "convert", tmp_path / "att.safetensors", tmp_path / "att.bin")
    assert rc == 2 and "residual" in err and err.count("\n") == 1 and not (tmp_path / "att.bin").exists()
    (tmp_path / "cut.bin").write_bytes(before[:-8])
    rc, _, err = cli(capsys, "convert", tmp_path / "cut.bin", tmp_path / "out.safetensors")
    assert rc == 2 and "truncated" in err and err.count("\n") == 1


def test_cli_evaluate_and_predict_on_bin(tmp_path, capsys, fake_data):
    from PIL import Image

    model = small_mlp(hidden=32)
    save_model(tmp_path / "m.safetensors", model)
    write_original(tmp_path / "mnist_model.bin", model)
    common = ["--limit", "30", "--data-dir", fake_data, "--no-verify", "--threads", "1", "--json"]
    rc, out_bin, _ = cli(capsys, "evaluate", tmp_path / "mnist_model.bin", *common)
    assert rc == 0 and "original mlp file (784-32-10, float64)" in out_bin
    rc, out_native, _ = cli(capsys, "evaluate", tmp_path / "m.safetensors", *common)
    assert out_bin.splitlines()[-1].split('"test_accuracy"')[1] == out_native.splitlines()[-1].split(
        '"test_accuracy"')[1]
    img = np.zeros((28, 28), np.uint8)
    img[6:22, 13:16] = 255                                       # a "1"
    Image.fromarray(img).save(tmp_path / "one.png")
    rc, out, _ = cli(capsys, "predict", tmp_path / "mnist_model.bin", tmp_path / "one.png", "--json")
    assert rc == 0
    rc, out2, _ = cli(capsys, "predict", tmp_path / "m.safetensors", tmp_path / "one.png", "--json")
    assert out.splitlines()[-1].split('"predictions"')[1] == out2.splitlines()[-1].split('"predictions"')[1]


def test_cli_train_save_original(tmp_path, capsys, fake_data):
    target = tmp_path / "mnist_model.bin"
    rc, out, _ = cli(capsys, "train", "mlp", "--hidden", "16", "--epochs", "1", "--limit", "200",
                     "--data-dir", fake_data, "--no-verify", "--threads", "1", "--no-progress",
                     "--out", tmp_path / "run", "--save-original", target)
    assert rc == 0 and target.exists() and os.path.getsize(target) == 12 + 8 * (784 * 16 + 16 + 16 * 10 + 10)
    native, _ = load_model(tmp_path / "run" / "model.safetensors")
    original, meta = load_model(target)
    assert meta["original"]["element_type"] == "float64"
    assert np.array_equal(native.flat_params, original.flat_params)
    # a model the original format cannot hold is refused before any training
    rc, _, err = cli(capsys, "train", "attention", "--recipe", "default", "--epochs", "1", "--limit", "50",
                     "--data-dir", fake_data, "--no-verify", "--threads", "1", "--no-progress",
                     "--out", tmp_path / "run2", "--save-original", tmp_path / "a.bin")
    assert rc == 2 and "cannot hold" in err and not (tmp_path / "run2").exists()


def test_cnn_file_rebuilds_the_builtin_cnn(tmp_path, images):
    from numpynets.models import cnn

    model = randomised(build(named(cnn.architecture(channels=4), "cnn"), seed=3), 3)
    write_original(tmp_path / "mnist_cnn_model_best.bin", model)
    back, meta = load_model(tmp_path / "mnist_cnn_model_best.bin")
    assert back.name == "cnn" and back.architecture() == model.architecture()
    assert meta["description"] == "original cnn file (conv 4x1x3x3 on 1x28x28, fc 784-10, float32)"
    assert np.array_equal(back.forward(images), model.forward(images))
    with pytest.raises(NotRepresentable, match="padding 1"):             # a 5x5 kernel is padded by 2
        write_original(tmp_path / "k5.bin", build(named(cnn.architecture(kernel=5), "cnn")))


def test_cnn_with_larger_kernel_and_padding_one(tmp_path, rng):
    model = randomised(build(cnn_arch(oc=3, ic=2, k=5, h=9, w=7, out=4)), 4)
    assert model.layers[0].padding == 1
    write_original(tmp_path / "c.bin", model)
    back, meta = load_model(tmp_path / "c.bin")
    x = rng.random((5, 2, 9, 7), dtype=np.float32)
    assert meta["original"]["dims"]["fc_in"] == 3 * 3 * 2 and np.array_equal(back.forward(x), model.forward(x))
