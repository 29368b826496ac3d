"""Finite-difference gradient checks (float64, random upstream gradient) for
every layer and loss of the foundation."""

import numpy as np
import pytest

from numpynets.nn import (ELU, GELU, BatchNorm, Dropout, Flatten, LeakyReLU, Linear, ReLU, Sigmoid, Swish,
                          Tanh)
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


# -- the layers of issue 12 --------------------------------------------------
def _away_from_kinks(x):
    """Finite differences straddling a kink (x = 0 for LeakyReLU and ELU)
    would not measure the derivative: keep |x| >= 0.05, well beyond h."""
    x = x.copy()
    x[np.abs(x) < 0.05] = 0.5
    return x


def _batchnorm(rng, size):
    layer = BatchNorm(size, momentum=0.8)
    layer.params["gamma"][...] = 1 + 0.5 * rng.standard_normal(size)   # not 1 and 0: dgamma, dbeta for real
    layer.params["beta"][...] = rng.standard_normal(size)
    return layer


def _batchnorm_eval(rng, size):
    layer = _batchnorm(rng, size)
    layer.buffers["running_mean"][...] = rng.standard_normal(size)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, size)
    return layer


def fixed_mask(layer, seed=7):
    """Dropout's mask fixed for a gradient check: every forward pass draws
    the same mask (the generator restarts), so the loss is a smooth
    function of x and the finite differences see the same network."""
    forward = layer.forward

    def same_mask_forward(x, training=False):
        layer.set_rng(np.random.default_rng(seed))
        return forward(x, training)

    layer.forward = same_mask_forward
    return layer


# (id, layer factory, input shape, training, input transform). The id starts
# with the registered type name: tests/test_layer_registry.py reads these ids
# (and the gradcheck marks of every test module) and requires a check for
# every registered type; each row also carries the gradcheck mark, so the
# conftest watcher fails a row that does not check its type.
GRADCHECK_CASES = [
    ("batchnorm-features", lambda rng: _batchnorm(rng, 5), (6, 5), True, None),
    ("batchnorm-channels", lambda rng: _batchnorm(rng, 3), (2, 3, 4, 5), True, None),
    ("batchnorm-eval-features", lambda rng: _batchnorm_eval(rng, 5), (6, 5), False, None),
    ("batchnorm-eval-channels", lambda rng: _batchnorm_eval(rng, 3), (2, 3, 2, 3), False, None),
    ("dropout-rows", lambda rng: fixed_mask(Dropout(0.3)), (6, 9), True, None),
    ("dropout-images", lambda rng: fixed_mask(Dropout(0.5)), (2, 3, 4, 4), True, None),
    ("dropout-eval", lambda rng: Dropout(0.5), (6, 9), False, None),
    ("leaky_relu", lambda rng: LeakyReLU(0.1), (6, 9), True, _away_from_kinks),
    ("elu", lambda rng: ELU(0.7), (6, 9), True, _away_from_kinks),
    ("gelu-tanh", lambda rng: GELU("tanh"), (6, 9), True, None),
    ("gelu-none", lambda rng: GELU("none"), (6, 9), True, None),
    ("swish", lambda rng: Swish(), (6, 9), True, None),
]


@pytest.mark.parametrize("make,shape,training,transform", [
    pytest.param(*c[1:], id=c[0], marks=pytest.mark.gradcheck(c[0].split("-")[0])) for c in GRADCHECK_CASES])
def test_new_layer_gradients(rng, make, shape, training, transform):
    layer = make(rng)
    x = rng.standard_normal(shape) * 2
    if transform is not None:
        x = transform(x)
    errs = check_layer(layer, x, rng, training=training)
    assert set(errs) == {"x", *layer.params}
    assert max(errs.values()) < TOL, errs


def test_dropout_check_really_drops(rng):
    """The fixed-mask check above is not a check of the identity: the mask
    zeroes about p of the units and scales the rest by 1/(1-p)."""
    layer = fixed_mask(Dropout(0.3))
    x = rng.standard_normal((40, 50))
    y = layer.forward(x, training=True)
    kept = y != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], x[kept] / 0.7)
    np.testing.assert_array_equal(layer.forward(x, training=True), y)     # the same mask every time


@pytest.mark.parametrize("make,shape", [
    (lambda rng: _batchnorm(rng, 6), (5, 6)), (lambda rng: _batchnorm(rng, 3), (2, 3, 4, 4)),
    (lambda rng: fixed_mask(Dropout(0.4)), (5, 6)), (lambda rng: LeakyReLU(0.2), (5, 6)),
    (lambda rng: ELU(), (5, 6)), (lambda rng: GELU(), (5, 6)), (lambda rng: GELU("none"), (5, 6)),
    (lambda rng: Swish(), (5, 6)),
])
def test_new_layers_keep_the_contract(rng, make, shape):
    test_layer_contract_accumulates_and_keeps_dout(rng, make, shape)
