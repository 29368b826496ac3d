"""Finite-difference gradient checks (float64, random upstream gradient) for
every layer and loss of the foundation."""

import numpy as np
import pytest

from numpynets.nn import Flatten, Linear, ReLU, Sigmoid, Tanh
from numpynets.nn.gradcheck import check_layer, numerical_gradient, rel_error
from numpynets.nn.losses import mse, softmax_cross_entropy

TOL = 1e-6


def _linear(rng, shape_in, n_out, init="xavier"):
    layer = Linear(shape_in[-1], n_out, init=init)
    layer.reset_parameters(rng)
    layer.params["b"][...] = rng.standard_normal(n_out)       # non-zero bias: checks db for real
    return layer


@pytest.mark.gradcheck("linear")
@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 6)])        # rows, and (N, T, D) tokens
def test_linear(rng, shape):
    x = rng.standard_normal(shape)
    errs = check_layer(_linear(rng, shape, 3), x, rng)
    assert set(errs) == {"x", "W", "b"}
    assert max(errs.values()) < TOL, errs


@pytest.mark.gradcheck("linear")
def test_linear_without_bias(rng):
    layer = Linear(4, 3, bias=False)
    layer.reset_parameters(rng)
    errs = check_layer(layer, rng.standard_normal((6, 4)), rng)
    assert set(errs) == {"x", "W"} and max(errs.values()) < TOL


@pytest.mark.gradcheck("relu", "sigmoid", "tanh")
@pytest.mark.parametrize("cls", [ReLU, Sigmoid, Tanh])
def test_activations(rng, cls):
    x = rng.standard_normal((6, 9)) * 3
    x[np.abs(x) < 1e-3] = 0.5                                  # keep ReLU away from its kink
    errs = check_layer(cls(), x, rng)
    assert errs["x"] < TOL, errs


@pytest.mark.gradcheck("flatten")
def test_flatten(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    layer = Flatten()
    y = layer.forward(x)
    assert y.shape == (2, 60)
    assert y[1, 1 * 20 + 2 * 5 + 3] == x[1, 1, 2, 3]            # channel-major: c*H*W + h*W + w
    assert check_layer(Flatten(), x, rng)["x"] < TOL


def test_relu_zero_has_zero_gradient():
    layer = ReLU()
    layer.forward(np.array([[-1.0, 0.0, 2.0]]))
    assert layer.backward(np.array([[5.0, 5.0, 5.0]])).tolist() == [[0.0, 0.0, 5.0]]


def test_sigmoid_is_stable_for_large_inputs():
    y = Sigmoid().forward(np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32))
    assert np.all(np.isfinite(y)) and y.dtype == np.float32
    np.testing.assert_allclose(y, [[0.0, 0.5, 1.0]])


@pytest.mark.gradcheck("softmax_cross_entropy")
def test_softmax_cross_entropy_gradient(rng):
    logits = rng.standard_normal((7, 10)) * 2
    y = rng.integers(0, 10, 7)
    _, d = softmax_cross_entropy(logits, y)
    num = numerical_gradient(lambda: softmax_cross_entropy(logits, y)[0], logits)
    assert rel_error(d, num) < TOL


def test_softmax_cross_entropy_values_and_stability():
    # two classes, logits (0, log 3): p = (1/4, 3/4); label 1 -> loss = -log(3/4)
    loss, d = softmax_cross_entropy(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert loss == pytest.approx(-np.log(0.75))
    np.testing.assert_allclose(d, [[0.25, -0.25]])
    big = np.array([[1000.0, 0.0], [0.0, 1000.0]], dtype=np.float32)
    loss, d = softmax_cross_entropy(big, np.array([0, 0]))
    assert np.isfinite(loss) and loss == pytest.approx(500.0)  # mean of 0 and 1000
    assert d.dtype == np.float32 and np.all(np.isfinite(d))


@pytest.mark.gradcheck("mse")
def test_mse_gradient(rng):
    pred, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    loss, d = mse(pred, target)
    assert loss == pytest.approx(np.mean((pred - target) ** 2))
    assert rel_error(d, numerical_gradient(lambda: mse(pred, target)[0], pred)) < TOL


def test_gradcheck_catches_a_wrong_backward(rng):
    """The checker itself must fail on a broken layer (here: dW transposed-ish)."""
    layer = _linear(rng, (4, 3), 3)
    orig = layer.backward

    def broken(dy):
        dx = orig(dy)
        layer.grads["W"] *= 1.01
        return dx

    layer.backward = broken
    assert check_layer(layer, rng.standard_normal((4, 3)), rng)["W"] > 1e-3


@pytest.mark.parametrize("make,shape", [
    (lambda rng: _linear(rng, (5, 6), 4), (5, 6)),
    (lambda rng: _linear(rng, (3, 4, 6), 4), (3, 4, 6)),               # tokens: (N, T, D)
    (lambda rng: ReLU(), (5, 6)), (lambda rng: Sigmoid(), (5, 6)), (lambda rng: Tanh(), (5, 6)),
    (lambda rng: Flatten(), (2, 3, 4, 5)),
])
def test_layer_contract_accumulates_and_keeps_dout(rng, make, shape):
    """The contract every layer shares: after zero_grad, backward REPLACES
    stale gradients (Linear marks them stale instead of writing zeros), a
    second backward ADDS to them, dx does not depend on how many times
    backward ran, and dout is never modified."""
    layer = make(rng)
    x = rng.standard_normal(shape).astype(np.float32)
    dout = rng.standard_normal(layer.forward(x, training=True).shape).astype(np.float32)
    kept = dout.copy()
    for g in layer.grads.values():
        g[...] = 123.0                                           # stale values from an earlier step
    layer.zero_grad()
    dx1 = layer.backward(dout)
    once = {k: g.copy() for k, g in layer.grads.items()}
    dx2 = layer.backward(dout)
    assert np.array_equal(dout, kept)
    np.testing.assert_array_equal(dx1, dx2)
    assert dx1.shape == x.shape and dx1.dtype == np.float32
    for k, g in layer.grads.items():
        assert np.all(np.abs(once[k]) < 100), k                  # the 123s are gone
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-6, err_msg=k)
