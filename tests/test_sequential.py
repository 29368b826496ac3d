"""The model container: flat buffers, parameter order, whole-model gradients."""

import numpy as np
import pytest

from numpynets.errors import ConfigError, ShapeError
from numpynets.models import build, build_architecture, get_model
from numpynets.nn.gradcheck import numerical_gradient, rel_error


def small_arch(loss="softmax_cross_entropy", out=4):
    return {"input_shape": [6], "loss": loss, "layers": [
        {"type": "linear", "in_features": 6, "out_features": 5}, {"type": "tanh"},
        {"type": "linear", "in_features": 5, "out_features": out}]}


def test_parameters_are_views_of_flat_buffers():
    m = build(small_arch(), seed=0)
    names = [n for n, _, _ in m.named_parameters()]
    assert names == ["0.W", "0.b", "2.W", "2.b"]
    for _, p, g in m.named_parameters():
        assert np.shares_memory(p, m.flat_params) and np.shares_memory(g, m.flat_grads)
    m.flat_params.fill(0.5)
    assert all(np.all(p == 0.5) for _, p, _ in m.named_parameters())
    assert m.num_parameters() == 6 * 5 + 5 + 5 * 4 + 4


def test_whole_model_gradient_float64(rng):
    m = build(small_arch(), seed=1).astype(np.float64)
    m.layers[0].needs_input_grad = True
    x, y = rng.standard_normal((8, 6)), rng.integers(0, 4, 8)

    def loss():
        return m.loss(m.forward(x), y)[0]

    m.zero_grad()
    _, d = m.loss(m.forward(x, training=True), y)
    m.backward(d)
    analytic = m.flat_grads.copy()
    numeric = numerical_gradient(loss, m.flat_params)
    assert rel_error(analytic, numeric) < 1e-6


def test_first_layer_skips_input_gradient(rng):
    m = build(small_arch(), seed=0)
    out = m.forward(rng.standard_normal((3, 6)).astype(np.float32), training=True)
    _, d = m.loss(out, np.array([0, 1, 2]))
    assert m.backward(d) is None


def test_layers_before_the_first_parameter_skip_input_gradients(rng):
    """Patchify has no parameters: nothing needs the patches' projection's
    input gradient either, and the parameter gradients are those of a
    backward that computes it (float64, the same model)."""
    from numpynets import nn as nnx

    m = nnx.Sequential(nnx.Patchify(2), nnx.Linear(4, 3), nnx.ReLU(), nnx.Linear(3, 2),
                       input_shape=(4, 4), dtype=np.float64, seed=0)
    assert [l.needs_input_grad for l in m.layers] == [False, False, True, True]
    x, d = rng.standard_normal((2, 4, 4)), rng.standard_normal((2, 4, 2))
    m.forward(x, training=True)
    m.zero_grad()
    assert m.backward(d) is None
    fast = m.flat_grads.copy()
    m.layers[1].needs_input_grad = True
    m.forward(x, training=True)
    m.zero_grad()
    m.backward(d)
    np.testing.assert_array_equal(m.flat_grads, fast)


def test_same_seed_same_weights_and_different_seed_differs():
    a, b, c = (build(small_arch(), seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.flat_params, b.flat_params)
    assert not np.array_equal(a.flat_params, c.flat_params)


def test_input_reshape_and_shape_error():
    m = build(build_architecture(get_model("mlp"), {}), seed=0)
    assert m.forward(np.zeros((2, 28, 28), np.float32)).shape == (2, 10)
    with pytest.raises(ShapeError, match="model input"):
        m.forward(np.zeros((2, 27, 27), np.float32))


def test_connection_mismatch_names_the_layer():
    arch = small_arch()
    arch["layers"][2]["in_features"] = 7
    with pytest.raises(ShapeError, match=r"Linear\(in_features=7.*\(5,\)"):
        build(arch)


def test_unknown_layer_type():
    arch = small_arch()
    arch["layers"][1] = {"type": "gelu2"}
    with pytest.raises(ConfigError, match="unknown layer type 'gelu2'"):
        build(arch)


def test_float32_training_stays_float32(rng):
    m = build(small_arch(), seed=0)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    out = m.forward(x, training=True)
    assert out.dtype == np.float32
    _, d = m.loss(out, np.array([0, 1, 2, 3]))
    assert d.dtype == np.float32
    # the flat gradient buffer's dtype cannot change (its views are written in
    # place), so check what can: every layer saw float32 inputs, and the
    # gradients are the float64 model's, rounded (not left at zero)
    m.zero_grad()
    m.backward(d)
    assert all(layer.x.dtype == np.float32 for layer in m.layers if hasattr(layer, "x"))
    m64 = m.astype(np.float64)
    m64.zero_grad()
    m64.backward(m64.loss(m64.forward(x.astype(np.float64), training=True), np.array([0, 1, 2, 3]))[1])
    assert np.abs(m.flat_grads).max() > 0
    np.testing.assert_allclose(m.flat_grads, m64.flat_grads, rtol=1e-4, atol=1e-6)


def test_mlp_architecture_matches_original():
    m = build(build_architecture(get_model("mlp"), {}), seed=0)
    shapes = [p.shape for _, p, _ in m.named_parameters()]
    assert shapes == [(784, 512), (512,), (512, 10), (10,)]
    assert m.num_parameters() == 407_050                      # as ORIGINAL.md 3.1


def test_architecture_too_large_for_memory_is_a_config_error():
    """A damaged model file can ask for absurd sizes: one-line error, no MemoryError traceback."""
    arch = small_arch()
    arch["layers"][0]["out_features"] = arch["layers"][2]["in_features"] = 10**14
    with pytest.raises(ConfigError, match="do not fit in memory"):
        build(arch)
