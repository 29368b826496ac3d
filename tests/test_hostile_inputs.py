"""Issue 13, part 1: the defects a review and a fuzzer found, one test each
(each failed before its fix). Hostile files and numbers give one line of the
project's own error and never allocate more than their contents justify."""

from __future__ import annotations

import gzip
import json
import math
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from fake_mnist import write_fake_mnist

from numpynets.cli import main
from numpynets.data.idx import gunzip_idx, read_idx
from numpynets.errors import ConfigError, DataError, ModelFileError, NumpynetsError
from numpynets.io import save_model
from numpynets.io.native import load_native
from numpynets.jsonfile import loads, read_json
from numpynets.models import mlp
from numpynets.models.registry import build, load_architecture_file
from numpynets.optim.schedules import schedule_from_dict


@pytest.fixture(autouse=True)
def no_data(tmp_path, monkeypatch):
    """Nothing to download and no MNIST to find: a case that got as far as
    loading data would fail loudly."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NUMPYNETS_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("NUMPYNETS_MIRRORS", "http://127.0.0.1:9/")


def cli_fails(capsys, argv, *expected) -> str:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("numpynets: error: "), err
    for e in expected:
        assert e in err, (e, err)
    return err


def peak_bytes(fn) -> tuple[int, BaseException | None]:
    """Peak traced allocation (Python and NumPy) while ``fn`` runs, and what it raised."""
    tracemalloc.start()
    raised = None
    try:
        fn()
    except BaseException as exc:       # noqa: BLE001 - returned to the caller
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


# -- the gzip bomb -------------------------------------------------------------

def gzip_bomb(path: Path, count: int = 2**32 - 1, zeros_mb: int = 200) -> Path:
    """An IDX1 uint8 header claiming ``count`` items, then ``zeros_mb`` MB of
    zeros, gzipped (members concatenated: gzip reads them as one stream)."""
    head = gzip.compress(bytes([0, 0, 0x08, 1]) + struct.pack(">I", count), mtime=0)
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    path.write_bytes(head + zeros * zeros_mb)
    return path


def test_gzip_bomb_behind_a_huge_header_is_refused_unread(tmp_path):
    bomb = gzip_bomb(tmp_path / "labels.gz")
    assert bomb.stat().st_size < 400_000
    peak, exc = peak_bytes(lambda: read_idx(bomb))
    assert isinstance(exc, DataError), exc
    assert "decompression bomb" in str(exc) and "\n" not in str(exc)
    assert peak < 3_000_000, peak               # before: 200 MB decompressed, then MemoryError at 4 GB


def test_gzip_bomb_on_the_download_path_is_bounded_by_the_known_size():
    blob = gzip.compress(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 10**8) + bytes(10**6))
    with pytest.raises(DataError, match="decompression bomb"):
        gunzip_idx(blob, "http://mirror/t10k-labels-idx1-ubyte.gz", max_size=10008)


def test_data_verify_refuses_a_bomb(tmp_path, capsys):
    folder = tmp_path / "mnist"
    write_fake_mnist(folder)
    gzip_bomb(folder / "train-images-idx3-ubyte.gz", zeros_mb=50)       # the first file verified
    cli_fails(capsys, ["data", "--verify", "--data-dir", folder], "train-images-idx3-ubyte.gz",
              "decompression bomb")


# -- model files: validate before allocating, never initialise to overwrite ----------

def tiny_model_file(path: Path, arch_edit=None, meta_edit=None) -> Path:
    """A real model file (784-4-10 MLP), with its metadata edited."""
    from safetensors.numpy import save_file

    from numpynets.io.native import FORMAT, FORMAT_VERSION

    model = build(mlp.architecture(hidden=4), seed=0)
    arch = model.architecture()
    arch.update(name="mlp", dataset="mnist")
    if arch_edit:
        arch_edit(arch)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": json.dumps(arch),
            "recipe": "{}", "metrics": "{}"}
    if meta_edit:
        meta_edit(meta)
    save_file({n: np.ascontiguousarray(p) for n, p, _ in model.named_parameters()}, str(path), metadata=meta)
    return path


def test_model_file_asking_for_a_huge_model_allocates_nothing(tmp_path):
    def huge(arch):
        arch["layers"][0]["out_features"] = arch["layers"][2]["in_features"] = 10**8  # 10^8 x 794 weights
    path = tiny_model_file(tmp_path / "huge.safetensors", huge)
    assert path.stat().st_size < 20_000
    peak, exc = peak_bytes(lambda: load_native(path))
    assert isinstance(exc, ModelFileError), exc
    assert "more than the" in str(exc) and "\n" not in str(exc)
    assert peak < 2_000_000, peak                # before: 318 GB asked for, initialised layer by layer


def test_loading_never_runs_random_initialisation(tmp_path, monkeypatch):
    from numpynets.io.original_models import read_original, write_original
    from numpynets.nn.linear import Linear

    model = build(mlp.architecture(hidden=8), seed=3)
    save_model(tmp_path / "m.safetensors", model)
    write_original(tmp_path / "m.bin", model)

    def refuse(self, rng):
        raise AssertionError("random initialisation on load")
    monkeypatch.setattr(Linear, "reset_parameters", refuse)
    for loaded in (load_native(tmp_path / "m.safetensors")[0], read_original(tmp_path / "m.bin")[0]):
        for (n, p, _), (_, q, _) in zip(model.named_parameters(), loaded.named_parameters()):
            np.testing.assert_array_equal(p, q, err_msg=n)


@pytest.mark.parametrize("edit,words", [
    (lambda a: a["layers"][0].update(out_features=math.inf), "out_features must be a whole number"),
    (lambda a: a["layers"][0].update(out_features=3.7), "out_features must be a whole number"),
    (lambda a: a.update(input_shape=[math.inf]), "input_shape"),
    (lambda a: a.update(dataset=["mnist"]), "dataset"),
    (lambda a: a.update(layers="linear"), "layers"),
])
def test_model_file_metadata_numbers_through_evaluate_and_predict(tmp_path, capsys, edit, words):
    """json.dumps writes Infinity, which the strict reader refuses; a finite
    bad number reaches the layer builders, which refuse it too."""
    path = tiny_model_file(tmp_path / "bad.safetensors", edit)
    with pytest.raises(ModelFileError):
        load_native(path)
    img = tmp_path / "digit.png"
    from PIL import Image
    Image.new("L", (28, 28), 0).save(img)
    cli_fails(capsys, ["predict", path, img], str(path))
    cli_fails(capsys, ["evaluate", path], str(path))


@pytest.mark.parametrize("meta_edit,words", [
    (lambda m: m.update(architecture="[" * 100_000 + "]" * 100_000), "nested too deeply"),
    (lambda m: m.update(architecture='{"input_shape": [NaN]}'), "NaN"),
    (lambda m: m.update(metrics='{"x": ' + "9" * 5000 + "}"), "digits"),
])
def test_model_file_metadata_json_is_parsed_strictly(tmp_path, meta_edit, words):
    path = tiny_model_file(tmp_path / "m.safetensors", meta_edit=meta_edit)
    with pytest.raises(ModelFileError, match=words):
        load_native(path)


def test_model_file_header_json_is_parsed_strictly(tmp_path):
    for i, header in enumerate([b"[" * 100_000 + b"]" * 100_000, b'{"a": NaN}', b'{"a": 1e400}']):
        path = tmp_path / f"h{i}.safetensors"
        path.write_bytes(struct.pack("<Q", len(header)) + header)
        with pytest.raises(ModelFileError, match="not valid JSON"):
            load_native(path)


# -- configuration numbers -------------------------------------------------------

def test_hidden_zero_is_a_one_line_error(capsys):
    cli_fails(capsys, ["train", "mlp", "--hidden", "0", "--epochs", "1"], "out_features must be >= 1")


@pytest.mark.parametrize("args,words", [
    (["--seed", "-1"], "--seed must be >= 0"),                     # was a ValueError from SeedSequence
    (["--threads", "1" + "0" * 400], "--threads must be <= 4096"),   # was a ctypes OverflowError
    (["--epochs", "1" + "0" * 400], "epochs must be <= 1,000,000,000"),
    (["--batch-size", "1" + "0" * 400], "batch size must be <="),
])
def test_huge_or_negative_flags_are_one_line_errors(capsys, tmp_path, args, words):
    cli_fails(capsys, ["train", "mlp", *args, "--out", tmp_path / "run"], words)
    assert not (tmp_path / "run").exists()


def test_fractional_sizes_are_refused_not_truncated():
    arch = mlp.architecture(hidden=3.7)
    with pytest.raises(ConfigError, match="whole number, got 3.7"):
        build(arch)
    assert build(mlp.architecture(hidden=4.0)).layers[0].out_features == 4    # an integral float is fine


@pytest.mark.parametrize("field", ["step_size", "gamma", "min_lr", "warmup_epochs", "decay_rate"])
def test_schedule_null_fields_are_config_errors(field):
    with pytest.raises(ConfigError, match=f"{field}.*must be a number, got null"):
        schedule_from_dict({"scheduler_type": "step_decay", field: None})


@pytest.mark.parametrize("config", [
    {"scheduler_type": "step_decay", "step_size": 1e-320},
    {"scheduler_type": "exponential", "decay_rate": 10**400},
    {"scheduler_type": "cosine_annealing", "T_max": 10**400},
    {"scheduler_type": "constant", "warmup_epochs": 10**400},
    {"scheduler_type": "constant", "warmup_epochs": math.inf},
    {"scheduler_type": "step_decay", "gamma": math.nan},
    {"scheduler_type": "exponential", "decay_rate": 1e300},
])
def test_schedule_numbers_out_of_range_are_refused_at_parse_time(config):
    with pytest.raises(ConfigError):
        schedule_from_dict(config)


def test_a_growing_factor_gives_infinity_not_an_overflow_error():
    s = schedule_from_dict({"scheduler_type": "exponential", "decay_rate": 1e6})
    assert s.lr(0.1, 60, 100) == math.inf              # 1e6 ** 60 overflows a float: the run diverges


def test_schedule_file_with_infinity_or_huge_numbers_fails_before_the_run_folder(tmp_path, capsys):
    for text in ('{"scheduler_type": "constant", "warmup_epochs": Infinity}',
                 '{"scheduler_type": "step_decay", "step_size": 1e-320}',
                 '{"scheduler_type": "exponential", "decay_rate": 1' + "0" * 400 + "}"):
        cfg = tmp_path / "s.json"
        cfg.write_text(text)
        cli_fails(capsys, ["train", "mlp", "--schedule-config", cfg, "--out", tmp_path / "run"], "s.json")
        assert not (tmp_path / "run").exists()
    cli_fails(capsys, ["train", "mlp", "--warmup", "inf", "--out", tmp_path / "run"], "warmup_epochs")
    assert not (tmp_path / "run").exists()


def test_deeply_nested_architecture_json(tmp_path, capsys):
    arch = tmp_path / "deep.json"
    arch.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_architecture_file(arch)
    cli_fails(capsys, ["train", arch], "deep.json", "nested too deeply")


@pytest.mark.parametrize("text,words", [
    ('{"a": NaN}', "NaN"), ('{"a": -Infinity}', "Infinity"), ('{"a": 1e999}', "too large"),
    ('{"a": ' + "1" * 5000 + "}", "digits"), ("[" * 100_000, "nested too deeply"),
])
def test_strict_json_reader(tmp_path, text, words):
    (tmp_path / "x.json").write_text(text)
    with pytest.raises(ConfigError, match=words):
        read_json(tmp_path / "x.json", "test file")
    with pytest.raises(ModelFileError, match=words):
        loads(text, "where", ModelFileError)


@pytest.mark.parametrize("layer", [
    {"type": "linear", "in_features": 784, "out_features": math.inf},
    {"type": "self_attention", "dim": math.inf},
    {"type": "self_attention", "dim": 16, "heads": math.inf},
    {"type": "position_embedding", "tokens": math.inf, "dim": 4},
    {"type": "layer_norm", "dim": math.inf},
    {"type": "layer_norm", "dim": 4, "eps": math.nan},
    {"type": "patchify", "patch": 10**400},
])
def test_layer_builders_refuse_infinity(layer):
    with pytest.raises(ConfigError):
        build({"input_shape": [784], "layers": [layer]})


def test_check_fits_dataset_with_a_non_string_dataset():
    from numpynets.train.evaluate import check_fits_dataset

    model = build(mlp.architecture(hidden=4))
    with pytest.raises(ConfigError, match="dataset"):
        check_fits_dataset(model, ["mnist"])
    with pytest.raises(ConfigError, match="dataset"):
        build({**mlp.architecture(hidden=4), "dataset": {"x": 1}})


def test_plot_of_a_log_with_an_absurd_epoch(tmp_path, capsys):
    from numpynets.apps.run_summary import format_seconds

    log = tmp_path / "training_loss_c.txt"
    log.write_text("1,0.5,10\n1e308,0.4,10\n")
    cli_fails(capsys, ["plot", log, "--output", tmp_path / "p.png"], "the epoch is 1e+308")
    assert format_seconds(math.inf) == "inf s"
    log.write_text("1,0.5,1e308\n2,0.4,1e308\n")                 # times that add up to infinity
    capsys.readouterr()
    assert main(["plot", str(log), "--output", str(tmp_path / "p.png")]) == 0


def test_plot_with_a_hostile_config_json(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("epoch,train_loss,epoch_seconds\n1,0.5,1.0\n")
    (run / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    capsys.readouterr()
    assert main(["plot", str(run), "--output", str(tmp_path / "p.png")]) == 0


# -- images ---------------------------------------------------------------------

def test_images_beyond_the_pixel_bound_are_refused_before_decoding(tmp_path, capsys):
    from PIL import Image

    from numpynets.data import images

    big = tmp_path / "big.png"
    Image.new("1", (10_000, 10_000), 0).save(big)      # 100 M pixels: between Pillow's limit and twice it
    with pytest.raises(DataError, match="more than the") as e:
        images.load_image(big)
    assert "\n" not in str(e.value) and str(big) in str(e.value)
    model = tmp_path / "m.safetensors"
    save_model(model, build(mlp.architecture(hidden=4)))
    cli_fails(capsys, ["predict", model, big], "big.png", "shrink it first")
    with pytest.raises(DataError, match="more than the"):
        images.mnist_like(np.broadcast_to(np.float32(0), (10_000, 10_000)))


# -- zero_grad and Conv2D buffers ------------------------------------------------------

def test_a_step_without_backward_applies_no_stale_gradient(rng):
    from numpynets.optim.optimizers import SGD

    model = build(mlp.architecture(hidden=8), seed=0)
    opt = SGD([(model.flat_params, model.flat_grads)], lr=0.5)
    x = rng.standard_normal((5, 784)).astype(np.float32)
    y = rng.integers(0, 10, 5)
    model.zero_grad()
    model.backward(model.loss(model.forward(x, True), y)[1])
    opt.step()
    assert np.abs(model.flat_grads).max() > 0
    model.zero_grad()
    assert not model.flat_grads.any()                  # the contract: zero, not "marked stale"
    before = model.flat_params.copy()
    opt.step()                                         # no backward: nothing to apply
    np.testing.assert_array_equal(model.flat_params, before)


def test_conv_eval_forward_between_training_forward_and_backward(rng):
    from numpynets.nn.conv import Conv2D, conv2d_backward_reference

    layer = Conv2D(2, 3, 3, padding=1)
    layer.reset_parameters(rng)
    x = rng.standard_normal((4, 2, 6, 6)).astype(np.float64)
    other = rng.standard_normal((4, 2, 6, 6)).astype(np.float64)    # same shape: same buffers before the fix
    for name in ("W", "b"):
        layer.params[name] = layer.params[name].astype(np.float64)
        layer.grads[name] = np.zeros_like(layer.params[name])
    y = layer.forward(x, training=True)
    layer.forward(other, training=False)                               # e.g. a validation batch
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx_ref, dW_ref, db_ref = conv2d_backward_reference(x, layer.params["W"], dy, 1, 1)
    np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["b"], db_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)

