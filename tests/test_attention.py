"""The self-attention model's layers: gradient checks, the per-query loop
twin, patch order, the sinusoidal table, the model's layout, and a short
training run on real MNIST with an accuracy floor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from numpynets.errors import ConfigError
from numpynets.models.attention import architecture
from numpynets.models.registry import build, build_architecture, get_model, get_recipe
from numpynets.nn.attention import SelfAttention, attention_reference, attention_reference_backward
from numpynets.nn.gradcheck import check_layer, numerical_gradient, rel_error
from numpynets.nn.normalization import LayerNorm
from numpynets.nn.residual import Residual
from numpynets.nn.tokens import (MeanPool, Patchify, PositionEmbedding, patchify, patchify_reference,
                                 sinusoidal_table, unpatchify)

TOL = 1e-6


def randomised(layer, rng, scale=0.5):
    """A layer with random (not initial: biases 0, gamma 1) parameters, so
    every term of the backward pass is exercised."""
    layer.reset_parameters(rng)
    for p in layer.params.values():
        p += scale * rng.standard_normal(p.shape).astype(p.dtype)
    return layer


# -- patches and positions ------------------------------------------------

def test_patchify_order_is_the_originals():
    # pixel value = its flat index, so each token element names the pixel it holds
    x = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28)
    t = patchify(x, 4)
    assert t.shape == (2, 49, 16)
    for n in range(2):
        for py in range(7):
            for px in range(7):
                for dy in range(4):
                    for dx in range(4):
                        # token t = py*7 + px, element j = dy*4 + dx, pixel (py*4 + dy, px*4 + dx)
                        assert t[n, py * 7 + px, dy * 4 + dx] == x[n, py * 4 + dy, px * 4 + dx]
    assert np.array_equal(t, patchify_reference(x, 4))
    assert np.array_equal(unpatchify(t, 4, 28, 28), x)


def test_patchify_non_square(rng):
    x = rng.standard_normal((3, 6, 9))
    assert np.array_equal(patchify(x, 3), patchify_reference(x, 3))
    assert np.array_equal(unpatchify(patchify(x, 3), 3, 6, 9), x)


def test_sinusoidal_table_values():
    pos = sinusoidal_table(49, 64, np.float64)
    assert pos.shape == (49, 64)
    for t in (0, 1, 7, 48):
        for d in (0, 1, 2, 3, 30, 31, 62, 63):
            angle = t / 10000 ** ((2 * (d // 2)) / 64)       # the original's formula, d/2 integer
            want = math.sin(angle) if d % 2 == 0 else math.cos(angle)
            assert pos[t, d] == pytest.approx(want, abs=1e-12)
    assert np.array_equal(pos[0, 0::2], np.zeros(32)) and np.array_equal(pos[0, 1::2], np.ones(32))
    assert pos[1, 0] == pytest.approx(math.sin(1.0)) and pos[1, 1] == pytest.approx(math.cos(1.0))
    layer = PositionEmbedding(49, 64)
    layer.reset_parameters(np.random.default_rng(0))
    assert layer.params["pos"].dtype == np.float32
    np.testing.assert_allclose(layer.params["pos"], pos, atol=1e-7)


# -- gradient checks (float64, random upstream gradient) --------------------

@pytest.mark.gradcheck("patchify")
def test_gradcheck_patchify(rng):
    errs = check_layer(Patchify(2), rng.standard_normal((2, 4, 6)), rng)
    assert errs["x"] < TOL


@pytest.mark.gradcheck("position_embedding")
def test_gradcheck_position_embedding(rng):
    errs = check_layer(randomised(PositionEmbedding(5, 6), rng), rng.standard_normal((3, 5, 6)), rng)
    assert max(errs.values()) < TOL, errs


@pytest.mark.gradcheck("mean_pool")
def test_gradcheck_mean_pool(rng):
    errs = check_layer(MeanPool(), rng.standard_normal((3, 5, 6)), rng)
    assert errs["x"] < TOL


@pytest.mark.gradcheck("layer_norm")
def test_gradcheck_layer_norm(rng):
    errs = check_layer(randomised(LayerNorm(6), rng), rng.standard_normal((3, 4, 6)), rng)
    assert max(errs.values()) < TOL, errs


def _attention_errors(errs: dict, layer) -> None:
    for name, err in errs.items():
        if name.endswith("bk"):
            # the key bias adds q_i . bk to every score of row i: softmax ignores a
            # constant per row, so its true gradient is exactly zero, and rel_error of
            # two roundoff-sized numbers is meaningless; check it is tiny instead
            continue
        assert err < TOL, (name, err)
    bk = next(g for n, g in layer.grads.items() if n.endswith("bk"))
    assert np.abs(bk).max() < 1e-12


@pytest.mark.gradcheck("self_attention")
@pytest.mark.parametrize("heads", [1, 2, 4])
def test_gradcheck_self_attention(rng, heads):
    layer = randomised(SelfAttention(8, heads=heads), rng)
    errs = check_layer(layer, rng.standard_normal((2, 5, 8)), rng)
    _attention_errors(errs, layer)


@pytest.mark.gradcheck("residual")
def test_gradcheck_residual_pre_norm_block(rng):
    block = Residual([{"type": "layer_norm", "dim": 8}, {"type": "self_attention", "dim": 8, "heads": 2}])
    randomised(block, rng)
    errs = check_layer(block, rng.standard_normal((2, 5, 8)), rng)
    _attention_errors(errs, block)


@pytest.mark.gradcheck("residual")
def test_gradcheck_residual_feed_forward(rng):
    block = Residual([{"type": "linear", "in_features": 6, "out_features": 10}, {"type": "relu"},
                      {"type": "linear", "in_features": 10, "out_features": 6}])
    randomised(block, rng)
    errs = check_layer(block, rng.standard_normal((2, 5, 6)), rng)
    assert max(errs.values()) < TOL, errs


@pytest.mark.parametrize("make", [
    lambda: PositionEmbedding(5, 8), lambda: LayerNorm(8), lambda: SelfAttention(8, heads=2), MeanPool,
    lambda: Residual([{"type": "layer_norm", "dim": 8}, {"type": "self_attention", "dim": 8, "heads": 2}]),
], ids=["position_embedding", "layer_norm", "self_attention", "mean_pool", "residual"])
def test_layer_contract(rng, make):
    """dout is left untouched; zero_grad then backward replaces stale
    gradients; a second backward adds to them."""
    layer = randomised(make(), rng)
    x = rng.standard_normal((3, 5, 8)).astype(np.float32)
    y = layer.forward(x, training=True)
    dout = rng.standard_normal(y.shape).astype(np.float32)
    keep = dout.copy()
    for g in layer.grads.values():
        g.fill(7.0)                                       # stale values
    layer.zero_grad()
    dx = layer.backward(dout)
    assert np.array_equal(dout, keep)
    assert dx.shape == x.shape and dx.dtype == np.float32
    once = {k: g.copy() for k, g in layer.grads.items()}
    layer.backward(dout)
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-5, atol=1e-6, err_msg=k)


# -- the fast attention against its per-query loop twin ---------------------

@pytest.mark.parametrize("heads", [1, 2])
def test_attention_matches_loop_reference(rng, heads):
    layer = randomised(SelfAttention(8, heads=heads), rng)
    params = {k: v.astype(np.float64) for k, v in layer.params.items()}
    for k, v in params.items():
        layer.bind(k, v, np.zeros_like(v))
    x = rng.standard_normal((3, 7, 8))
    layer.keep_attention = True
    y = layer.forward(x, training=True)
    y_ref, a_ref = attention_reference(x, params, heads)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.last_attention, a_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.last_attention.sum(axis=-1), 1.0, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    ref = attention_reference_backward(x, params, dy, heads)
    np.testing.assert_allclose(dx, ref["x"], rtol=1e-9, atol=1e-12)
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, ref[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_attention_float32_close_to_reference(rng):
    layer = randomised(SelfAttention(16, heads=1), rng)
    x = rng.standard_normal((4, 49, 16)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    y_ref, _ = attention_reference(x.astype(np.float64), {k: v.astype(np.float64) for k, v in layer.params.items()})
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_rows_that_overflow_or_underflow(rng, dtype):
    """exp of unshifted scores overflows (row 0: scores near 1000) or
    underflows (row 1: scores near -1000); those matrices are redone with
    the row-max shift, and the weights match a float64 reference, as do
    the untouched matrices."""
    from numpynets.nn.attention import softmax_parts

    N, H, T = 2, 2, 6
    q = rng.standard_normal((N, H, T, T))                  # with k = I the scores are q itself
    q[0, 1, 0] += 1000.0
    q[1, 0, 1] -= 1000.0
    k = np.broadcast_to(np.eye(T), (N, H, T, T))
    s = (q @ k.transpose(0, 1, 3, 2)).astype(dtype)       # (N, H, T, T)
    q64 = q.astype(dtype).astype(np.float64)              # the reference sees the same rounded scores
    want = np.exp(q64 - q64.max(axis=-1, keepdims=True))
    want /= want.sum(axis=-1, keepdims=True)
    z = softmax_parts(s, q.astype(dtype), k.astype(dtype))
    a = s * z
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)


def test_attention_weights_kept_only_when_asked(rng):
    layer = randomised(SelfAttention(8, heads=2), rng)
    x = rng.standard_normal((3, 5, 8)).astype(np.float32)
    layer.forward(x)
    assert layer.last_attention is None
    layer.keep_attention = True
    layer.forward(x)
    assert layer.last_attention.shape == (3, 2, 5, 5)


def test_heads_must_divide_width():
    with pytest.raises(ConfigError, match="heads"):
        SelfAttention(10, heads=3)
    with pytest.raises(ConfigError, match="heads"):
        architecture(d_model=10, heads=4)


# -- the model --------------------------------------------------------------

def test_original_architecture_layout():
    model = build(build_architecture(get_model("attention"), get_recipe(get_model("attention"), "original").arch))
    assert model.num_parameters() == 33_930                 # the original's file: 135,720 bytes of f32
    shapes = [tuple(p.shape) for _, p, _ in model.named_parameters()]
    # W_patch, b_patch, pos, W_q, b_q, W_k, b_k, W_v, b_v, W_ff1, b_ff1, W_ff2, b_ff2, W_cls, b_cls
    assert shapes == [(16, 64), (64,), (49, 64), (64, 64), (64,), (64, 64), (64,), (64, 64), (64,),
                      (64, 128), (128,), (128, 64), (64,), (64, 10), (10,)]
    names = [n for n, _, _ in model.named_parameters()]
    assert names[2:9] == ["2.pos", "4.Wq", "4.bq", "4.Wk", "4.bk", "4.Wv", "4.bv"]
    pos = dict((n, p) for n, p, _ in model.named_parameters())["2.pos"]
    np.testing.assert_allclose(pos, sinusoidal_table(49, 64), atol=1e-7)
    small = build(build_architecture(get_model("attention"),
                                     get_recipe(get_model("attention"), "original-small").arch))
    assert small.num_parameters() == 16 * 16 + 16 + 49 * 16 + 3 * (16 * 16 + 16) + 16 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10


def test_model_gradient_with_residual_and_layernorm(rng):
    """The whole model in float64 (flat buffers, Residual binding its
    sub-layers' views): backward against central differences on a sample of
    parameters from every tensor."""
    arch = architecture(d_model=8, ff_dim=12, heads=2, residual=True, layernorm=True, blocks=2)
    model = build(arch, seed=3).astype(np.float64)
    x = rng.random((3, 28, 28))
    y = rng.integers(0, 10, 3)

    def loss():
        return model.loss(model.forward(x), y)[0]

    out = model.forward(x, training=True)
    _, dout = model.loss(out, y)
    model.zero_grad()
    model.backward(dout)
    for name, p, g in model.named_parameters():
        flat_p, flat_g = p.reshape(-1), g.reshape(-1)
        idx = rng.choice(flat_p.size, size=min(4, flat_p.size), replace=False)
        for i in idx:
            view = flat_p[i:i + 1]
            num = numerical_gradient(loss, view, h=1e-5)[0]
            assert abs(num - flat_g[i]) <= 1e-6 + 1e-5 * abs(num), (name, i, num, flat_g[i])


def test_model_options_from_command_line_strings():
    arch = architecture(residual="on", layernorm="off", heads="2", d_model="16")
    kinds = [layer["type"] for layer in arch["layers"]]
    assert "residual" in kinds and "layer_norm" not in kinds
    with pytest.raises(ConfigError, match="on or off"):
        architecture(residual="maybe")


# -- a short training run on real MNIST ------------------------------------

@pytest.mark.mnist
def test_short_training_run_reaches_floor(mnist):
    """The default recipe's architecture narrowed to D=32, F=64, one block
    (AdamW, warm-up and cosine as the recipe, lr 5e-3, batch 32), one pass
    over the first 20,000 training images (about 2 s on one core), tested
    on the first 2,000 test images. Seeds 0-7 gave 85.05, 86.85, 85.40,
    85.00, 86.15, 88.15, 86.15, 86.55 %; the floor sits 3 points below the
    worst."""
    from numpynets.data.mnist import Split
    from numpynets.runtime import blas_threads
    from numpynets.train.evaluate import evaluate
    from numpynets.train.fit import fit, seeds

    spec = get_model("attention")
    recipe = get_recipe(spec, "default").with_overrides(epochs=1, lr=5e-3, batch_size=32)
    arch = build_architecture(spec, {**recipe.arch, "d_model": 32, "ff_dim": 64, "blocks": 1})
    init_rng, shuffle_rng = seeds(0)
    model = build(arch, seed=init_rng)
    train = Split(mnist.train.x[:20000], mnist.train.y[:20000])
    with blas_threads(1):
        fit(model, train, None, recipe, shuffle_rng, progress=False, log=lambda *a: None)
        acc = evaluate(model, mnist.test.x[:2000], mnist.test.y[:2000])["accuracy"]
    assert acc >= 82.0, acc
