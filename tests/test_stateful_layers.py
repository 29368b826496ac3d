"""BatchNorm, Dropout and the new activations: values against independent
float64 formulas, buffers, the model's generator, files, and bad input.
(Their finite-difference gradient checks are in test_layers_gradcheck.)"""

import json
import math

import numpy as np
import pytest

from numpynets.errors import ConfigError, ShapeError
from numpynets.io.native import load_native, save_model
from numpynets.models.registry import build
from numpynets.nn import ELU, GELU, LAYERS, BatchNorm, Dropout, LeakyReLU, Sequential, Swish, layer_from_config
from numpynets.nn.normalization import batchnorm_train_reference
from numpynets.nn.special import erf, erf_reference


# -- BatchNorm -----------------------------------------------------------------
@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 5, 6)])
def test_batchnorm_train_matches_the_staged_float64_formulas(rng, shape):
    """Output, dx, dgamma, dbeta and the running statistics of the fast
    layer against the slow, staged chain rule (a different computation:
    dvar and dmean as separate nodes, NumPy's own sums)."""
    C = shape[1]
    layer = BatchNorm(C, momentum=0.7, eps=1e-3)
    gamma, beta = 1 + rng.standard_normal(C), rng.standard_normal(C)
    layer.bind("gamma", gamma.copy(), np.zeros(C))
    layer.bind("beta", beta.copy(), np.zeros(C))
    x = rng.standard_normal(shape) * 3 + 1
    dy = rng.standard_normal(shape)
    y = layer.forward(x, training=True)
    dx = layer.backward(dy)
    ref_y, ref_dx, ref_dg, ref_db, mu, var = batchnorm_train_reference(x, gamma, beta, 1e-3, dy)
    np.testing.assert_allclose(y, ref_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.grads["gamma"], ref_dg, rtol=1e-10)
    np.testing.assert_allclose(layer.grads["beta"], ref_db, rtol=1e-10)
    # running = momentum * running + (1 - momentum) * batch, with the BIASED variance, from (0, 1)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.3 * mu, rtol=1e-6)
    np.testing.assert_allclose(layer.buffers["running_var"], 0.7 + 0.3 * var, rtol=1e-6)
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    np.testing.assert_allclose(var, x.var(axis=axes), rtol=1e-12)             # np.var is /M: biased


def test_batchnorm_normalises_each_channel(rng):
    x = rng.standard_normal((8, 3, 5, 5)) * np.array([1, 10, 0.1])[None, :, None, None] + 4
    y = BatchNorm(3).forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    v = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), v / (v + 1e-5), rtol=1e-9)     # 1, but for eps


def test_batchnorm_eval_uses_the_running_statistics_and_does_not_update_them(rng):
    layer = BatchNorm(4)
    layer.buffers["running_mean"][...] = [1, 2, 3, 4]
    layer.buffers["running_var"][...] = [4, 1, 0.25, 9]
    x = rng.standard_normal((6, 4))
    y = layer.forward(x)
    expect = (x - [1, 2, 3, 4]) / np.sqrt(np.array([4, 1, 0.25, 9]) + 1e-5)
    np.testing.assert_allclose(y, expect, rtol=1e-6)
    np.testing.assert_array_equal(layer.buffers["running_mean"], np.float32([1, 2, 3, 4]))
    assert not np.allclose(layer.forward(x, training=True), y)                 # training: batch statistics


def test_batchnorm_running_mean_converges_with_momentum(rng):
    layer = BatchNorm(2, momentum=0.9)
    for _ in range(200):
        layer.forward(rng.standard_normal((256, 2)) * [1, 3] + [5, -2], training=True)
    np.testing.assert_allclose(layer.buffers["running_mean"], [5, -2], atol=0.1)
    np.testing.assert_allclose(layer.buffers["running_var"], [1, 9], rtol=0.1)


def test_batchnorm_takes_its_size_from_the_input():
    model = Sequential([layer_from_config({"type": "batchnorm"})], (3, 4, 4))
    assert model.layers[0].config() == {"type": "batchnorm", "size": 3, "momentum": 0.9, "eps": 1e-5}
    assert [n for n, _ in model.named_buffers()] == ["0.running_mean", "0.running_var"]


# -- Dropout -------------------------------------------------------------------
def test_dropout_is_inverted_and_eval_is_the_identity(rng):
    layer = Dropout(0.25)
    layer.set_rng(np.random.default_rng(1))
    x = rng.standard_normal((200, 100)).astype(np.float32)
    assert layer.forward(x) is x
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01                         # 20,000 units: 6 sigma is 0.0184
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-6)
    d = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(layer.backward(d), d * (y != 0) / 0.75, rtol=1e-6)


def test_dropout_without_a_generator_says_what_to_do():
    with pytest.raises(ConfigError, match="no random generator"):
        Dropout(0.5).forward(np.ones((2, 2)), training=True)


def _dropout_mlp(seed):
    arch = {"input_shape": [6], "layers": [{"type": "linear", "in_features": 6, "out_features": 8},
                                           {"type": "dropout", "p": 0.5},
                                           {"type": "linear", "in_features": 8, "out_features": 3}]}
    return build(arch, seed=seed)


def test_same_seed_same_masks_other_seed_other_masks():
    x = np.ones((4, 6), np.float32)
    a, b, c = _dropout_mlp(3), _dropout_mlp(3), _dropout_mlp(4)
    ya, yb, yc = (m.forward(x, training=True) for m in (a, b, c))
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a.layers[1].mask, c.layers[1].mask)


def test_the_generator_does_not_change_the_initial_weights():
    """The layers' generator is spawned from the initialisation generator,
    which draws nothing: a model without Dropout is initialised as before."""
    plain = {"input_shape": [6], "layers": [{"type": "linear", "in_features": 6, "out_features": 8},
                                            {"type": "linear", "in_features": 8, "out_features": 3}]}
    with_dropout, without = _dropout_mlp(3), build(plain, seed=3)
    np.testing.assert_array_equal(with_dropout.layers[0].params["W"], without.layers[0].params["W"])
    np.testing.assert_array_equal(with_dropout.layers[2].params["W"], without.layers[1].params["W"])
    # and the weights are the generator's first draws, as before the generator existed
    from numpynets.nn.init import initialise
    ref = np.random.default_rng(3)
    W0 = initialise(ref, "xavier", (6, 8), 6, 8, np.float32)
    np.testing.assert_array_equal(without.layers[0].params["W"], W0)


def test_rng_state_saves_and_restores_for_an_exact_resume():
    x = np.ones((4, 6), np.float32)
    model = _dropout_mlp(0)
    model.forward(x, training=True)
    state = json.loads(json.dumps(model.rng_state()))            # survives a JSON checkpoint
    after = [model.forward(x, training=True).copy() for _ in range(3)]
    other = _dropout_mlp(0)
    other.load_state_dict(model.state_dict())
    other.set_rng_state(state)
    again = [other.forward(x, training=True) for _ in range(3)]
    for a, b in zip(after, again):
        np.testing.assert_array_equal(a, b)
    assert other.layers[1].rng is other.rng                    # one generator, shared by the layers


def test_set_rng_state_refuses_another_generator():
    with pytest.raises(ConfigError, match="MT19937"):
        _dropout_mlp(0).set_rng_state(np.random.MT19937(0).state)


# -- activations -------------------------------------------------------------------
def test_activation_values_against_formulas(rng):
    x = rng.standard_normal(500) * 3
    np.testing.assert_allclose(LeakyReLU(0.2).forward(x), [v if v > 0 else 0.2 * v for v in x])
    np.testing.assert_allclose(ELU(0.7).forward(x), [v if v > 0 else 0.7 * (math.exp(v) - 1) for v in x])
    np.testing.assert_allclose(Swish().forward(x), [v / (1 + math.exp(-v)) for v in x], rtol=1e-12)
    exact = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x]
    np.testing.assert_allclose(GELU("none").forward(x), exact, rtol=1e-12, atol=1e-14)   # 1 + erf cancels for x < 0
    tanh_form = [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3))) for v in x]
    np.testing.assert_allclose(GELU("tanh").forward(x), tanh_form, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(GELU("tanh").forward(x), exact, atol=1e-3)    # the approximation is close


def test_activations_keep_float32_and_do_not_overflow():
    x = np.array([-1000, -30, 0, 30, 1000], np.float32)
    for layer in (LeakyReLU(), ELU(), GELU(), GELU("none"), Swish()):
        y = layer.forward(x)
        assert y.dtype == np.float32 and np.all(np.isfinite(y)), layer
        assert np.all(np.isfinite(layer.backward(np.ones_like(x)))), layer


def test_erf_matches_math_erf_everywhere(rng):
    """The slow twin: math.erf element by element."""
    x = np.concatenate([rng.standard_normal(2000) * 3, np.linspace(-8, 8, 801), [0.0, -0.0, 2.0, 6.0, 40.0]])
    np.testing.assert_allclose(erf(x), erf_reference(x), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(erf(x.astype(np.float32)), erf_reference(x), atol=2e-6)


def test_silu_is_an_alias_of_swish_and_not_registered():
    layer = layer_from_config({"type": "SiLU"})
    assert isinstance(layer, Swish) and layer.config() == {"type": "swish"}
    assert "silu" not in LAYERS
    assert {"batchnorm", "dropout", "leaky_relu", "elu", "gelu", "swish"} <= set(LAYERS)


# -- models and files --------------------------------------------------------------
def _bn_cnn():
    return {"name": "custom", "input_shape": [1, 8, 8], "layers": [
        {"type": "conv2d", "in_channels": 1, "out_channels": 3, "kernel_size": 3, "padding": 1},
        {"type": "batchnorm"}, {"type": "gelu"}, {"type": "flatten"}, {"type": "dropout", "p": 0.2},
        {"type": "linear", "in_features": 192, "out_features": 16}, {"type": "batchnorm", "momentum": 0.5},
        {"type": "elu", "alpha": 0.5}, {"type": "linear", "in_features": 16, "out_features": 4}]}


def test_native_file_round_trip_keeps_buffers_and_rebuilds_the_model(rng, tmp_path):
    model = build(_bn_cnn(), seed=0)
    for _ in range(3):
        model.forward(rng.standard_normal((5, 1, 8, 8)), training=True)
    rm = model.layers[1].buffers["running_mean"].copy()
    assert np.any(rm != 0)
    save_model(tmp_path / "m.safetensors", model)
    back, _ = load_native(tmp_path / "m.safetensors")
    assert back.architecture() == model.architecture()
    for (n, a), (m, b) in zip(model.named_buffers(), back.named_buffers()):
        assert n == m and b.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(x), back.forward(x))       # eval: running stats, no dropout
    from safetensors.numpy import load_file
    assert "1.running_var" in load_file(str(tmp_path / "m.safetensors"))


def test_buffers_are_outside_the_flat_buffer_and_optimizers_never_touch_them(rng):
    from numpynets.optim.optimizers import make_optimizer

    model = build(_bn_cnn(), seed=0)
    model.forward(rng.standard_normal((5, 1, 8, 8)), training=True)
    before = {n: b.copy() for n, b in model.named_buffers()}
    flat = model.flat_params.__array_interface__["data"][0]
    for _, b in model.named_buffers():
        start = b.__array_interface__["data"][0]
        assert not flat <= start < flat + model.flat_params.nbytes
    opt = make_optimizer("adamw", [(model.flat_params, model.flat_grads)], 0.1, weight_decay=0.5)
    model.flat_grads[...] = 1.0
    opt.step()
    for n, b in model.named_buffers():
        np.testing.assert_array_equal(b, before[n])


def test_astype_float64_copies_buffers(rng):
    model = build(_bn_cnn(), seed=0)
    model.forward(rng.standard_normal((5, 1, 8, 8)), training=True)
    m64 = model.astype(np.float64)
    assert all(b.dtype == np.float64 for _, b in m64.named_buffers())
    x = rng.standard_normal((3, 1, 8, 8))
    np.testing.assert_allclose(m64.forward(x), model.forward(x.astype(np.float32)), rtol=1e-4, atol=1e-5)


def test_whole_model_gradient_with_batchnorm_and_fixed_dropout(rng):
    """BatchNorm and Dropout inside a model: the model's backward against
    finite differences of the model's loss (float64, the dropout masks
    fixed by restoring the generator before each forward pass)."""
    from numpynets.nn.gradcheck import central_difference, rel_error

    model = build(_bn_cnn(), seed=1).astype(np.float64)
    x = rng.standard_normal((6, 1, 8, 8))
    y = rng.integers(0, 4, 6)
    state = model.rng_state()

    def loss():
        model.set_rng_state(state)
        return model.loss(model.forward(x, training=True), y)[0]

    loss()
    model.set_rng_state(state)
    out = model.forward(x, training=True)
    _, d = model.loss(out, y)
    model.zero_grad()
    model.backward(d)
    analytic = model.flat_grads.copy()
    idx = rng.choice(np.flatnonzero(model.flat_grads != 0), 40, replace=False)
    numeric = np.array([central_difference(loss, model.flat_params, i) for i in idx])
    assert rel_error(analytic[idx], numeric) < 1e-6


# -- bad input ---------------------------------------------------------------------
@pytest.mark.parametrize("layer,message", [
    ({"type": "dropout", "p": 1}, r"layer 1: dropout: p must be .* in \[0, 1\).*got 1"),
    ({"type": "dropout", "p": -0.1}, r"layer 1: dropout: p must be"),
    ({"type": "batchnorm", "size": 0}, r"layer 1: batchnorm: size must be .*>= 1, got 0"),
    ({"type": "batchnorm", "momentum": 1.5}, r"layer 1: batchnorm: momentum must be in \[0, 1\], got 1.5"),
    ({"type": "batchnorm", "momentum": -0.1}, r"layer 1: batchnorm: momentum"),
    ({"type": "batchnorm", "eps": 0}, r"layer 1: batchnorm: eps must be > 0, got 0"),
    ({"type": "batchnorm", "eps": -1e-5}, r"layer 1: batchnorm: eps must be > 0"),
    ({"type": "leaky_relu", "alpha": -1}, r"layer 1: leaky_relu: alpha must be a number >= 0"),
    ({"type": "elu", "alpha": 0}, r"layer 1: elu: alpha must be a number > 0"),
    ({"type": "gelu", "approximate": "erf"}, r"layer 1: gelu: approximate must be one of 'tanh', 'none'"),
])
def test_bad_layer_fields_name_the_layer_index_and_field(layer, message):
    arch = {"input_shape": [4], "layers": [{"type": "linear", "in_features": 4, "out_features": 3}, layer]}
    with pytest.raises(ConfigError, match=message):
        build(arch)


def test_batchnorm_that_does_not_match_its_input_names_the_layer():
    arch = {"input_shape": [4], "layers": [{"type": "linear", "in_features": 4, "out_features": 3},
                                           {"type": "batchnorm", "size": 5}]}
    with pytest.raises(ShapeError, match=r"layer 1: BatchNorm\(size=5.*batchnorm size 5 does not match the input's 3"):
        build(arch)


# -- evaluation mode everywhere, conversions ---------------------------------------
def test_evaluate_and_predict_run_in_eval_mode(rng):
    """evaluate (also the validation during training) and predict_proba
    neither update BatchNorm's running statistics nor drop units: the same
    input gives the same output twice, and the buffers stay as they are."""
    from numpynets.train.evaluate import evaluate

    model = build(_bn_cnn(), seed=0)
    model.forward(rng.standard_normal((5, 1, 8, 8)), training=True)
    before = {n: b.copy() for n, b in model.named_buffers()}
    state = model.rng_state()
    x = rng.standard_normal((20, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 20)
    a, b = evaluate(model, x, y), evaluate(model, x, y)
    assert (a["loss"], a["accuracy"]) == (b["loss"], b["accuracy"])
    np.testing.assert_array_equal(model.predict_proba(x), model.predict_proba(x))
    for n, buf in model.named_buffers():
        np.testing.assert_array_equal(buf, before[n])
    assert model.rng_state() == state                            # nothing drew from the generator


def test_conversion_refuses_batchnorm_and_ignores_dropout(tmp_path):
    from numpynets.io.original_models import NotRepresentable, read_original, write_original
    from numpynets.models import cnn, mlp

    with pytest.raises(NotRepresentable, match="cannot hold BatchNorm"):
        write_original(tmp_path / "c.bin", build(cnn.architecture(batchnorm=True)))
    assert not (tmp_path / "c.bin").exists()
    with_dropout = build(mlp.architecture(dropout=0.3), seed=1)
    write_original(tmp_path / "m.bin", with_dropout)
    back, meta = read_original(tmp_path / "m.bin")
    assert meta["original"]["kind"] == "mlp"
    x = np.random.default_rng(0).standard_normal((3, 784)).astype(np.float32)
    np.testing.assert_allclose(back.forward(x), with_dropout.forward(x), rtol=1e-5, atol=1e-6)
    cnn_dropout = build(cnn.architecture(dropout=0.2), seed=1)
    write_original(tmp_path / "cnn.bin", cnn_dropout)
    assert read_original(tmp_path / "cnn.bin")[1]["original"]["kind"] == "cnn"


def test_builtin_model_options():
    from numpynets.models import cnn, mlp

    kinds = [l["type"] for l in mlp.architecture(dropout=0.2, activation="silu")["layers"]]
    assert kinds == ["linear", "swish", "dropout", "linear"]
    c = cnn.architecture(batchnorm=True, activation={"type": "leaky_relu", "alpha": 0.1})
    assert [l["type"] for l in c["layers"]] == ["conv2d", "batchnorm", "leaky_relu", "maxpool2d", "flatten", "linear"]
    assert c["layers"][0]["bias"] is False and c["layers"][2]["alpha"] == 0.1
    assert mlp.architecture() == {**mlp.architecture(dropout=0.0, activation="relu")}
    assert [l["type"] for l in cnn.architecture()["layers"]] == ["conv2d", "relu", "maxpool2d", "flatten", "linear"]


def test_schedule_config_applies_its_activation_and_flags_win(tmp_path):
    from pathlib import Path

    from numpynets.train.run import TrainOptions, resolve

    demo = str(Path(__file__).resolve().parent.parent / "configs" / "activations_demo.json")
    arch, recipe, _, _ = resolve(TrainOptions(model="mlp", schedule_config=demo))
    assert arch["layers"][1] == {"type": "leaky_relu", "alpha": 0.01}
    assert recipe.schedule["kind"] == "step" and recipe.schedule["step_size"] == 3
    arch, _, _, _ = resolve(TrainOptions(model="cnn", schedule_config=demo, arch_options={"activation": "elu"}))
    assert arch["layers"][1] == {"type": "elu", "alpha": 1.0}
    orig = str(Path(__file__).resolve().parent.parent / "configs" / "original" / "mlp_simple.json")
    arch, _, _, _ = resolve(TrainOptions(model=orig, schedule_config=demo))
    assert [l["type"] for l in arch["layers"]] == ["linear", "leaky_relu", "linear"]
    # --warmup on top of the file keeps the file's activation
    from numpynets.cli.train import options_from_args
    from numpynets.cli import build_parser
    args = build_parser().parse_args(["train", "mlp", "--schedule-config", demo, "--warmup", "1"])
    arch, recipe, _, _ = resolve(options_from_args(args))
    assert arch["layers"][1]["type"] == "leaky_relu" and recipe.schedule["warmup_epochs"] == 1
    assert recipe.schedule["kind"] == "step"


@pytest.mark.parametrize("argv", [["cnn", "--batchnorm", "--dropout", "0.1"],
                                  ["mlp", "--dropout", "0.2", "--activation", "gelu", "--batchnorm"]])
def test_train_then_evaluate_rebuilds_the_same_model(mnist_path, tmp_path, capsys, argv):
    """A real run with BatchNorm and Dropout: the file holds the running
    statistics, and evaluate (eval mode, from the file alone) reproduces the
    run's test accuracy exactly."""
    from numpynets.cli import main

    run = tmp_path / "run"
    assert main(["train", *argv, "--limit", "1500", "--epochs", "1", "--seed", "1", "--threads", "1",
                 "--no-progress", "--data-dir", str(mnist_path), "--out", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["test_accuracy"] > 60
    assert main(["evaluate", str(run / "model.safetensors"), "--data-dir", str(mnist_path), "--json",
                 "--threads", "1"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["test_accuracy"] == pytest.approx(result["test_accuracy"], abs=1e-9)
    model, _ = load_native(run / "model.safetensors")
    bn = next(l for l in model.layers if l.kind == "batchnorm")
    assert np.any(bn.buffers["running_var"] != 1)                  # trained statistics, not the initial ones


def test_buffers_and_generator_inside_a_residual_block(rng, tmp_path):
    arch = {"input_shape": [6], "layers": [
        {"type": "linear", "in_features": 6, "out_features": 8},
        {"type": "residual", "layers": [{"type": "batchnorm"}, {"type": "dropout", "p": 0.5},
                                        {"type": "linear", "in_features": 8, "out_features": 8}]},
        {"type": "linear", "in_features": 8, "out_features": 3}]}
    model = build(arch, seed=0)
    assert [n for n, _ in model.named_buffers()] == ["1.0.running_mean", "1.0.running_var"]
    assert model.layers[1].sublayers[1].rng is model.rng
    model.forward(rng.standard_normal((10, 6)), training=True)
    save_model(tmp_path / "r.safetensors", model)
    back, _ = load_native(tmp_path / "r.safetensors")
    np.testing.assert_array_equal(back.layers[1].sublayers[0].buffers["running_var"],
                                  model.layers[1].sublayers[0].buffers["running_var"])
    x = rng.standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(x), model.forward(x))


def test_training_with_dropout_and_batchnorm_is_bit_identical_for_the_same_seed():
    """Two whole fits from one seed: the same weights, buffers and losses,
    bit for bit; another seed differs (the masks come from the seed)."""
    from numpynets.data.mnist import Split
    from numpynets.models import mlp
    from numpynets.models.recipes import Recipe
    from numpynets.train.fit import fit, seeds

    data_rng = np.random.default_rng(0)
    train = Split(data_rng.random((96, 784), dtype=np.float32), data_rng.integers(0, 10, 96))
    recipe = Recipe(epochs=2, batch_size=32, lr=0.05, optimizer="sgd", momentum=0.9)

    def run(seed):
        init_rng, shuffle_rng = seeds(seed)
        model = build(mlp.architecture(hidden=32, dropout=0.3, batchnorm=True), seed=init_rng)
        res = fit(model, train, None, recipe, shuffle_rng, progress=False, log=lambda *a: None)
        return model, [r["train_loss"] for r in res.history]

    (a, la), (b, lb), (c, lc) = run(4), run(4), run(5)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    for (_, x), (_, y) in zip(a.named_buffers(), b.named_buffers()):
        np.testing.assert_array_equal(x, y)
    assert la == lb and la != lc
