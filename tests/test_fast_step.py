"""The training step's fast paths against their plain forms.

* ``zero_grad(defer=True)`` then ``backward``: the same gradients, bit for
  bit, as ``zero_grad()`` then ``backward`` (Linear overwrites instead of
  adding to a fill); what no backward reached, or what a failed backward
  left, is zero, and a step taken without a backward applies nothing.
* plain SGD with its learning rate folded into the loss gradient
  (``grad_scale``): the same update, up to float rounding, as the unscaled
  gradient and ``sgd_update_reference``.
* the fused softmax cross-entropy against its log_softmax twin.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numpynets.models import Recipe, build
from numpynets.nn.losses import softmax_cross_entropy, softmax_cross_entropy_reference
from numpynets.optim import SGD, Adam
from numpynets.optim.optimizers import sgd_update_reference
from numpynets.train import fit, seeds

ARCH = {"input_shape": [7], "loss": "softmax_cross_entropy", "layers": [
    {"type": "linear", "in_features": 7, "out_features": 9}, {"type": "relu"},
    {"type": "residual", "layers": [{"type": "linear", "in_features": 9, "out_features": 9}, {"type": "tanh"}]},
    {"type": "layer_norm", "dim": 9},
    {"type": "linear", "in_features": 9, "out_features": 4}]}


def batch(rng, n=6):
    return rng.standard_normal((n, 7)).astype(np.float32), rng.integers(0, 4, n)


def stale(model):
    for _, _, g in model.named_parameters():
        g[...] = 123.0                                         # values of an earlier step


def grads_after(model, x, y, defer):
    stale(model)
    _, dout = model.loss(model.forward(x, training=True), y)
    model.zero_grad(defer=defer)
    model.backward(dout)
    return model.flat_grads.copy()


def test_deferred_zero_grad_gives_the_same_gradients_bit_for_bit(rng):
    model = build(ARCH, seed=0)
    for _ in range(3):
        x, y = batch(rng)
        plain = grads_after(model, x, y, defer=False)
        deferred = grads_after(model, x, y, defer=True)
        assert not model.grads_pending
        assert np.abs(plain).max() < 100                      # the 123s are gone
        np.testing.assert_array_equal(deferred, plain)


def test_a_second_backward_after_a_deferred_zero_adds(rng):
    model = build(ARCH, seed=0)
    x, y = batch(rng)
    once = grads_after(model, x, y, defer=True)
    _, dout = model.loss(model.forward(x, training=True), y)
    model.backward(dout)
    np.testing.assert_allclose(model.flat_grads, 2 * once, rtol=1e-6)


def test_layers_the_backward_never_reached_are_zeroed(rng):
    """A middle layer that computes no input gradient stops the backward:
    the layers before it keep no stale gradient."""
    model = build(ARCH, seed=0)
    model.layers[2].needs_input_grad = False                  # the residual block: nothing reaches layer 0
    x, y = batch(rng)
    deferred = grads_after(model, x, y, defer=True)
    np.testing.assert_array_equal(deferred, grads_after(model, x, y, defer=False))
    assert not model.layers[0].grads["W"].any()


def test_a_backward_cut_short_leaves_zeros(rng, monkeypatch):
    model = build(ARCH, seed=0)
    x, y = batch(rng)
    stale(model)
    _, dout = model.loss(model.forward(x, training=True), y)

    def broken(d):
        raise RuntimeError("boom")

    monkeypatch.setattr(model.layers[2], "backward", broken)   # after layer 4 has written its gradient
    model.zero_grad(defer=True)
    with pytest.raises(RuntimeError):
        model.backward(dout)
    assert not model.flat_grads.any() and not model.grads_pending


def test_a_step_after_a_deferred_zero_without_backward_applies_nothing(rng):
    """The deferred zeros are completed by the step of an optimizer made
    over the model (the form numpynets' training loop uses)."""
    model = build(ARCH, seed=0)
    opt = SGD(model, lr=0.5, momentum=0.9)
    x, y = batch(rng)
    grads_after(model, x, y, defer=True)
    opt.step()
    model.zero_grad(defer=True)
    assert model.grads_pending
    before, velocity = model.flat_params.copy(), opt.state[0]["velocity"].copy()
    opt = SGD(model, lr=0.5)
    opt.step(opt.grad_scale())
    np.testing.assert_array_equal(model.flat_params, before)
    assert not model.flat_grads.any() and not model.grads_pending
    assert velocity.any()


def test_grad_scale_is_the_lr_only_for_plain_sgd():
    p, g = np.zeros(3), np.zeros(3)
    assert SGD([(p, g)], 0.05).grad_scale() == 0.05
    assert SGD([(p, g)], 0.05, momentum=0.9).grad_scale() == 1.0
    assert SGD([(p, g)], 0.05, weight_decay=1e-4).grad_scale() == 1.0
    assert Adam([(p, g)], 0.05).grad_scale() == 1.0
    with pytest.raises(ValueError, match="grad_scale"):
        SGD([(p, g)], 0.05).step(0.5)
    with pytest.raises(ValueError, match="grad_scale"):
        Adam([(p, g)], 0.05).step(0.05)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 200_000), lr=st.floats(1e-4, 1.0), seed=st.integers(0, 2 ** 16))
def test_sgd_on_scaled_gradients_agrees_with_the_slow_twin(n, lr, seed):
    """p -= (lr g) against sgd_update_reference(p, g) at random sizes: the
    same bits when the scaled gradient is lr * g rounded once, as here."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    p_ref = p.copy()
    scaled = (g * np.float32(lr)).astype(np.float32)
    opt = SGD([(p, scaled)], lr)
    opt.step(opt.grad_scale())
    sgd_update_reference(p_ref, g, np.zeros_like(p), lr, 0.0, False, 0.0)
    assert p.dtype == np.float32
    np.testing.assert_array_equal(p, p_ref)


def _manual_run(recipe, x, y, seed):
    """The training loop written the plain way (zero_grad, backward, step()),
    the same shuffles as fit's."""
    init_rng, shuffle_rng = seeds(seed)
    model = build(ARCH, seed=init_rng)
    opt = SGD(model, lr=recipe.lr)
    for _ in range(recipe.epochs):
        perm = shuffle_rng.permutation(len(y))
        for s in range(0, len(y), recipe.batch_size):
            idx = perm[s:s + recipe.batch_size]
            _, dout = softmax_cross_entropy_reference(model.forward(x[idx], training=True), y[idx])
            model.zero_grad()
            model.backward(dout)
            opt.step()
    return model


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_with_the_folded_lr_follows_the_plain_loop(rng, seed):
    x = rng.standard_normal((90, 7)).astype(np.float32)
    y = rng.integers(0, 4, 90)
    recipe = Recipe(epochs=3, batch_size=16, lr=0.1, optimizer="sgd")
    init_rng, shuffle_rng = seeds(seed)
    model = build(ARCH, seed=init_rng)
    fit(model, (x, y), None, recipe, shuffle_rng, progress=False, log=None)
    plain = _manual_run(recipe, x, y, seed)
    assert model.flat_params.dtype == np.float32
    assert not np.array_equal(model.flat_params, build(ARCH, seed=seeds(seed)[0]).flat_params)
    np.testing.assert_allclose(model.flat_params, plain.flat_params, rtol=1e-4, atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 70), k=st.integers(1, 12), scale=st.floats(0.1, 60.0), seed=st.integers(0, 2 ** 16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_softmax_cross_entropy_agrees_with_its_slow_twin(n, k, scale, seed, dtype):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((n, k)) * scale).astype(dtype)
    y = rng.integers(0, k, n)
    kept = logits.copy()
    loss, d = softmax_cross_entropy(logits, y)
    loss_ref, d_ref = softmax_cross_entropy_reference(logits, y)
    np.testing.assert_array_equal(logits, kept)
    assert d.dtype == dtype and d.shape == (n, k)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(loss_ref, rel=tol, abs=tol)
    np.testing.assert_allclose(d, d_ref, rtol=tol, atol=tol / n)
    np.testing.assert_allclose(d.sum(axis=1), 0, atol=10 * tol)   # p sums to 1, the one-hot too
