"""The original's architecture files (``"layer_type"``) and the activation
fields of its training configs: translated, validated as the original
does, errors naming the layer index and the field, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cli_errors import fails, isolated  # noqa: F401  (isolated: autouse, no data, no network)

from numpynets.errors import ConfigError
from numpynets.models.original_arch import config_activation, is_original, translate
from numpynets.models.registry import build, load_architecture_file

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _kinds(arch):
    return [l["type"] for l in arch["layers"]]


def test_the_three_shipped_files_translate_as_the_original_describes():
    simple = load_architecture_file(CONFIGS / "original" / "mlp_simple.json")
    assert _kinds(simple) == ["linear", "relu", "linear"] and simple["input_shape"] == [784]
    assert simple["name"] == "mlp_simple"
    medium = load_architecture_file(CONFIGS / "original" / "mlp_medium.json")
    assert [(l["in_features"], l["out_features"]) for l in medium["layers"] if l["type"] == "linear"] == \
        [(784, 512), (512, 256), (256, 10)]
    assert _kinds(medium) == ["linear", "relu", "linear", "relu", "linear"]
    cnn = load_architecture_file(CONFIGS / "original" / "cnn_simple.json")
    assert _kinds(cnn) == ["conv2d", "relu", "flatten", "linear", "relu", "linear"]
    assert cnn["input_shape"] == [1, 28, 28]
    model = build(cnn)
    assert model.layers[3].in_features == 6272 and model.output_shape == (10,)
    assert model.num_parameters() == 8 * 9 + 8 + 6272 * 128 + 128 + 128 * 10 + 10


def test_our_own_mlp_medium_still_loads_unchanged():
    arch = load_architecture_file(CONFIGS / "mlp_medium.json")
    assert arch["name"] == "mlp_medium" and arch["layers"][0]["init"] == "he"
    assert not is_original(arch)


def test_case_insensitive_types_defaults_and_placement_of_activation_batchnorm_dropout():
    arch = translate({"layers": [
        {"layer_type": "Dense", "input_size": 20, "output_size": 16},
        {"layer_type": "BATCHNORM", "size": 16},
        {"layer_type": "dropout", "size": 16, "drop_rate": 0.25},
        {"layer_type": "dense", "input_size": 16, "output_size": 4}]}, {"type": "elu", "alpha": 0.5})
    assert arch["layers"] == [
        {"type": "linear", "in_features": 20, "out_features": 16},
        {"type": "batchnorm", "size": 16, "momentum": 0.9, "eps": 1e-5},
        {"type": "elu", "alpha": 0.5},
        {"type": "dropout", "p": 0.25},
        {"type": "linear", "in_features": 16, "out_features": 4}]
    build(arch)


def test_conv_stride_and_padding_default_and_batchnorm_after_a_conv_is_per_value():
    arch = translate({"layers": [
        {"layer_type": "conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3,
         "input_height": 6, "input_width": 6},
        {"layer_type": "batchnorm", "size": 32, "epsilon": 1e-3, "momentum": 0.5},
        {"layer_type": "dense", "input_size": 32, "output_size": 3}]})
    assert arch["layers"][0]["padding"] == 0 and arch["layers"][0]["stride"] == 1
    assert _kinds(arch) == ["conv2d", "flatten", "batchnorm", "relu", "linear"]
    assert build(arch).layers[2].eps == 1e-3


def test_training_config_activation_fields():
    assert config_activation({"scheduler_type": "constant"}) is None
    assert config_activation(json.loads((CONFIGS / "activations_demo.json").read_text())) == \
        {"type": "leaky_relu", "alpha": 0.01}
    assert config_activation({"activation_function": "ELU", "elu_alpha": 2}) == {"type": "elu", "alpha": 2.0}
    assert config_activation({"activation_function": "swish"}) == {"type": "swish"}
    for bad, msg in [({"activation_function": "softplus"}, "unknown activation_function 'softplus'"),
                     ({"activation_function": "relu", "leaky_relu_alpha": -0.1}, "leaky_relu_alpha must be"),
                     ({"activation_function": "elu", "elu_alpha": 0}, "elu_alpha must be a number > 0")]:
        with pytest.raises(ConfigError, match=msg):
            config_activation(bad, "c.json")


# -- the command line ---------------------------------------------------------------
def _write(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return p


DENSE = {"layer_type": "dense", "input_size": 784, "output_size": 256}


@pytest.mark.parametrize("layers,expected", [
    ([DENSE, {"layer_type": "dense", "input_size": 512, "output_size": 10}],
     ["layer 1's input size 512 does not match layer 0's output size 256"]),
    ([{"layer_type": "dense", "input_size": 784}], ["layer 0 (dense): missing required field 'output_size'"]),
    ([DENSE, {"layer_type": "dense", "input_size": 256, "output_size": 0}],
     ["layer 1 (dense): output_size must be a whole number >= 1, got 0"]),
    ([DENSE, {"layer_type": "batchnorm", "size": 0}], ["layer 1 (batchnorm): size must be", "got 0"]),
    ([DENSE, {"layer_type": "batchnorm", "size": 100}],
     ["layer 1's input size 100 does not match layer 0's output size 256"]),
    ([DENSE, {"layer_type": "batchnorm", "size": 256, "epsilon": 0}], ["layer 1 (batchnorm): epsilon must be > 0"]),
    ([DENSE, {"layer_type": "batchnorm", "size": 256, "momentum": 1.5}],
     ["layer 1 (batchnorm): momentum must be in [0, 1], got 1.5"]),
    ([DENSE, {"layer_type": "dropout", "drop_rate": 1.0}], ["layer 1 (dropout): drop_rate must be in [0, 1)"]),
    ([DENSE, {"layer_type": "dropout", "drop_rate": -0.2}], ["layer 1 (dropout): drop_rate must be in [0, 1)"]),
    ([DENSE, {"layer_type": "dropout"}], ["layer 1 (dropout): missing required field 'drop_rate'"]),
    ([{"layer_type": "conv2d", "in_channels": 1, "out_channels": 8, "kernel_size": 3, "stride": 0,
       "input_height": 28, "input_width": 28}], ["layer 0 (conv2d): stride must be a whole number >= 1, got 0"]),
    ([{"layer_type": "conv2d", "in_channels": 1, "out_channels": 8, "kernel_size": 3, "input_width": 28}],
     ["layer 0 (conv2d): missing required field 'input_height'"]),
    ([DENSE, {"layer_type": "pool", "size": 3}], ["layer 1: unknown layer_type 'pool'"]),
    ([DENSE, {"layer_type": "dense", "input_size": 256, "output_size": 10, "units": 3}],
     ["layer 1 (dense): unknown field(s) ['units']"]),
])
def test_bad_original_architecture_files(tmp_path, capsys, layers, expected):
    f = _write(tmp_path, "arch.json", {"layers": layers})
    fails(["train", f, "--out", tmp_path / "run"], capsys, f"{f}: ", *expected)
    assert not (tmp_path / "run").exists()


def test_an_empty_layer_list_is_refused():
    with pytest.raises(ConfigError, match="layer list is empty"):
        translate({"layers": []})


@pytest.mark.parametrize("layer,expected", [
    ({"type": "dropout", "p": 1}, "layer 1: dropout: p must be"),
    ({"type": "dropout", "p": -0.5}, "layer 1: dropout: p must be"),
    ({"type": "batchnorm", "size": 0}, "layer 1: batchnorm: size must be"),
    ({"type": "batchnorm", "size": 7}, "layer 1: BatchNorm(size=7"),
    ({"type": "batchnorm", "momentum": 2}, "layer 1: batchnorm: momentum must be in [0, 1]"),
    ({"type": "batchnorm", "eps": 0}, "layer 1: batchnorm: eps must be > 0"),
    ({"type": "batchnorm", "eps": -1}, "layer 1: batchnorm: eps must be > 0"),
])
def test_bad_layers_in_our_schema_on_the_command_line(tmp_path, capsys, layer, expected):
    f = _write(tmp_path, "arch.json", {"input_shape": [784], "layers": [
        {"type": "linear", "in_features": 784, "out_features": 16}, layer,
        {"type": "linear", "in_features": 16, "out_features": 10}]})
    fails(["train", f, "--out", tmp_path / "run"], capsys, expected)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("config,model,expected", [
    ({"scheduler_type": "constant", "activation_function": "mish"}, "mlp", "unknown activation_function 'mish'"),
    ({"scheduler_type": "constant", "activation_function": "elu", "elu_alpha": -1}, "cnn", "elu_alpha must be"),
    ({"scheduler_type": "constant", "activation_function": "gelu"}, "attention",
     "the attention model has no activation option"),
])
def test_bad_activation_in_a_training_config(tmp_path, capsys, config, model, expected):
    f = _write(tmp_path, "sched.json", config)
    fails(["train", model, "--schedule-config", f, "--out", tmp_path / "run"], capsys, expected)


def test_an_activation_for_an_architecture_with_its_own_activations_is_refused(tmp_path, capsys):
    f = _write(tmp_path, "sched.json", {"scheduler_type": "constant", "activation_function": "gelu"})
    fails(["train", CONFIGS / "mlp_medium.json", "--schedule-config", f], capsys,
          "names its own activation layers")


@pytest.mark.parametrize("argv,expected", [
    (["mlp", "--dropout", "1"], "--dropout must be a number in [0, 1)"),
    (["cnn", "--dropout", "-0.1"], "--dropout must be"),
    (["mlp", "--activation", "mish"], "unknown activation 'mish'"),
    (["attention", "--batchnorm"], "bad architecture option"),
])
def test_bad_model_options(tmp_path, capsys, argv, expected):
    fails(["train", *argv, "--out", tmp_path / "run"], capsys, expected)
