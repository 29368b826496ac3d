"""The attention softmax for any finite scores (issue 13): forward and
backward against the independent float64 loop reference at row maxima from
20 to 300 and -1000, uniform and mixed rows, 1, 2 and 4 heads; a gradient
check through the row-max fallback (and proof that it ran); and the batched
kernel against its loop twin on random shapes and head counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numpynets.nn.attention as attention
from numpynets.nn.attention import SelfAttention, attention_reference, attention_reference_backward
from numpynets.nn.gradcheck import check_layer

MAXIMA = (20.0, 50.0, 80.0, 85.0, 87.0, 88.5, 95.0, 100.0, 300.0, -1000.0)


def scored(rng, row_max: np.ndarray, heads: int, E: int = 4, spread: float = 1.5):
    """Parameters and input (float64) of a ``SelfAttention(heads * E, heads)``
    whose scores in sample n, head h, row i have the largest value
    ``row_max[n, h, i]`` exactly (up to rounding).

    In each head's E columns, the first E-2 carry random projections (scores
    spread over a few units), column E-2 of x is a constant 1 that the key
    copies into its last column, and column E-1 of x holds a per-token
    offset u that the query copies (times sqrt(E), undoing the 1/sqrt(E)
    scale) into its last column: score_ij = random_ij + u_i. Then
    u_i = row_max_i - max_j random_ij. The values ignore both extra columns."""
    N, H, T = row_max.shape
    D = H * E
    x = rng.standard_normal((N, T, D))
    p = {name: np.zeros((D, D)) for name in ("Wq", "Wk")}
    p["Wv"] = rng.standard_normal((D, D))
    p.update(bq=np.zeros(D), bk=np.zeros(D), bv=rng.standard_normal(D))
    for h in range(H):
        c = h * E
        r = slice(c, c + E - 2)
        p["Wq"][r, r] = spread * rng.standard_normal((E - 2, E - 2))
        p["Wk"][r, r] = rng.standard_normal((E - 2, E - 2))
        p["Wk"][c + E - 2, c + E - 1] = 1.0                   # k_j[last] = 1
        p["Wq"][c + E - 1, c + E - 1] = math.sqrt(E)          # q_i[last] / sqrt(E) = u_i
        p["Wv"][c + E - 2:c + E, :] = 0.0                     # values ignore the constant and u
        x[:, :, c + E - 2] = 1.0
        q = x[:, :, r] @ p["Wq"][r, r]                        # (N, T, E-2)
        k = x[:, :, r] @ p["Wk"][r, r]
        s0 = q @ k.transpose(0, 2, 1) / math.sqrt(E)          # (N, T, T) the random part
        x[:, :, c + E - 1] = row_max[:, h, :] - s0.max(axis=-1)
    return x, p


def layer_with(params: dict, heads: int, dtype) -> SelfAttention:
    D = params["Wq"].shape[0]
    layer = SelfAttention(D, heads=heads)
    for name, value in params.items():
        v = value.astype(dtype)
        layer.bind(name, v, np.zeros_like(v))
    return layer


def check_against_reference(layer, x, params, heads, rng, rtol):
    """Forward, weights and every gradient of ``layer`` on ``x`` against the
    float64 loop reference run on the same (rounded) numbers."""
    x64 = x.astype(np.float64)
    p64 = {k: v.astype(np.float64) for k, v in layer.params.items()}
    layer.keep_attention = True
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # no overflow, even hidden
        y = layer.forward(x, training=True)
    y_ref, a_ref = attention_reference(x64, p64, heads)
    assert np.isfinite(y).all() and np.isfinite(layer.last_attention).all()
    np.testing.assert_allclose(layer.last_attention, a_ref, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(y, y_ref, rtol=rtol, atol=rtol * np.abs(y_ref).max())
    dy = rng.standard_normal(y.shape).astype(x.dtype)
    layer.zero_grad()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        dx = layer.backward(dy)
    ref = attention_reference_backward(x64, p64, dy.astype(np.float64), heads)
    for name, got in [("x", dx), *layer.grads.items()]:
        want = ref[name]
        assert np.isfinite(got).all(), name
        # bk's true gradient is exactly 0 (it shifts every score of a row by
        # q_i . bk, which softmax ignores): what is left is rounding in a sum of
        # key gradients, so it is judged on their scale (Wk's), not on its own
        scale = np.abs(ref["Wk"] if name == "bk" else want).max()
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(scale, 1.0), err_msg=name)


@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("top", MAXIMA)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_row_maxima(rng, heads, top, dtype):
    N, T = 2, 6
    x, params = scored(rng, np.full((N, heads, T), top), heads)
    layer = layer_with(params, heads, dtype)
    check_against_reference(layer, x.astype(dtype), params, heads, rng,
                            rtol=2e-3 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mixed_row_maxima(rng, heads, dtype):
    """Every row its own maximum, drawn from the list, in the same matrices:
    rows 1300 apart (300 and -1000) share a matrix."""
    N, T = 3, len(MAXIMA)
    row_max = np.stack([rng.permutation(MAXIMA) for _ in range(N * heads)]).reshape(N, heads, T)
    x, params = scored(rng, row_max, heads)
    layer = layer_with(params, heads, dtype)
    check_against_reference(layer, x.astype(dtype), params, heads, rng,
                            rtol=2e-3 if dtype == np.float32 else 1e-9)


def test_scores_of_87_average_values_of_3(rng):
    """The issue's case: every value is 3, so every output is 3 whatever
    the weights; scores of 87 used to give [inf inf inf inf]."""
    heads, N, T = 1, 2, 4
    x, params = scored(rng, np.full((N, heads, T), 87.0), heads)
    params["Wv"][:] = 0.0
    params["bv"][:] = 3.0
    layer = layer_with(params, heads, np.float32)
    y = layer.forward(x.astype(np.float32), training=True)
    np.testing.assert_allclose(y, 3.0, rtol=1e-6)
    dx = layer.backward(np.ones_like(y))
    assert np.isfinite(dx).all() and all(np.isfinite(g).all() for g in layer.grads.values())


def test_fallback_path_gradient_check(rng, monkeypatch):
    """Rows 60 apart in one matrix (their sum after the matrix's shift is
    below 1e-20) send it through the row-max fallback; that path's backward
    matches central differences in float64. (Rows 1300 apart take it too,
    tested against the reference above; here the offsets stay small enough
    for a finite difference to be accurate: a step h in Wk moves a score by
    h u_i u_j.)"""
    calls = []
    real = attention._row_max_softmax

    def spy(q, k):
        calls.append(q.shape[0])
        return real(q, k)

    monkeypatch.setattr(attention, "_row_max_softmax", spy)
    heads, N, T = 2, 2, 5
    row_max = np.array([60.0, 0.0, 8.0, -4.0, 55.0])
    x, params = scored(rng, np.broadcast_to(row_max, (N, heads, T)).copy(), heads)
    layer = layer_with(params, heads, np.float64)
    errs = check_layer(layer, x, rng, h=1e-7)
    assert calls and all(m == N * heads for m in calls), calls   # every matrix took the fallback
    for name, err in errs.items():
        if not name.endswith("bk"):                        # bk's true gradient is exactly 0
            assert err < 1e-6, (name, err)
    assert np.abs(layer.grads["bk"]).max() < 1e-8


def test_uniform_high_scores_take_the_fast_path(rng, monkeypatch):
    """Scores of 300 in every row need no fallback: the shift by each
    matrix's maximum handles them."""
    monkeypatch.setattr(attention, "_row_max_softmax", lambda q, k: pytest.fail("fallback taken"))
    x, params = scored(rng, np.full((2, 2, 5), 300.0), 2)
    y = layer_with(params, 2, np.float32).forward(x.astype(np.float32))
    assert np.isfinite(y).all()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(N=st.integers(1, 4), T=st.integers(1, 9), heads=st.integers(1, 4), E=st.integers(1, 5),
       scale=st.sampled_from([0.1, 1.0, 10.0, 60.0]), seed=st.integers(0, 2**32 - 1))
def test_batched_kernel_matches_loop_twin(N, T, heads, E, scale, seed):
    """Random shapes, head counts and score scales (scale 60 puts rows far
    apart, so some matrices take the fallback), float64."""
    rng = np.random.default_rng(seed)
    D = heads * E
    layer = SelfAttention(D, heads=heads)
    params = {k: scale ** 0.5 * rng.standard_normal(v.shape) for k, v in layer.params.items()}
    for k, v in params.items():
        layer.bind(k, v, np.zeros_like(v))
    x = rng.standard_normal((N, T, D))
    layer.keep_attention = True
    y = layer.forward(x, training=True)
    y_ref, a_ref = attention_reference(x, params, heads)
    np.testing.assert_allclose(layer.last_attention, a_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(y, y_ref, rtol=1e-9, atol=1e-9 * max(np.abs(y_ref).max(), 1.0))
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    ref = attention_reference_backward(x, params, dy, heads)
    for name, got in [("x", dx), *layer.grads.items()]:
        want = ref[name]
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8 * max(np.abs(want).max(), 1.0), err_msg=name)


def grads_against_reference(layer, x, params, heads, rng, rtol=1e-9):
    """One training forward and backward of ``layer`` on float64 ``x``
    against the loop reference."""
    y = layer.forward(x, training=True)
    y_ref, _ = attention_reference(x, params, heads)
    np.testing.assert_allclose(y, y_ref, rtol=rtol, atol=rtol * max(np.abs(y_ref).max(), 1.0))
    dy = rng.standard_normal(y.shape)
    layer.zero_grad()
    dx = layer.backward(dy)
    ref = attention_reference_backward(x, params, dy, heads)
    for name, got in [("x", dx), *layer.grads.items()]:
        want = ref[name]
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(np.abs(want).max(), 1.0), err_msg=name)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(N=st.integers(1, 7), T=st.integers(1, 8), heads=st.integers(1, 3), E=st.integers(1, 4),
       per_chunk=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_chunked_kernel_matches_loop_twin(N, T, heads, E, per_chunk, seed):
    """The softmax loop over chunks of samples (CHUNK_BYTES made small, so a
    batch takes 1 to N chunks, the last one possibly shorter) against the
    loop reference, forward and backward, with the training buffers."""
    rng = np.random.default_rng(seed)
    D = heads * E
    layer = SelfAttention(D, heads=heads)
    params = {k: rng.standard_normal(v.shape) for k, v in layer.params.items()}
    for k, v in params.items():
        layer.bind(k, v, np.zeros_like(v))
    old = attention.CHUNK_BYTES
    attention.CHUNK_BYTES = per_chunk * heads * T * T * 8          # float64: per_chunk samples a chunk
    try:
        assert layer._chunk(T, 8) == per_chunk
        grads_against_reference(layer, rng.standard_normal((N, T, D)), params, heads, rng)
    finally:
        attention.CHUNK_BYTES = old


def test_training_buffers_across_batch_sizes_and_eval_forwards(rng, monkeypatch):
    """The buffers a training step reuses: a full batch, a smaller last
    batch (the leading part of the buffers), a full batch again, each
    against the reference; an evaluation forward between a training forward
    and its backward leaves that backward's numbers alone; kept weights are
    never overwritten by the next step."""
    monkeypatch.setattr(attention, "CHUNK_BYTES", 2 * 2 * 5 * 5 * 8)   # 2 samples a chunk
    heads, T, D = 2, 5, 6
    layer = SelfAttention(D, heads=heads)
    params = {k: rng.standard_normal(v.shape) for k, v in layer.params.items()}
    for k, v in params.items():
        layer.bind(k, v, np.zeros_like(v))
    for N in (5, 3, 5):
        grads_against_reference(layer, rng.standard_normal((N, T, D)), params, heads, rng)
    x = rng.standard_normal((5, T, D))
    y = layer.forward(x, training=True)
    buffers = layer._bufs
    layer.forward(rng.standard_normal((4, T, D)))                 # evaluation: fresh arrays
    assert layer._bufs is buffers
    # the backward differentiates the last forward, as it always has: redo the training one
    grads_against_reference(layer, x, params, heads, rng)
    np.testing.assert_allclose(layer.forward(x, training=True), y, rtol=1e-12)
    layer.keep_attention = True
    layer.forward(x, training=True)
    kept = layer.last_attention
    want = kept.copy()
    layer.keep_attention = False
    for _ in range(2):                                             # the buffers are in use again
        layer.forward(rng.standard_normal((5, T, D)), training=True)
    assert layer.last_attention is kept
    np.testing.assert_array_equal(kept, want)
