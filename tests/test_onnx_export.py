"""ONNX export, checked by an independent runtime: onnxruntime runs every
exported file and must agree with numpynets (identical argmax, logits
within 1e-4 in float32) on real MNIST test images; every registered layer
type has an export, tested on its own; files pass the ONNX checker with
``full_check``; bad input to ``numpynets export`` is a one-line error."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from onnx_helpers import KINDS, built, quick_train, require, session
from test_cli_errors import read_only_folder

import numpynets
from numpynets.cli import main
from numpynets.io import load_model, save_model
from numpynets.io.onnx_export import OPSET, export_onnx, to_onnx
from numpynets.io.onnx_layers import EXPORTERS, NotExportable
from numpynets.models.registry import build, load_architecture_file
from numpynets.nn import LAYERS, Layer, Linear, Sequential

onnx = require("onnx")
TOL = 1e-4

# -- every layer type, on its own -----------------------------------------------------
# one small model per registered type: (per-sample input shape, layer configs). A new
# layer type without an entry here fails test_every_layer_type_has_an_export_and_a_sample.
SAMPLES = {
    "linear": ([5], [{"type": "linear", "in_features": 5, "out_features": 3}]),
    "relu": ([5], [{"type": "relu"}]),
    "sigmoid": ([5], [{"type": "sigmoid"}]),
    "tanh": ([5], [{"type": "tanh"}]),
    "flatten": ([2, 3, 4], [{"type": "flatten"}]),
    "conv2d": ([2, 7, 6], [{"type": "conv2d", "in_channels": 2, "out_channels": 3, "kernel_size": 3,
                            "stride": 2, "padding": 1}]),
    "maxpool2d": ([2, 7, 6], [{"type": "maxpool2d", "kernel_size": 3, "stride": 2}]),
    "patchify": ([8, 12], [{"type": "patchify", "patch": 4}]),
    "position_embedding": ([6, 4], [{"type": "position_embedding", "tokens": 6, "dim": 4}]),
    "mean_pool": ([6, 4], [{"type": "mean_pool"}]),
    "self_attention": ([6, 8], [{"type": "self_attention", "dim": 8, "heads": 2}]),
    "layer_norm": ([6, 8], [{"type": "layer_norm", "dim": 8, "eps": 1e-3}]),
    "residual": ([6, 8], [{"type": "residual", "layers": [
        {"type": "layer_norm", "dim": 8}, {"type": "self_attention", "dim": 8},
        {"type": "linear", "in_features": 8, "out_features": 8}]}]),
    "batchnorm": ([3, 5, 4], [{"type": "batchnorm", "size": 3, "eps": 1e-3}, {"type": "flatten"},
                              {"type": "batchnorm", "size": 60}]),
    "dropout": ([5], [{"type": "dropout", "p": 0.5}]),
    "leaky_relu": ([5], [{"type": "leaky_relu", "alpha": 0.1}]),
    "elu": ([5], [{"type": "elu", "alpha": 0.7}]),
    "gelu": ([5], [{"type": "gelu", "approximate": "tanh"}, {"type": "linear", "in_features": 5, "out_features": 5},
                   {"type": "gelu", "approximate": "none"}]),
    "swish": ([5], [{"type": "swish"}]),
}


def test_every_layer_type_has_an_export_and_a_sample():
    assert sorted(set(LAYERS) - set(EXPORTERS)) == [], "layer types without an ONNX export"
    assert sorted(set(LAYERS) - set(SAMPLES)) == [], "layer types without an export test in SAMPLES"


def randomised(arch: dict, seed: int = 0):
    """The sample model with every parameter (and buffer) drawn at random, so
    zero biases or unit scales cannot hide a mistake."""
    model = build({**arch, "loss": "mse"}, seed=seed)
    rng = np.random.default_rng(seed + 1)
    model.flat_params[...] = rng.normal(0, 0.5, model.flat_params.shape).astype(np.float32)
    for layer in model.layers:
        for buf in getattr(layer, "buffers", {}).values():
            buf[...] = rng.uniform(0.5, 1.5, buf.shape).astype(buf.dtype)
    return model


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_layer_type_matches_onnxruntime(kind):
    shape, layers = SAMPLES[kind]
    model = randomised({"input_shape": shape, "layers": layers})
    proto = to_onnx(model)
    x = np.random.default_rng(2).normal(0, 1, (5, *shape)).astype(np.float32)    # (5, *shape)
    got = session(proto).run(None, {"input": x})[0]
    want = model.forward(x)
    assert got.shape == want.shape == (5, *model.output_shape)
    assert np.abs(got - want).max() < TOL, kind


def test_an_unknown_layer_type_is_refused_with_its_name():
    class Mystery(Layer):
        kind = "mystery_op"

        def forward(self, x, training=False):
            return x

    model = Sequential([Linear(4, 4), Mystery()], [4])
    with pytest.raises(NotExportable, match="mystery_op"):
        to_onnx(model)


# -- the MNIST models on real test images ---------------------------------------------------

@pytest.fixture(scope="module")
def trained(mnist):
    """Each MNIST model kind after a few dozen SGD steps on real training images."""
    x, y = mnist.train.x[:5000], mnist.train.y[:5000]
    return {kind: quick_train(built(kind), x, y) for kind in KINDS}


@pytest.mark.mnist
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_mnist_models_agree_with_onnxruntime(kind, trained, mnist, tmp_path):
    model = trained[kind]
    path = tmp_path / f"{kind}.onnx"
    export_onnx(model, path)
    x = mnist.test.x[:2000]                                              # (2000, 28, 28) real digits
    got = session(path).run(["logits"], {"input": x[:, None]})[0]         # (2000, 10)
    want = model.forward(x.reshape(len(x), *model.input_shape))           # (2000, 10)
    assert got.dtype == np.float32 and got.shape == (2000, 10)
    assert np.abs(got - want).max() < TOL
    assert np.array_equal(got.argmax(1), want.argmax(1))
    assert (want.argmax(1) == mnist.test.y[:2000]).mean() > 0.15          # trained a little (chance: 0.1)


@pytest.mark.mnist
def test_mnist_interface_and_metadata(trained, mnist, tmp_path):
    path = tmp_path / "cnn.onnx"
    save_model(tmp_path / "cnn.safetensors", trained["cnn"], metrics={"test_accuracy": 91.25})
    model, meta = load_model(tmp_path / "cnn.safetensors")
    export_onnx(model, path, meta)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", OPSET)] and OPSET == 17
    (inp,), (out,) = proto.graph.input, proto.graph.output
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]   # noqa: E731
    assert inp.name == "input" and dims(inp) == ["N", 1, 28, 28]
    assert out.name == "logits" and dims(out) == ["N", 10]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["name"] == "cnn" and props["dataset"] == "mnist"
    assert json.loads(props["class_names"]) == [str(d) for d in range(10)]
    assert props["numpynets_version"] == numpynets.__version__
    assert props["test_accuracy"] == "91.2500"
    assert json.loads(props["architecture"])["layers"][0]["type"] == "conv2d"
    sess = session(path)
    for n in (1, 37):                                                     # the batch axis is dynamic
        assert sess.run(None, {"input": mnist.test.x[:n, None]})[0].shape == (n, 10)


def test_xor_takes_two_inputs_and_gives_one_output(tmp_path):
    from numpynets.models import xor

    model = build({"name": "xor", "dataset": "xor", **xor.architecture()}, seed=3)
    proto = to_onnx(model)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", 2]
    assert out.name == "output" and [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", 1]
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    got = session(proto).run(None, {"input": x})[0]
    assert np.abs(got - model.forward(x)).max() < 1e-6
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["name"] == "xor" and props["dataset"] == "xor"


@pytest.mark.mnist
def test_a_model_from_an_architecture_file_exports(mnist, tmp_path, capsys):
    from pathlib import Path

    arch = load_architecture_file(Path(__file__).resolve().parent.parent / "configs" / "mlp_medium.json")
    model = quick_train(build(arch, seed=0), mnist.train.x[:3000], mnist.train.y[:3000], steps=20)
    save_model(tmp_path / "m.safetensors", model)
    assert main(["export", str(tmp_path / "m.safetensors"), str(tmp_path / "m.onnx")]) == 0
    assert "mlp_medium" in capsys.readouterr().out
    x = mnist.test.x[:1000]
    got = session(tmp_path / "m.onnx").run(None, {"input": x[:, None]})[0]
    want = model.forward(x.reshape(len(x), 784))
    assert np.abs(got - want).max() < TOL and np.array_equal(got.argmax(1), want.argmax(1))


NEW_LAYERS_ARCH = {
    "name": "cnn_bn", "input_shape": [1, 28, 28], "loss": "softmax_cross_entropy",
    "layers": [
        {"type": "conv2d", "in_channels": 1, "out_channels": 6, "kernel_size": 3, "padding": 1},
        {"type": "batchnorm"}, {"type": "gelu", "approximate": "none"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "conv2d", "in_channels": 6, "out_channels": 8, "kernel_size": 3, "stride": 2},
        {"type": "leaky_relu", "alpha": 0.05}, {"type": "flatten"},
        {"type": "batchnorm"}, {"type": "dropout", "p": 0.3},
        {"type": "linear", "in_features": 288, "out_features": 32}, {"type": "elu"},
        {"type": "linear", "in_features": 32, "out_features": 32}, {"type": "silu"},
        {"type": "gelu"}, {"type": "linear", "in_features": 32, "out_features": 10},
    ],
}


@pytest.mark.mnist
def test_an_architecture_file_with_the_new_layers(mnist, tmp_path, capsys):
    """BatchNorm (with running statistics from real training steps), Dropout
    and the new activations in one model, through an architecture file."""
    (tmp_path / "arch.json").write_text(json.dumps(NEW_LAYERS_ARCH))
    model = quick_train(build(load_architecture_file(tmp_path / "arch.json"), seed=0),
                        mnist.train.x[:3000], mnist.train.y[:3000], steps=30)
    bn = model.layers[1].buffers
    assert not np.allclose(bn["running_mean"], 0) and not np.allclose(bn["running_var"], 1)   # really trained
    save_model(tmp_path / "m.safetensors", model)
    assert main(["export", str(tmp_path / "m.safetensors"), str(tmp_path / "m.onnx")]) == 0
    reloaded, _ = load_model(tmp_path / "m.safetensors")
    x = mnist.test.x[:1000]
    got = session(tmp_path / "m.onnx").run(None, {"input": x[:, None]})[0]
    want = reloaded.forward(x[:, None])                                   # eval mode: running statistics
    assert np.abs(got - want).max() < TOL and np.array_equal(got.argmax(1), want.argmax(1))
    assert (want.argmax(1) == mnist.test.y[:1000]).mean() > 0.3


# -- the command line ---------------------------------------------------------------------------

@pytest.mark.mnist
@pytest.mark.parametrize("kind", ["mlp", "cnn", "attention"])
def test_export_of_the_originals_bin_files(kind, trained, mnist, tmp_path, capsys):
    from numpynets.io.original_models import read_original, write_original

    bin_path = tmp_path / f"{kind}.bin"
    write_original(bin_path, trained[kind])
    assert main(["export", str(bin_path), str(tmp_path / "m.onnx")]) == 0
    assert "opset 17" in capsys.readouterr().out
    model, _ = read_original(bin_path)
    x = mnist.test.x[:500]
    got = session(tmp_path / "m.onnx").run(None, {"input": x[:, None]})[0]
    want = model.forward(x.reshape(len(x), *model.input_shape))
    assert np.abs(got - want).max() < TOL and np.array_equal(got.argmax(1), want.argmax(1))


def one_line_error(capsys, argv, *expected):
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("numpynets: error: ") and "Traceback" not in err, err
    for e in expected:
        assert e in err, (e, err)
    return err


def test_export_refuses_a_file_that_is_not_a_model(tmp_path, capsys):
    bad = tmp_path / "notes.safetensors"
    bad.write_text("not a model\n")
    one_line_error(capsys, ["export", bad, tmp_path / "out.onnx"], str(bad))
    one_line_error(capsys, ["export", tmp_path / "missing.safetensors", tmp_path / "out.onnx"], "no such model file")
    assert not (tmp_path / "out.onnx").exists()


def test_export_into_an_unwritable_folder_leaves_nothing(tmp_path, capsys):
    good = tmp_path / "m.safetensors"
    save_model(good, built("mlp"))
    ro = read_only_folder(tmp_path)
    try:
        before = sorted(p.name for p in ro.iterdir())
        one_line_error(capsys, ["export", good, ro / "numpynets-out.onnx"], "cannot write", "numpynets-out.onnx")
        assert sorted(p.name for p in ro.iterdir()) == before            # no partial or temp file
        one_line_error(capsys, ["export", good, tmp_path / "nowhere" / "m.onnx"], "no such folder")
        one_line_error(capsys, ["export", good, tmp_path], "is a folder")
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_export_without_onnx_names_the_extra(tmp_path, capsys, monkeypatch):
    good = tmp_path / "m.safetensors"
    save_model(good, built("mlp"))
    monkeypatch.setitem(sys.modules, "onnx", None)                        # import onnx -> ImportError
    one_line_error(capsys, ["export", good, tmp_path / "m.onnx"], "numpynets[onnx]")
    assert not (tmp_path / "m.onnx").exists()
