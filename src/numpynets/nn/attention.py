"""Self-attention, batched, with a hand-written backward pass.

Dimension letters: ``N`` batch, ``T`` tokens, ``D`` width, ``H`` heads,
``E = D / H`` the width of one head.

For one head and one sample, with tokens ``x`` (T, D)::

    q = x Wq + bq,  k = x Wk + bk,  v = x Wv + bv         (T, E) each
    s = q k^T / sqrt(E)                                     (T, T) scores
    a = softmax over each row of s (over the keys)          (T, T) weights
    y = a v                                                 (T, E)

Every output token is a weighted average of the value vectors, with weights
that say how well its query matches each key. With ``H`` heads the ``D``
columns of q, k, v are cut into ``H`` groups of ``E``, each group attends on
its own, and the ``H`` outputs are laid side by side again. The original has
one head (``E = D``) and no output projection, residual or normalisation.

The backward pass runs the same lines in reverse::

    da = dy v^T,  dv = a^T dy                               (y = a v)
    ds = a * (da - sum_j da_j a_j)                          (softmax, per row)
    dq = ds k / sqrt(E),  dk = ds^T q / sqrt(E)             (s = q k^T / sqrt(E))

The softmax line: ``a_j = exp(s_j) / sum_l exp(s_l)`` has Jacobian
``da_j/ds_i = a_j (delta_ij - a_i)``, so ``ds_i = sum_j da_j a_j (delta_ij - a_i)
= a_i (da_i - sum_j da_j a_j)``.

Speed: the three projections are one GEMM over all ``N*T`` token rows
against ``[Wq | Wk | Wv]`` (D, 3D), and the scores and weighted sums are
batched matmuls over (N, H). The elementwise passes over the (N, H, T, T)
arrays cost as much as those matmuls, so there are as few as possible:

* the ``1/sqrt(E)`` is folded into the query columns of the fused matrix,
  so the scores are never rescaled;
* the softmax shifts its scores only when they leave [-32, 32] (see
  :func:`softmax_parts`), and normalises its numerators in place,
  ``a = z e`` with ``z = 1 / sum_j e_j``: one pass over the (T, T) array,
  after which the backward is the formulas above as written;
* ``r = sum_j da_j a_j = sum_j (dy . v_j) a_j = dy . y`` (FlashAttention's
  trick): when ``E < T`` it is a row-wise dot over the (T, E) output and its
  gradient instead of a pass over two (T, T) arrays. The forward keeps its
  output ``y`` for this (layers never change their input in place);
* the passes over the (T, T) arrays run on chunks of samples that fit in
  the L2 cache (``CHUNK_BYTES``), and a training step reuses the layer's
  buffers for ``qkv``, the weights and the gradients instead of
  allocating them anew.

The parameters stay separate and named as in the original (``Wq, bq, Wk, bk,
Wv, bv``, each ``[in][out]``), so its file maps onto ours in order.

:func:`attention_reference` and :func:`attention_reference_backward` are
the slow twins, one query at a time in Python loops, used only by tests.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import whole
from ..errors import ConfigError
from .fastsum import dot_last, sum_last, sum_leading
from .fold import affine_backward, affine_weights
from .init import initialise
from .layer import Layer, register

QKV = ("q", "k", "v")


@register("self_attention")
class SelfAttention(Layer):
    """Multi-head (default single-head) self-attention without an output
    projection. x: (N, T, D) -> y: (N, T, D).

    Set ``keep_attention = True`` to keep the softmax weights of the last
    forward pass in ``last_attention`` (N, H, T, T), for attention maps; it
    keeps a reference, so it costs nothing, and nothing is kept otherwise.

    Derivation: docs/layers/self_attention.md
    """

    decayed = frozenset({"Wq", "Wk", "Wv"})               # weight decay: the projections, not biases

    def __init__(self, dim: int, heads: int = 1, init: str = "xavier"):
        super().__init__()
        self.dim, self.heads, self.init = whole(dim, "self_attention: dim"), whole(heads, "self_attention: heads"), init
        if self.heads < 1 or self.dim % self.heads:
            raise ConfigError(f"self_attention: width {dim} does not split into {heads} heads; "
                              "choose a number of heads that divides the width")
        for m in QKV:
            self._add_param(f"W{m}", (self.dim, self.dim))
            self._add_param(f"b{m}", (self.dim,))
        self.keep_attention = False
        self.last_attention: np.ndarray | None = None
        self._bufs: dict | None = None                    # training buffers, see _buffers

    def config(self):
        cfg = {"type": self.kind, "dim": self.dim, "heads": self.heads, "init": self.init}
        return cfg

    def reset_parameters(self, rng):
        for m in QKV:                                     # draw order Wq, Wk, Wv, as the original
            W = self.params[f"W{m}"]
            W[...] = initialise(rng, self.init, W.shape, self.dim, self.dim, W.dtype)
            self.params[f"b{m}"].fill(0)

    def output_shape(self, input_shape):
        if len(input_shape) != 2 or input_shape[1] != self.dim:
            raise self.shape_error(input_shape, f"(T, {self.dim}) tokens")
        return tuple(input_shape)

    @property
    def scale(self) -> float:
        return 1.0 / math.sqrt(self.dim // self.heads)

    def _fused(self) -> tuple[np.ndarray, np.ndarray]:
        """[Wq/sqrt(E) | Wk | Wv] (D, 3D) and the matching bias (3D,)."""
        p, c = self.params, self.scale
        W = np.concatenate((p["Wq"] * c, p["Wk"], p["Wv"]), axis=1)   # (D, 3D)
        b = np.concatenate((p["bq"] * c, p["bk"], p["bv"]))          # (3D,)
        return W, b

    def _chunk(self, T: int, itemsize: int) -> int:
        """Samples per pass of the softmax loop: as many as keep one chunk
        of the (N, H, T, T) weights within ``CHUNK_BYTES``, so that the
        scores, their ``exp``, the row sums, the normalisation and ``a v``
        (and in backward ``da``, ``ds`` and their products) find it in the
        L2 cache instead of streaming the whole array through memory at
        every pass."""
        return max(1, CHUNK_BYTES // (self.heads * T * T * itemsize))

    def _buffers(self, N: int, T: int, dtype, c: int) -> dict:
        """Reused arrays for training steps (one allocation per run, as
        :class:`Conv2D` does): ``qkv`` (N*T, 3D), the weights ``a``
        (N, H, T, T), the gradient buffer ``dqkv`` (N, T, 3, H, E) and a
        chunk of score gradients ``ds``. Sized for the largest batch seen;
        a smaller (last) batch uses the leading part of each. ``c``: the
        samples per chunk."""
        D, H = self.dim, self.heads
        b = self._bufs
        if b is None or b["T"] != T or b["dtype"] != dtype or b["N"] < N or b["c"] != c:
            b = self._bufs = {"N": N, "T": T, "dtype": dtype, "c": c,
                              "qkv": np.empty((N * T, 3 * D), dtype), "a": np.empty((N, H, T, T), dtype),
                              "dqkv": np.empty((N, T, 3, H, D // H), dtype), "ds": np.empty((min(c, N), H, T, T), dtype)}
        return b

    def forward(self, x, training=False):                 # x: (N, T, D)
        N, T, D = x.shape
        W, b = self._fused()
        buf = self._use_buffers(N, T, x.dtype, training)
        qkv = np.matmul(x.reshape(N * T, D), W, out=None if buf is None else buf["qkv"][:N * T])
        qkv += b                                          # (N*T, 3D): all projections, one GEMM
        self.x, self.W = x.reshape(N * T, D), W
        return self._attend(qkv, N, T, x.dtype, buf)

    def backward(self, dy):                               # dy: (N, T, D)
        d2 = self._attend_backward(dy)                    # (N*T, 3D) dL/d[q' k v]
        # [q' k v] = x W + b
        self._add_grads(self.x.T @ d2, sum_leading(d2))   # (D, 3D), (3D,)
        if not self.needs_input_grad:
            return None
        return (d2 @ self.W.T).reshape(dy.shape)          # (N, T, D)

    # -- a LayerNorm folded in (numpynets.nn.fold) ------------------------------
    folds_layer_norm = True

    def forward_folded(self, xa, shape, ln, training=False):   # xa: (N*T, D+1) [xh | 1]
        """The projections of ``xh gamma + beta`` as one GEMM
        ``[xh | 1] [diag(gamma) W; beta W + b]`` with the fused ``W``, ``b``."""
        N, T, _ = shape
        W, b = self._fused()
        self.W, self.xa = W, xa
        self.Wa = affine_weights(W, b, ln.params["gamma"], ln.params["beta"])   # (D+1, 3D)
        buf = self._use_buffers(N, T, xa.dtype, training)
        qkv = np.matmul(xa, self.Wa, out=None if buf is None else buf["qkv"][:N * T])   # (N*T, 3D), biases in
        return self._attend(qkv, N, T, xa.dtype, buf)

    def backward_folded(self, dy, ln):                    # dy: (N, T, D)
        """The backward of :meth:`forward_folded`: adds this layer's and
        ``ln``'s parameter gradients; returns the centred dL/dxh (N*T, D),
        or None when ``ln`` needs no input gradient."""
        d2 = self._attend_backward(dy)                    # (N*T, 3D)
        dW, db, dxh = affine_backward(self.xa, d2, self.W, self.Wa, ln, ln.needs_input_grad)
        self._add_grads(dW, db)
        return dxh                                        # (N*T, D) centred, or None

    # -- the shared middle ------------------------------------------------------
    def _use_buffers(self, N: int, T: int, dtype, training: bool) -> dict | None:
        """The training buffers, or None (fresh arrays) for an evaluation
        forward or one that keeps its weights: neither may overwrite what a
        pending backward or a drawn map needs."""
        self._c = self._chunk(T, np.dtype(dtype).itemsize)
        return self._buffers(N, T, dtype, self._c) if training and not self.keep_attention else None

    def _attend(self, qkv, N: int, T: int, dtype, buf) -> np.ndarray:
        """From the projections ``qkv`` (N*T, 3D) (queries already /
        sqrt(E)) to the output (N, T, D); keeps what backward needs."""
        D, H = self.dim, self.heads
        E, c = D // H, self._c
        qkv5 = qkv.reshape(N, T, 3, H, E)
        q = qkv5[:, :, 0].transpose(0, 2, 1, 3)           # (N, H, T, E), already / sqrt(E)
        k = qkv5[:, :, 1].transpose(0, 2, 1, 3)           # (N, H, T, E)
        v = qkv5[:, :, 2].transpose(0, 2, 1, 3)           # (N, H, T, E)
        a = np.empty((N, H, T, T), dtype=dtype) if buf is None else buf["a"][:N]
        y = np.empty((N, T, H, E), dtype=dtype)
        y4 = y.transpose(0, 2, 1, 3)                      # (N, H, T, E) view of y
        for lo in range(0, N, c):                         # a chunk of samples at a time, in cache
            n = slice(lo, lo + c)
            s = a[n]                                      # (c, H, T, T)
            np.matmul(q[n], k[n].transpose(0, 1, 3, 2), out=s)      # scores s = q k^T / sqrt(E)
            s *= softmax_parts(s, q[n], k[n])             # a = z e: the weights, in place
            np.matmul(s, v[n], out=y4[n])                 # y = a v
        self.q, self.k, self.v, self.a, self.y, self._buf = q, k, v, a, y, buf
        if self.keep_attention:
            self.last_attention = a                       # (N, H, T, T) weights, rows sum to 1
        return y.reshape(N, T, D)                         # heads side by side

    def _attend_backward(self, dy) -> np.ndarray:         # dy: (N, T, D)
        """dL/d[q' k v] (N*T, 3D) from dL/dy."""
        q, k, v, a, buf, c = self.q, self.k, self.v, self.a, self._buf, self._c
        N, H, T, E = q.shape
        dy4 = dy.reshape(N, T, H, E).transpose(0, 2, 1, 3)          # (N, H, T, E)
        dqkv = np.empty((N, T, 3, H, E), dtype=dy.dtype) if buf is None else buf["dqkv"][:N]
        dq, dk, dv = (dqkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))   # (N, H, T, E) views
        ds_all = np.empty((min(c, N), H, T, T), dtype=dy.dtype) if buf is None else buf["ds"]
        # softmax:  ds = a (da - r),  r = sum_j da_j a_j = sum_j (dy . v_j) a_j = dy . y
        if E < T:                                         # a row-wise dot over (T, E) arrays
            r_all = dot_last(dy.reshape(N, T, H, E), self.y).transpose(0, 2, 1, 3)   # (N, H, T, 1)
        for lo in range(0, N, c):
            n = slice(lo, lo + c)
            an = a[n]                                     # (c, H, T, T)
            ds = ds_all[:an.shape[0]]
            np.matmul(dy4[n], v[n].transpose(0, 1, 3, 2), out=ds)   # da = dy v^T   (y = a v)
            np.matmul(an.transpose(0, 1, 3, 2), dy4[n], out=dv[n])  # dv = a^T dy
            ds -= r_all[n] if E < T else dot_last(ds, an)          # da - r: (T, T) pass when E >= T
            ds *= an                                      # ds = a (da - r)
            # s = q' k^T with q' = q / sqrt(E) (the scale lives in the fused Wq columns)
            np.matmul(ds, k[n], out=dq[n])                # dL/dq' = ds k
            np.matmul(ds.transpose(0, 1, 3, 2), q[n], out=dk[n])    # dk = ds^T q'
        return dqkv.reshape(N * T, 3 * H * E)             # (N*T, 3D)

    def _add_grads(self, dW, db) -> None:
        """dW (D, 3D), db (3D,) of the fused [q' k v] = x W + b into the
        separate parameters: q' = x (c Wq) + c bq, so the chain rule gives c."""
        D, g, c = self.dim, self.grads, self.scale
        g["Wq"] += c * dW[:, :D]
        g["Wk"] += dW[:, D:2 * D]
        g["Wv"] += dW[:, 2 * D:]
        g["bq"] += c * db[:D]
        g["bk"] += db[D:2 * D]
        g["bv"] += db[2 * D:]


# A row whose exponentials (after the shift, if any) sum to less than this
# lies far below the largest score; see softmax_parts.
_SMALL_ROW = 1e-20
# Scores within +-_NO_SHIFT need no shift before exp: e^32 = 7.9e13, so the
# numerators and their row sums stay far from float32's 3.4e38.
_NO_SHIFT = 32.0
# The bytes of (H, T, T) weights one pass of the softmax loop works on.
CHUNK_BYTES = 1 << 19


def softmax_parts(s: np.ndarray, q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The softmax over the last axis of the scores ``s`` (N, H, T, T), as
    numerators and row factors: ``s`` becomes ``e`` in place and the return
    value is ``z`` (N, H, T, 1), with ``softmax(s) = z * e``.

    Softmax is shift-invariant, ``softmax(s - c) = softmax(s)`` for any
    constant ``c`` per row; the shift only keeps ``exp`` and the sums after
    it finite. When every score lies within ``+-_NO_SHIFT`` (one maximum
    over the whole array tells), ``exp`` needs none: ``e <= e^32``. Otherwise
    each (T, T) matrix is shifted by its own largest score ``m`` (the classic
    shift by each row's maximum is slow in NumPy: a maximum over a short
    last axis costs twice the ``exp``)::

        e = exp(s - m) <= 1,   every matrix holds an exp(0) = 1

    Nothing overflows for any finite scores, and the layer multiplies ``e``
    by ``z`` before any product, so the weights it multiplies are at most 1
    (unshifted and unnormalised, scores of 87 overflowed ``e v`` in
    float32). A row far below the largest score has a tiny sum; below
    ``_SMALL_ROW`` its factor ``z = 1 / sum`` could overflow, and entries
    that matter relative to the row's own largest might have underflowed.
    Such matrices go back through the classic row-max shift
    (:func:`_row_max_softmax`, recomputed from ``q`` and ``k``). Above it
    ``z <= 1e20``, and every entry within 1e-7 of its row's largest is
    above 1e-27 / T, a normal float in float32 (smallest 1.2e-38). The
    result is the same softmax either way; trained models never take the
    slow path.
    """
    top = s.max()                                                   # the largest score of all
    if not -_NO_SHIFT <= top <= _NO_SHIFT:                          # (NaN too)
        s -= s.max(axis=(2, 3), keepdims=True)                      # (N, H, 1, 1) each matrix's max
    np.exp(s, out=s)                                                # (N, H, T, T) numerators
    total = np.matmul(s, np.ones(s.shape[-1], dtype=s.dtype))[..., None]   # (N, H, T, 1) row sums
    if not total.min() >= _SMALL_ROW:                               # (NaN too)
        bad = ~(total >= _SMALL_ROW)
        n, h = np.nonzero(bad.any(axis=(2, 3)))                     # the matrices to redo
        s[n, h], total[n, h] = _row_max_softmax(q[n, h], k[n, h])
    return np.divide(1.0, total, out=total)                         # (N, H, T, 1)


def _row_max_softmax(q: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fallback: numerators shifted by each row's own maximum, and
    their row sums, for M matrices: q, k (M, T, E) -> e (M, T, T), sums
    (M, T, 1). Each row's largest numerator is exp(0) = 1, so its sum lies
    in [1, T]."""
    e = q @ k.transpose(0, 2, 1)                                    # (M, T, T) scores
    e -= e.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    return e, sum_last(e)


# -- the slow twins, for tests --------------------------------------------

def attention_reference(x, params: dict, heads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Self-attention one sample, one head and one query at a time.

    Returns ``(y, a)``: y (N, T, D), weights a (N, H, T, T). ``params`` holds
    ``Wq, bq, Wk, bk, Wv, bv`` as the layer's.
    """
    N, T, D = x.shape
    E = D // heads
    y = np.zeros((N, T, D), dtype=np.float64)
    a = np.zeros((N, heads, T, T), dtype=np.float64)
    for n in range(N):
        for h in range(heads):
            cols = slice(h * E, (h + 1) * E)
            q = x[n] @ params["Wq"][:, cols] + params["bq"][cols]       # (T, E)
            k = x[n] @ params["Wk"][:, cols] + params["bk"][cols]
            v = x[n] @ params["Wv"][:, cols] + params["bv"][cols]
            for i in range(T):
                scores = [float(np.dot(q[i], k[j])) / math.sqrt(E) for j in range(T)]
                top = max(scores)
                e = [math.exp(s - top) for s in scores]
                total = sum(e)
                for j in range(T):
                    a[n, h, i, j] = e[j] / total
                    y[n, i, cols] += a[n, h, i, j] * v[j]
    return y, a


def attention_reference_backward(x, params: dict, dy, heads: int = 1) -> dict:
    """Gradients of ``sum(dy * y)`` one query at a time: ``{"x": dx, "Wq": ..., ...}``."""
    N, T, D = x.shape
    E = D // heads
    c = 1.0 / math.sqrt(E)
    _, a = attention_reference(x, params, heads)
    grads = {name: np.zeros(p.shape) for name, p in params.items()}
    dx = np.zeros((N, T, D))
    for n in range(N):
        for h in range(heads):
            cols = slice(h * E, (h + 1) * E)
            q = x[n] @ params["Wq"][:, cols] + params["bq"][cols]
            k = x[n] @ params["Wk"][:, cols] + params["bk"][cols]
            v = x[n] @ params["Wv"][:, cols] + params["bv"][cols]
            dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
            for i in range(T):
                do = dy[n, i, cols]                                     # (E,)
                da = np.array([float(np.dot(do, v[j])) for j in range(T)])
                row = a[n, h, i]
                inner = float(np.dot(da, row))
                for j in range(T):
                    dv[j] += row[j] * do
                    ds = row[j] * (da[j] - inner)
                    dq[i] += ds * c * k[j]
                    dk[j] += ds * c * q[i]
            for m, dm in (("q", dq), ("k", dk), ("v", dv)):
                grads[f"W{m}"][:, cols] += x[n].T @ dm
                grads[f"b{m}"][cols] += dm.sum(axis=0)
                dx[n] += dm @ params[f"W{m}"][:, cols].T
    grads["x"] = dx
    return grads
