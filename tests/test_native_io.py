"""The native safetensors model file."""

import json
import os

import numpy as np
import pytest

from numpynets.errors import ModelFileError
from numpynets.io import load_model, save_model
from numpynets.io.native import read_native
from numpynets.models import build, build_architecture, get_model


@pytest.fixture
def mlp():
    return build(build_architecture(get_model("mlp"), {"hidden": 32}), seed=5)


def test_round_trip_identical_predictions(tmp_path, mlp, rng):
    path = tmp_path / "m.safetensors"
    save_model(path, mlp, recipe={"name": "default"}, metrics={"test_accuracy": 12.5})
    back, meta = load_model(path)
    x = rng.random((20, 28, 28), dtype=np.float32)
    assert np.array_equal(back.forward(x), mlp.forward(x))
    assert back.architecture()["layers"] == mlp.architecture()["layers"]
    assert back.name == "mlp" and back.dataset == "mnist"
    assert meta["recipe"] == {"name": "default"} and meta["metrics"]["test_accuracy"] == 12.5
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def test_metadata_rebuilds_the_model_alone(tmp_path, mlp):
    path = tmp_path / "m.safetensors"
    save_model(path, mlp)
    meta, tensors = read_native(path)
    assert meta["format"] == "numpynets" and meta["format_version"] == "1"
    assert meta["architecture"]["layers"][0]["out_features"] == 32
    assert sorted(tensors) == ["0.W", "0.b", "2.W", "2.b"]


def test_not_a_model(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(200))
    with pytest.raises(ModelFileError, match="not a safetensors model file"):
        load_model(junk)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError):
        load_model(empty)


def test_safetensors_from_another_tool(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "other.safetensors"
    save_file({"weight": np.zeros((2, 2), np.float32)}, str(path))
    with pytest.raises(ModelFileError, match="not a numpynets model"):
        load_model(path)


def test_truncated(tmp_path, mlp):
    path = tmp_path / "m.safetensors"
    save_model(path, mlp)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        load_model(path)


def test_weights_disagree_with_metadata(tmp_path, mlp):
    from safetensors.numpy import save_file

    path = tmp_path / "m.safetensors"
    save_model(path, mlp)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in read_native(path)[0].items()}
    tensors = {n: p for n, p, _ in mlp.named_parameters()}
    tensors["0.W"] = np.zeros((784, 16), np.float32)           # architecture says 32 hidden units
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(ModelFileError, match="disagree with the file's architecture"):
        load_model(path)


def test_failed_write_keeps_the_old_file(tmp_path, mlp, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_model(path, mlp)
    before = path.read_bytes()
    import safetensors.numpy

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.numpy, "save_file", boom)
    with pytest.raises(Exception, match="No space left"):
        save_model(path, mlp)
    assert path.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def test_saved_file_has_the_usual_permissions(tmp_path, mlp):
    path = tmp_path / "m.safetensors"
    save_model(path, mlp)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("header", [[1, 2], "text", {"__metadata__": 5}, {"__metadata__": ["format"]}])
def test_json_header_that_is_not_an_object(tmp_path, header):
    """A safetensors-like file whose header (or metadata) is valid JSON of the
    wrong kind: a one-line ModelFileError, not an AttributeError."""
    text = json.dumps(header).encode()
    path = tmp_path / "odd.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text)
    with pytest.raises(ModelFileError, match="not a numpynets model"):
        load_model(path)
