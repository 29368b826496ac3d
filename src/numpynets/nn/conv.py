"""Convolution and max-pooling over images, batched, with slow twins for tests.

Dimension letters: ``N`` batch, ``C`` input channels, ``O`` output channels,
``H, W`` input height and width, ``K`` kernel size, ``S`` stride, ``P``
padding, ``Ho, Wo`` output height and width, ``L = Ho*Wo`` output positions.

Conv2D
------
A 2-D convolution (strictly, a cross-correlation, as in every deep-learning
library and in the original project)::

    y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] * xp[n, c, S*i + u, S*j + v]

where ``xp`` is ``x`` with ``P`` zeros around each image. ``im2col`` turns it
into one matrix product: the column ``cols[n, :, i*Wo + j]`` holds the
``C*K*K`` input values under the kernel at output position ``(i, j)``, so
``y[n] = W2 @ cols[n]`` with ``W2 = W.reshape(O, C*K*K)``. We add a row of
ones to ``cols`` and the bias as a column of ``W2`` so that one product also
adds the bias (and, in backward, yields ``db``: the bias is the weight of
the constant input 1).

Backward, for ``dy = dL/dy`` of shape ``(N, O, L)``::

    dW2 = sum_n dy[n] @ cols[n].T         (the ones row gives db = sum dy)
    dcols[n] = W2.T @ dy[n]               (C*K*K, L)
    dx = col2im(dcols)                    each input pixel collects the
                                          gradient of every column it fed

``col2im`` is the transpose of ``im2col``: for each of the ``K*K`` kernel
offsets ``(u, v)`` the slice ``dcols[:, :, u, v]`` (an ``(N, C, Ho, Wo)``
image) is added onto ``dxp`` shifted by ``(u, v)`` with step ``S``. That is
``K*K`` whole-array additions instead of one scattered ``np.add.at``.

Layout. The output of ``W2 @ cols[n]`` is already ``(O, Ho*Wo)``, i.e. the
``(N, O, Ho, Wo)`` layout the next layer wants, so nothing is transposed
after the product; the only copy is the im2col gather itself. The padded
input, the im2col matrix and the views between them are made once per batch
shape and reused (``Conv2D._plan``), so a training step allocates only the
output. Training and evaluation forwards keep separate buffers, so an
evaluation forward between a training forward and its backward leaves the
columns that backward needs intact.

MaxPool2D
---------
``y[n, c, i, j] = max_{u, v < K} x[n, c, S*i + u, S*j + v]``. The gradient of
a max goes to the element that attained it. With ties (frequent after a
ReLU: whole windows of zeros) we route it to ONE element, the first in
row-major window order, exactly as the original's strict ``>`` scan does;
the result is a valid subgradient and the gradient check holds wherever the
maximum is unique.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..checks import whole
from .init import initialise
from .layer import Layer, register


def _out_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Number of kernel positions along one axis: floor((size + 2P - K) / S) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _positive_int(value, name: str, layer: str, minimum: int = 1) -> int:
    return whole(value, f"{layer}: {name}", low=minimum)


# --------------------------------------------------------------------------
# Conv2D
# --------------------------------------------------------------------------

@register("conv2d")
class Conv2D(Layer):
    """2-D convolution.  x: (N, C, H, W) -> y: (N, O, Ho, Wo),
    ``Ho = (H + 2P - K) // S + 1`` (likewise ``Wo``).

    ``W`` is stored ``[out][in][ky][kx]`` (shape ``(O, C, K, K)``), the
    original project's layout; ``b`` has shape ``(O,)``. Initialisation
    ``xavier`` uses ``fan_in = C*K*K`` and ``fan_out = O*K*K``, as the
    original; ``he`` draws from N(0, 2 / fan_in).

    Derivation: docs/layers/conv2d.md
    """

    decayed = frozenset({"W"})                            # weight decay: the kernels, not the bias

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 0, init: str = "xavier", bias: bool = True):
        super().__init__()
        name = "conv2d"
        self.in_channels = _positive_int(in_channels, "in_channels", name)
        self.out_channels = _positive_int(out_channels, "out_channels", name)
        self.kernel_size = _positive_int(kernel_size, "kernel_size", name)
        self.stride = _positive_int(stride, "stride", name)
        self.padding = _positive_int(padding, "padding", name, minimum=0)
        self.init, self.bias = init, bool(bias)
        C, O, K = self.in_channels, self.out_channels, self.kernel_size
        self._add_param("W", (O, C, K, K))
        if self.bias:
            self._add_param("b", (O,))
        self._plans = {True: None, False: None}            # buffers per mode (training or not), see _plan
        self._pending = False                              # a training forward awaits its backward

    def config(self) -> dict:
        cfg = {"type": self.kind, "in_channels": self.in_channels, "out_channels": self.out_channels,
               "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
               "init": self.init}
        if not self.bias:
            cfg["bias"] = False
        return cfg

    def reset_parameters(self, rng):
        C, O, K = self.in_channels, self.out_channels, self.kernel_size
        W = self.params["W"]
        W[...] = initialise(rng, self.init, W.shape, C * K * K, O * K * K, W.dtype)
        if self.bias:
            self.params["b"].fill(0)

    def output_shape(self, input_shape):
        K, P = self.kernel_size, self.padding
        expected = f"({self.in_channels}, H, W) with H, W >= {max(K - 2 * P, 1)} (kernel_size {K}, padding {P})"
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise self.shape_error(input_shape, expected)
        _, H, W = input_shape
        S = self.stride
        if H + 2 * P < K or W + 2 * P < K:
            raise self.shape_error(input_shape, expected)
        return (self.out_channels, _out_size(H, K, S, P), _out_size(W, K, S, P))

    # -- buffers ------------------------------------------------------------
    def _plan(self, x: np.ndarray, training: bool = True) -> dict:
        """Buffers and views for inputs of ``x``'s shape and dtype, made once
        and reused while the batch shape stays the same (a training run makes
        two: the batch size and the last, smaller batch; evaluation one more):

        * ``xp``: the zero-padded input (its border stays zero; each call
          rewrites only the interior), or ``None`` without padding;
        * ``cols``: the (N, C*K*K [+1], L) im2col matrix; with a bias its last
          row is all ones, the constant input that ``b`` multiplies;
        * ``src``/``dst``: the gather as two views, every K x K window of
          ``xp`` as (N, C, K, K, Ho, Wo), and ``cols`` seen with that shape.

        Training and evaluation forwards have separate buffers: an evaluation
        forward between a training forward and its backward (a validation
        batch, a drawing being recognised) must not overwrite the columns
        the backward needs.
        """
        key = (x.shape, x.dtype)
        cached = self._plans[bool(training)]
        if cached is not None and cached["key"] == key:
            return cached
        N, C, H, W = x.shape
        K, P = self.kernel_size, self.padding
        _, Ho, Wo = self.output_shape(x.shape[1:])
        xp = np.zeros((N, C, H + 2 * P, W + 2 * P), dtype=x.dtype) if P else None
        cols = np.empty((N, C * K * K + self.bias, Ho * Wo), dtype=x.dtype)
        if self.bias:
            cols[:, -1, :] = 1
        plan = {"key": key, "xp": xp, "cols": cols, "shape": (Ho, Wo),
                "src": None if xp is None else self._windows(xp, Ho, Wo),
                "dst": cols[:, :C * K * K].reshape(N, C, K, K, Ho, Wo)}        # a view of cols
        self._plans[bool(training)] = plan
        return plan

    def _windows(self, xp: np.ndarray, Ho: int, Wo: int) -> np.ndarray:
        """Every K x K window of ``xp`` (stride S), as a view (N, C, K, K, Ho, Wo):
        element [n, c, u, v, i, j] is xp[n, c, S*i + u, S*j + v]."""
        K, S = self.kernel_size, self.stride
        win = sliding_window_view(xp, (K, K), axis=(2, 3))[:, :, ::S, ::S]  # (N, C, Ho, Wo, K, K)
        return win.transpose(0, 1, 4, 5, 2, 3)

    def _w2(self) -> np.ndarray:
        """[W | b] as one (O, C*K*K [+1]) matrix, so one product adds the bias."""
        W = self.params["W"]
        O = self.out_channels
        if not self.bias:
            return W.reshape(O, -1)                       # (O, CKK)
        W2 = np.empty((O, W[0].size + 1), dtype=W.dtype)  # (O, CKK+1)
        W2[:, :-1] = W.reshape(O, -1)
        W2[:, -1] = self.params["b"]
        return W2

    # -- forward / backward -------------------------------------------------
    def forward(self, x, training=False):
        if x.ndim != 4:
            raise self.shape_error(x.shape[1:], f"({self.in_channels}, H, W) per sample")
        plan = self._plan(x, training)                      # checks the shape on a new one
        N, P = x.shape[0], self.padding
        Ho, Wo = plan["shape"]
        if P:
            H, W = x.shape[2:]
            plan["xp"][:, :, P:P + H, P:P + W] = x          # (N, C, H+2P, W+2P)
            src = plan["src"]                               # a fixed view of the padded buffer
        else:
            src = self._windows(x, Ho, Wo)
        # the gather, the only copy: cols[n, (c,u,v), (i,j)] = xp[n, c, S*i+u, S*j+v]
        np.copyto(plan["dst"], src)
        cols = plan["cols"]                                 # (N, CKK [+1], L)
        y = np.matmul(self._w2(), cols)                     # (O, CKK+1) @ (N, CKK+1, L) -> (N, O, L)
        # backward differentiates the last training forward not yet
        # backpropagated; an evaluation forward is remembered only when there is
        # none (gradient checks of eval mode), and never touches its buffers
        if training or not self._pending:
            self.cols, self.x_shape = cols, x.shape
            self._pending = bool(training)
        return y.reshape(N, self.out_channels, Ho, Wo)      # (N, O, Ho, Wo), no copy

    def backward(self, dy):                                 # dy: (N, O, Ho, Wo)
        N, C, H, W = self.x_shape
        O, K, S, P = self.out_channels, self.kernel_size, self.stride, self.padding
        Ho, Wo = dy.shape[2:]
        cols = self.cols                                    # (N, CKK [+1], L)
        self._pending = False
        dy3 = dy.reshape(N, O, Ho * Wo)                     # (N, O, L)
        # dL/dW2[o, r] = sum_n sum_l dy[n, o, l] cols[n, r, l]; row r = CKK (ones) gives db
        dW2 = np.matmul(dy3, cols.transpose(0, 2, 1)).sum(axis=0)   # (N, O, CKK+1) -> (O, CKK+1)
        CKK = C * K * K
        self.grads["W"] += dW2[:, :CKK].reshape(O, C, K, K)
        if self.bias:
            self.grads["b"] += dW2[:, CKK]                  # (O,)
        if not self.needs_input_grad:
            return None
        # dL/dcols[n] = W2.T @ dy[n]: what each gathered value contributed
        W2 = self.params["W"].reshape(O, CKK)
        dcols = np.matmul(W2.T, dy3).reshape(N, C, K, K, Ho, Wo)     # (N, C, K, K, Ho, Wo)
        # col2im: add each kernel offset's slice back where it was gathered from
        dxp = np.zeros((N, C, H + 2 * P, W + 2 * P), dtype=dy.dtype)  # (N, C, Hp, Wp)
        for u in range(K):
            for v in range(K):
                dxp[:, :, u:u + S * (Ho - 1) + 1:S, v:v + S * (Wo - 1) + 1:S] += dcols[:, :, u, v]
        if P == 0:
            return dxp
        return dxp[:, :, P:P + H, P:P + W]                  # (N, C, H, W): the padding gets no gradient


def conv2d_reference(x, W, b, stride=1, padding=0):
    """Slow, obvious twin of :meth:`Conv2D.forward` (tests only):
    y[n, o, i, j] = b[o] + sum_{c,u,v} W[o, c, u, v] xp[n, c, S i + u, S j + v]."""
    N, C, H, Wd = x.shape
    O, _, K, _ = W.shape
    S, P = stride, padding
    xp = np.zeros((N, C, H + 2 * P, Wd + 2 * P), dtype=x.dtype)
    xp[:, :, P:P + H, P:P + Wd] = x
    Ho, Wo = _out_size(H, K, S, P), _out_size(Wd, K, S, P)
    y = np.zeros((N, O, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    total = 0.0 if b is None else b[o]
                    for c in range(C):
                        for u in range(K):
                            for v in range(K):
                                total += W[o, c, u, v] * xp[n, c, S * i + u, S * j + v]
                    y[n, o, i, j] = total
    return y


def conv2d_backward_reference(x, W, dy, stride=1, padding=0):
    """Slow twin of :meth:`Conv2D.backward` (tests only): (dx, dW, db) by
    sending each output's gradient back along every product that made it."""
    N, C, H, Wd = x.shape
    O, _, K, _ = W.shape
    S, P = stride, padding
    xp = np.zeros((N, C, H + 2 * P, Wd + 2 * P), dtype=x.dtype)
    xp[:, :, P:P + H, P:P + Wd] = x
    dxp, dW, db = np.zeros_like(xp), np.zeros_like(W), np.zeros(O, dtype=W.dtype)
    _, _, Ho, Wo = dy.shape
    for n in range(N):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    g = dy[n, o, i, j]
                    db[o] += g
                    for c in range(C):
                        for u in range(K):
                            for v in range(K):
                                dW[o, c, u, v] += g * xp[n, c, S * i + u, S * j + v]
                                dxp[n, c, S * i + u, S * j + v] += g * W[o, c, u, v]
    return dxp[:, :, P:P + H, P:P + Wd], dW, db


# --------------------------------------------------------------------------
# MaxPool2D
# --------------------------------------------------------------------------

@register("maxpool2d")
class MaxPool2D(Layer):
    """Max-pooling.  x: (N, C, H, W) -> y: (N, C, Ho, Wo),
    ``Ho = (H - K) // S + 1`` (rows and columns left over are dropped).

    ``stride`` defaults to ``kernel_size`` (non-overlapping windows). Backward
    routes each output's gradient to one input: the first maximum of its
    window in row-major order (strict ``>``, like the original).

    Derivation: docs/layers/maxpool2d.md
    """

    def __init__(self, kernel_size: int = 2, stride: int | None = None):
        super().__init__()
        self.kernel_size = _positive_int(kernel_size, "kernel_size", "maxpool2d")
        self.stride = _positive_int(self.kernel_size if stride is None else stride, "stride", "maxpool2d")

    def config(self) -> dict:
        return {"type": self.kind, "kernel_size": self.kernel_size, "stride": self.stride}

    def output_shape(self, input_shape):
        K, S = self.kernel_size, self.stride
        if len(input_shape) != 3 or input_shape[1] < K or input_shape[2] < K:
            raise self.shape_error(input_shape, f"(C, H, W) with H, W >= kernel_size {K}")
        C, H, W = input_shape
        return (C, _out_size(H, K, S), _out_size(W, K, S))

    def forward(self, x, training=False):
        if x.ndim != 4:
            raise self.shape_error(x.shape[1:], "(C, H, W) per sample")
        self.output_shape(x.shape[1:])
        self.x_shape = x.shape
        if self.kernel_size == 2 and self.stride == 2:
            return self._forward_2x2(x)
        return self._forward_general(x)

    def backward(self, dy):
        if self.kernel_size == 2 and self.stride == 2:
            return self._backward_2x2(dy)
        return self._backward_general(dy)

    # -- 2x2 windows, stride 2: four corner images --------------------------
    # Splitting H into (Ho, 2) and W into (Wo, 2) is a reshape (a view), and
    # window (i, j) is then x6[:, :, i, :, j, :]. Its four elements, in
    # row-major order, are the corners q[0,0], q[0,1], q[1,0], q[1,1].
    # A tournament finds the first maximum: the better of each row pair
    # (right only if strictly greater), then the better row (bottom only if
    # strictly greater). Strictness at every level keeps the earliest of tied
    # elements, which is what a sequential strict-'>' scan returns.
    def _forward_2x2(self, x):
        N, C, H, W = x.shape
        Ho, Wo = H // 2, W // 2
        x6 = x[:, :, :2 * Ho, :2 * Wo].reshape(N, C, Ho, 2, Wo, 2)   # view
        # one gather into corner-major order, so everything after is contiguous
        q = np.empty((2, 2, N, C, Ho, Wo), dtype=x.dtype)             # q[u, v] = x[.., 2i+u, 2j+v]
        np.copyto(q, x6.transpose(3, 5, 0, 1, 2, 4))
        self.right_top = q[0, 1] > q[0, 0]                  # (N, C, Ho, Wo) bool
        self.right_bot = q[1, 1] > q[1, 0]
        top = np.maximum(q[0, 0], q[0, 1])
        bot = np.maximum(q[1, 0], q[1, 1])
        self.bottom = bot > top
        return np.maximum(top, bot)                         # (N, C, Ho, Wo)

    def _backward_2x2(self, dy):                            # dy: (N, C, Ho, Wo)
        N, C, H, W = self.x_shape
        Ho, Wo = dy.shape[2:]
        full = H == 2 * Ho and W == 2 * Wo
        dx = (np.empty if full else np.zeros)((N, C, H, W), dtype=dy.dtype)
        dx6 = dx[:, :, :2 * Ho, :2 * Wo].reshape(N, C, Ho, 2, Wo, 2)  # view: writes land in dx
        top = ~self.bottom
        rt, rb = self.right_top, self.right_bot
        # the winner's corner gets dy, the other three 0
        np.multiply(dy, top & ~rt, out=dx6[:, :, :, 0, :, 0])
        np.multiply(dy, top & rt, out=dx6[:, :, :, 0, :, 1])
        np.multiply(dy, self.bottom & ~rb, out=dx6[:, :, :, 1, :, 0])
        np.multiply(dy, self.bottom & rb, out=dx6[:, :, :, 1, :, 1])
        return dx

    # -- any kernel and stride: a strict-'>' scan over the K*K offsets -------
    def _forward_general(self, x):
        K, S = self.kernel_size, self.stride
        win = sliding_window_view(x, (K, K), axis=(2, 3))[:, :, ::S, ::S]   # (N, C, Ho, Wo, K, K) view
        best = win[..., 0, 0].copy()                        # (N, C, Ho, Wo)
        arg = np.zeros(best.shape, dtype=np.int32)          # window offset u*K + v of the maximum
        for r in range(1, K * K):
            cand = win[..., r // K, r % K]
            better = cand > best                            # strict: ties keep the earlier one
            np.copyto(best, cand, where=better)
            arg[better] = r
        self.arg = arg
        return best

    def _backward_general(self, dy):
        N, C, H, W = self.x_shape
        K, S = self.kernel_size, self.stride
        Ho, Wo = dy.shape[2:]
        dx = np.zeros((N, C, H, W), dtype=dy.dtype)
        zero = dy.dtype.type(0)
        for r in range(K * K):                              # overlapping windows (K > S) add up
            u, v = divmod(r, K)
            dx[:, :, u:u + S * (Ho - 1) + 1:S, v:v + S * (Wo - 1) + 1:S] += np.where(self.arg == r, dy, zero)
        return dx


def maxpool2d_reference(x, kernel_size=2, stride=None):
    """Slow twin of :meth:`MaxPool2D.forward` and its routing (tests only):
    returns (y, dx_of(dy)), scanning each window in row-major order and
    keeping the first strict maximum, as the original does."""
    K = kernel_size
    S = K if stride is None else stride
    N, C, H, W = x.shape
    Ho, Wo = _out_size(H, K, S), _out_size(W, K, S)
    y = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    where = np.zeros((N, C, Ho, Wo, 2), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    best, at = x[n, c, S * i, S * j], (S * i, S * j)
                    for u in range(K):
                        for v in range(K):
                            val = x[n, c, S * i + u, S * j + v]
                            if val > best:
                                best, at = val, (S * i + u, S * j + v)
                    y[n, c, i, j] = best
                    where[n, c, i, j] = at

    def backward(dy):
        dx = np.zeros_like(x)
        for n in range(N):
            for c in range(C):
                for i in range(Ho):
                    for j in range(Wo):
                        h, w = where[n, c, i, j]
                        dx[n, c, h, w] += dy[n, c, i, j]
        return dx

    return y, backward
