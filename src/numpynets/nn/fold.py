"""A LayerNorm folded into the layer that reads its output.

A LayerNorm's output ``y = xh * gamma + beta`` (``xh`` its normalised rows,
(rows, D)) is read only by the next layer. When that layer is linear in
its input, the scale and the shift move into it exactly. For a
:class:`~numpynets.nn.linear.Linear` ``z = y W + b``::

    z = (xh * gamma + beta) W + b = xh W' + b',
    W' = diag(gamma) W  (D, F),   b' = beta W + b  (F,)

(the same for the fused ``[Wq | Wk | Wv]`` of
:class:`~numpynets.nn.attention.SelfAttention`). ``W'`` and ``b'`` are
(D, F) and (F,) arrays, made per step for almost nothing, while the two
passes ``* gamma`` and ``+ beta`` over the (rows, D) activations, and in
backward ``dgamma = sum dy xh`` (a pass) and ``g = dy * gamma`` (another),
are gone. LayerNorm writes ``xh`` with a column of ones after it,
``[xh | 1]`` (rows, D+1), so that ``b'`` is one more row of the matrix and
the one GEMM ``[xh | 1] [W'; b']`` adds the bias too (no bias pass), and in
backward ``[xh | 1]^T dz = [dW'; db']`` gives the bias gradient with the
weight gradient. The chain rule through ``W'`` and ``b'``::

    dW = gamma dW' + beta (x) db'     (outer product)   db = db'
    dgamma_d = sum_f W_df dW'_df      dbeta = W db'      dxh = dz W'^T

and LayerNorm's own backward, ``dx = r (dxh - mean(dxh) - xh mean(dxh xh))``,
starts from ``dxh``. Its ``mean(dxh)`` (over the D values of a row) folds
into the same GEMM: ``dxh - mean(dxh) = dz (W' - 1 mean(W'))^T``, with the
mean over W''s D rows, so the consumer hands back the centred ``dxh``
and LayerNorm is left with ``dx = r (dxh_c - xh mean(dxh_c xh))`` (the
mean of ``xh`` over a row is 0, so centring ``dxh`` does not change the
last mean). :class:`~numpynets.nn.tokens.MeanPool` takes the affine on the
pooled (N, D) rows instead: ``mean_t(xh gamma + beta) = mean_t(xh) gamma + beta``.

A consumer says it can take a LayerNorm with ``folds_layer_norm = True``
and implements ``forward_folded(xa, shape, ln, training)`` (``xa`` the
(rows, D+1) ``[xh | 1]``, ``shape`` the LayerNorm input's shape) and
``backward_folded(dout, ln)`` (returns the centred ``dxh`` (rows, D), or
None when ``ln`` needs no input gradient, and adds ``ln``'s parameter
gradients). :func:`forward_chain` and :func:`backward_chain` run a list of
layers with every such pair folded; :class:`~numpynets.nn.sequential.Sequential`
and :class:`~numpynets.nn.residual.Residual` run their layers through them.
Each layer's own ``forward``/``backward`` stays the plain, unfolded
computation: the slow twin the folded pairs are tested against
(``ENABLED = False`` runs every chain unfolded).

Derivation: docs/layers/layer_norm.md ("Folded into the next layer").
"""

from __future__ import annotations

import numpy as np

from .normalization import LayerNorm

ENABLED = True


def folded(layers) -> list[bool]:
    """``plan[i]``: layer ``i`` is a LayerNorm folded into layer ``i + 1``."""
    plan = [False] * len(layers)
    if not ENABLED:
        return plan
    i = 0
    while i + 1 < len(layers):
        # a consumer with needs_input_grad False ends the backward there (the
        # LayerNorm and what is before it get no gradient): unfolded, as written
        if isinstance(layers[i], LayerNorm) and getattr(layers[i + 1], "folds_layer_norm", False) \
                and layers[i + 1].needs_input_grad \
                and _twinned(layers[i], "normalised") and _twinned(layers[i + 1], "folded"):
            plan[i] = True
            i += 2
        else:
            i += 1
    return plan


def _owner(cls, name: str):
    """The class in ``cls``'s MRO that defines ``name``."""
    return next((c for c in cls.__mro__ if name in c.__dict__), None)


def _twinned(layer, suffix: str) -> bool:
    """Whether ``layer``'s ``forward``/``backward`` come from the class that
    also defines its ``forward_<suffix>``/``backward_<suffix>``: a subclass
    (a user's layer built on Linear or LayerNorm) that overrides ``forward``
    or ``backward`` alone computes something the inherited folded pair does
    not know of, so it runs unfolded, as written."""
    cls = type(layer)
    return all(_owner(cls, m) is _owner(cls, f"{m}_{suffix}") for m in ("forward", "backward"))


def forward_chain(layers, x: np.ndarray, training: bool, plan: list[bool]) -> np.ndarray:
    """The layers applied in order, each folded pair of ``plan`` as one step."""
    i = 0
    while i < len(layers):
        if plan[i]:
            ln, nxt = layers[i], layers[i + 1]
            x = nxt.forward_folded(ln.forward_normalised(x, training), x.shape, ln, training)
            i += 2
        else:
            x = layers[i].forward(x, training)
            i += 1
    return x


def backward_chain(layers, d: np.ndarray, plan: list[bool]) -> tuple[np.ndarray | None, int]:
    """The backward of :func:`forward_chain`: from dL/d(output) to
    dL/d(input), or None where a layer computes no input gradient; and the
    index of the first layer whose backward ran (``layers[first:]`` were
    reached)."""
    i = len(layers) - 1
    while i >= 0 and d is not None:
        if i > 0 and plan[i - 1]:
            ln, nxt = layers[i - 1], layers[i]
            dxh = nxt.backward_folded(d, ln)              # None when ln needs no input gradient
            d = None if dxh is None else ln.backward_normalised(dxh)
            i -= 2
        else:
            d = layers[i].backward(d)
            i -= 1
    return d, i + 1


def affine_weights(W: np.ndarray, b: np.ndarray | None, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``[diag(gamma) W; beta W + b]`` (D+1, F): the matrix the folded
    GEMM ``[xh | 1] (rows, D+1)`` multiplies."""
    D, F = W.shape
    Wa = np.empty((D + 1, F), dtype=W.dtype)              # (D+1, F)
    np.multiply(W, gamma[:, None], out=Wa[:D])            # W' = diag(gamma) W
    np.matmul(beta, W, out=Wa[D])                         # b' = beta W (+ b)
    if b is not None:
        Wa[D] += b
    return Wa


def affine_backward(xa: np.ndarray, dz: np.ndarray, W: np.ndarray, Wa: np.ndarray, ln,
                    input_grad: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The folded GEMM's backward for ``z = [xh | 1] Wa`` (``xa`` (rows,
    D+1), ``dz`` (rows, F), ``W`` the unfolded (D, F) weights, ``Wa`` from
    :func:`affine_weights`): adds dL/dgamma and dL/dbeta into ``ln.grads``
    and returns ``(dW, db, dxh_c)``: the gradients of the unfolded ``W``
    and ``b``, and the centred ``dxh`` (rows, D) (None unless
    ``input_grad``)."""
    D = W.shape[0]
    gamma, beta = ln.params["gamma"], ln.params["beta"]
    dWa = (dz.T @ xa).T                                   # (D+1, F): [dW'; db'] (this order of the
                                                          # product measured 10-15 % faster)
    dWp, dbp = dWa[:D], dWa[D]
    ln.grads["gamma"] += np.einsum("df,df->d", W, dWp)    # (D,) sum_f W_df dW'_df
    ln.grads["beta"] += W @ dbp                           # (D,)
    dW = dWp * gamma[:, None]                             # (D, F) gamma dW' + beta (x) db'
    dW += np.multiply.outer(beta, dbp)
    if not input_grad:
        return dW, dbp, None
    Wp = Wa[:D]
    Wc = Wp - np.ones(D, dtype=Wp.dtype) @ Wp * (1.0 / D)   # (D, F) W' with each column's mean removed
    return dW, dbp, dz @ Wc.T                             # (rows, D) dxh - mean(dxh)
