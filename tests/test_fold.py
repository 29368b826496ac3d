"""A LayerNorm folded into the next layer (numpynets.nn.fold): the folded
chains against the same layers run one by one (their plain forward and
backward, ``fold.ENABLED = False``) on random shapes, in float64; float64
gradient checks of the folded pairs; and the buffers and gradient
accumulation around them."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numpynets as nn
from numpynets.nn import fold
from numpynets.nn.gradcheck import check_layer
from numpynets.models.registry import build, build_architecture, get_model, get_recipe


def randomise(model, rng):
    """Random values in every parameter (gamma away from 1, beta from 0)."""
    for _, p, _ in model.named_parameters():
        p[...] = rng.standard_normal(p.shape) * 0.5 + (1.0 if p.ndim == 1 else 0.0)
    return model


@contextlib.contextmanager
def folding(enabled: bool):
    """Folding on or off inside the block, restored after it."""
    old = fold.ENABLED
    fold.ENABLED = enabled
    try:
        yield
    finally:
        fold.ENABLED = old


def run(model, x, dout, enabled: bool):
    """Output, input gradient and flat gradients, folded or not."""
    with folding(enabled):
        out = model.forward(x, training=True)
        model.zero_grad()
        dx = model.backward(dout)
        return out.copy(), None if dx is None else dx.copy(), model.flat_grads.copy()


def chains(D: int, F: int, heads: int, bias: bool):
    """Layer lists with a LayerNorm before each kind of folding layer."""
    return {
        "linear": [nn.LayerNorm(D), nn.Linear(D, F, bias=bias)],
        "residual_ff": [nn.Residual([nn.LayerNorm(D), nn.Linear(D, F, bias=bias), nn.ReLU(), nn.Linear(F, D)])],
        "residual_attention": [nn.Residual([nn.LayerNorm(D), nn.SelfAttention(D, heads)])],
        "pool": [nn.LayerNorm(D), nn.MeanPool(), nn.Linear(D, 3)],
        "two": [nn.Linear(D, D), nn.LayerNorm(D), nn.LayerNorm(D), nn.Linear(D, F, bias=bias)],
    }


@settings(max_examples=40, deadline=None, derandomize=True)
@given(N=st.integers(1, 5), T=st.integers(1, 7), E=st.integers(1, 4), heads=st.integers(1, 3),
       F=st.integers(1, 9), bias=st.booleans(), first=st.booleans(),
       kind=st.sampled_from(["linear", "residual_ff", "residual_attention", "pool", "two"]),
       seed=st.integers(0, 2**32 - 1))
def test_folded_chain_matches_layer_by_layer(N, T, E, heads, F, bias, first, kind, seed):
    """Output, input gradient and every parameter gradient of a folded chain
    equal the unfolded one's, float64, for random shapes; ``first``: the
    chain starts the model (its first layer computes no input gradient)."""
    rng = np.random.default_rng(seed)
    D = E * heads
    layers = chains(D, F, heads, bias)[kind]
    if not first:
        layers = [nn.Linear(D, D), *layers]
    model = randomise(nn.Sequential(*layers, input_shape=(T, D), dtype=np.float64, seed=0), rng)
    x = rng.standard_normal((N, T, D))
    out_shape = (N, *model.output_shape)
    dout = rng.standard_normal(out_shape)
    assert any(fold.folded(model.layers)) or any(fold.folded(getattr(l, "sublayers", [])) for l in model.layers)
    want = run(model, x, dout, enabled=False)
    got = run(model, x, dout, enabled=True)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-11, atol=1e-11)
    assert (got[1] is None) == (want[1] is None)
    if want[1] is not None:
        np.testing.assert_allclose(got[1], want[1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-10, atol=1e-10)


def test_default_attention_model_folded_matches_unfolded(rng):
    """The default recipe's model (five LayerNorms: four folded into
    attention and feed-forward layers, one into the pooling), float64,
    every gradient of the flat buffer."""
    spec = get_model("attention")
    arch = build_architecture(spec, dict(get_recipe(spec, "default").arch))
    model = randomise(build(arch, seed=0).astype(np.float64), rng)
    x = rng.random((6, 28, 28))
    dout = rng.standard_normal((6, 10))
    want, got = run(model, x, dout, False), run(model, x, dout, True)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-9, atol=1e-11)
    # and the loss's gradient in float32 stays float32 all the way
    m32 = build(arch, seed=0)
    out = m32.forward(x.astype(np.float32), training=True)
    m32.zero_grad()
    m32.backward(m32.loss(out, np.arange(6) % 10)[1])
    assert out.dtype == np.float32
    # flat_grads is float32 by construction (a float64 gradient would be cast
    # into it silently), so look at what each layer computed and kept instead
    kept = {}
    for layer in m32.layers:
        for sub in getattr(layer, "sublayers", [layer]):
            kept.update({f"{type(sub).__name__}.{k}": v.dtype for k, v in vars(sub).items()
                         if isinstance(v, np.ndarray) and v.dtype.kind == "f"})
    assert kept and set(kept.values()) == {np.dtype(np.float32)}, kept


@pytest.mark.parametrize("sub", ["ff", "attention"])
def test_gradcheck_folded_residual_blocks(rng, sub):
    """Central differences through the folded pair (check_layer runs the
    Residual's own forward, which folds)."""
    D, T = 6, 5
    layers = ([nn.LayerNorm(D), nn.Linear(D, 7), nn.ReLU(), nn.Linear(7, D)] if sub == "ff"
              else [nn.LayerNorm(D), nn.SelfAttention(D, heads=2)])
    block = nn.Residual(layers)
    block.output_shape((T, D))
    for k, p in block.params.items():
        block.bind(k, rng.standard_normal(p.shape) * 0.5 + (1.0 if p.ndim == 1 else 0.0), np.zeros(p.shape))
    assert fold.folded(block.sublayers)[0]
    errs = check_layer(block, rng.standard_normal((3, T, D)), rng)
    for name, err in errs.items():
        if name.endswith("bk"):          # exactly 0 (softmax ignores the per-row shift q_i . bk)
            assert np.abs(block.grads[name]).max() < 1e-12
        else:
            assert err < 1e-6, (name, err)


def test_gradcheck_folded_pool(rng):
    """LayerNorm -> MeanPool -> Linear as a model; the input gradient and
    every parameter's against central differences."""
    D, T = 5, 4
    model = randomise(nn.Sequential(nn.Linear(D, D), nn.LayerNorm(D), nn.MeanPool(), nn.Linear(D, 3),
                                    input_shape=(T, D), dtype=np.float64, seed=0), rng)
    assert fold.folded(model.layers) == [False, True, False, False]
    x = rng.standard_normal((3, T, D))
    g = rng.standard_normal((3, 3))
    model.forward(x, training=True)
    model.zero_grad()
    model.backward(g)
    analytic = model.flat_grads.copy()
    loss = lambda: float(np.sum(g * model.forward(x, training=True)))        # noqa: E731
    numeric = nn.gradcheck.numerical_gradient(loss, model.flat_params)
    assert nn.gradcheck.rel_error(analytic, numeric) < 1e-7


def test_buffers_batch_sizes_accumulation_and_eval_forwards(rng):
    """The LayerNorm's training buffer across a full, a smaller and a full
    batch; an evaluation forward between a training forward and its
    backward (fresh arrays, as before, state of the last forward); two
    backward passes accumulate (a Linear's first backward after zero_grad
    overwrites its gradient: the folded one must not leave that flag set)."""
    D, T = 4, 3
    model = randomise(nn.Sequential(nn.Linear(D, D), nn.Residual([nn.LayerNorm(D), nn.Linear(D, 6), nn.ReLU(),
                                                                  nn.Linear(6, D)]),
                                    nn.LayerNorm(D), nn.Linear(D, 2), input_shape=(T, D), dtype=np.float64,
                                    seed=0), rng)
    for N in (5, 2, 5):
        x, dout = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, 2))
        want, got = run(model, x, dout, False), run(model, x, dout, True)
        for a, b in zip(got[::2], want[::2]):             # the output and every gradient
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    x1, x2 = rng.standard_normal((5, T, D)), rng.standard_normal((5, T, D))
    d1, d2 = rng.standard_normal((5, T, 2)), rng.standard_normal((5, T, 2))
    single = []
    for x, d in ((x1, d1), (x2, d2)):
        model.forward(x, training=True)
        model.zero_grad()
        model.backward(d)
        single.append(model.flat_grads.copy())
    model.zero_grad()
    for x, d in ((x1, d1), (x2, d2)):
        model.forward(x, training=True)
        model.forward(rng.standard_normal((3, T, D)))     # evaluation in between: fresh arrays
        model.forward(x, training=True)                   # the backward differentiates the last forward
        model.backward(d)
    np.testing.assert_allclose(model.flat_grads, single[0] + single[1], rtol=1e-10, atol=1e-12)
    # a folded backward, then an unfolded one on the same gradients: they add up too
    model.zero_grad()
    model.forward(x1, training=True)
    model.backward(d1)
    with folding(False):
        model.forward(x2, training=True)
        model.backward(d2)
    np.testing.assert_allclose(model.flat_grads, single[0] + single[1], rtol=1e-10, atol=1e-12)


def test_deferred_zeroing_with_folded_layers(rng):
    """``zero_grad(defer=True)`` (the training loop's) writes no zeros into
    a Linear's gradients: its folded backward must store, not add to what
    was there before, exactly as after a plain ``zero_grad``."""
    spec = get_model("attention")
    model = randomise(build(build_architecture(spec, dict(get_recipe(spec, "default").arch)), seed=0)
                      .astype(np.float64), rng)
    x, dout = rng.random((4, 28, 28)), rng.standard_normal((4, 10))
    model.forward(x, training=True)
    model.zero_grad()
    model.backward(dout)
    grads = lambda: np.concatenate([g.ravel() for _, _, g in model.named_parameters()])   # noqa: E731
    want = grads()
    model.flat_grads[...] = rng.standard_normal(model.flat_grads.shape)   # stale values everywhere
    model.forward(x, training=True)
    model.zero_grad(defer=True)
    model.backward(dout)
    np.testing.assert_array_equal(grads(), want)


def test_subclasses_that_override_forward_are_not_folded(rng):
    """A user's layer built on Linear (or LayerNorm) that overrides
    ``forward``/``backward`` but not the folded pair must run as written:
    the inherited ``forward_folded`` would silently skip its change."""
    class Doubled(nn.Linear):
        def forward(self, x, training=False):
            return 2 * super().forward(x, training)

        def backward(self, dy):
            return super().backward(2 * dy)

    class Shifted(nn.LayerNorm):
        def forward(self, x, training=False):
            return super().forward(x, training) + 1.0

        def backward(self, dy):
            return super().backward(dy)

    for ln, lin in ((nn.LayerNorm(4), Doubled(4, 2)), (Shifted(4), nn.Linear(4, 2))):
        model = randomise(nn.Sequential(nn.Linear(3, 4), ln, lin, input_shape=(3,), dtype=np.float64,
                                        seed=0), rng)
        x, dout = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
        h = lin.forward(ln.forward(model.layers[0].forward(x)))   # (5, 2) the layers as written
        want, got = run(model, x, dout, False), run(model, x, dout, True)
        np.testing.assert_allclose(want[0], h, rtol=1e-12)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
        np.testing.assert_allclose(got[2], want[2], rtol=1e-12, atol=1e-14)


def test_a_consumer_that_needs_no_input_gradient_ends_the_backward(rng):
    """``needs_input_grad = False`` on the layer after a LayerNorm (training
    only the head): its backward returns None, so the LayerNorm and the
    layers before it get no gradient, folded as unfolded."""
    model = randomise(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2), input_shape=(3,),
                                    dtype=np.float64, seed=0), rng)
    model.layers[2].needs_input_grad = False
    x, dout = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    want, got = run(model, x, dout, False), run(model, x, dout, True)
    model.zero_grad()
    with folding(False):
        model.forward(x, training=True)
        model.backward(dout)
    assert model.layers[2].grads["W"].any()                  # the head trains, nothing before it does
    assert not any(g.any() for layer in model.layers[:2] for g in layer.grads.values())
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-12, atol=1e-14)
