"""Normalisation layers: LayerNorm over the last axis, BatchNorm over the batch."""

from __future__ import annotations

import numpy as np

from ..checks import real, whole
from ..errors import ConfigError
from .fastsum import dot_last, sum_last, sum_leading
from .layer import Layer, register


@register("layer_norm")
class LayerNorm(Layer):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, over the last axis.

    x: (..., D) -> y: (..., D); mean and (biased) variance are taken over the
    ``D`` values of each row (each token), so the layer works the same for
    any batch size. With ``xh = (x - mean) * r``, ``r = 1/sqrt(var + eps)``,
    and ``g = dy * gamma``, the row-wise backward is

        dx = r * (g - mean(g) - xh * mean(g * xh)),

    the projection of ``g`` that removes the two directions normalisation
    cannot see (a shift of the row, and a rescaling of it). The parameters
    get ``dgamma = sum dy * xh`` and ``dbeta = sum dy`` over all rows.

    Derivation: docs/layers/layer_norm.md
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim = whole(dim, "layer_norm: dim")
        self.eps = real(eps, "layer_norm: eps", low=0, low_open=True)
        self._add_param("gamma", (self.dim,))
        self._add_param("beta", (self.dim,))
        self.params["gamma"].fill(1)
        self._xa: np.ndarray | None = None                # training buffer of forward_normalised

    def config(self):
        return {"type": self.kind, "dim": self.dim, "eps": self.eps}

    def reset_parameters(self, rng):
        self.params["gamma"].fill(1)
        self.params["beta"].fill(0)

    def output_shape(self, input_shape):
        if len(input_shape) < 1 or input_shape[-1] != self.dim:
            raise self.shape_error(input_shape, f"(..., {self.dim})")
        return tuple(input_shape)

    def forward(self, x, training=False):                 # x: (..., D)
        D = self.dim
        mu = sum_last(x) * (1.0 / D)                      # (..., 1)
        xh = x - mu                                       # (..., D) centred rows
        var = dot_last(xh, xh) * (1.0 / D)                # (..., 1)
        r = 1.0 / np.sqrt(var + self.eps)                 # (..., 1)
        xh *= r                                           # (..., D) normalised rows
        self.xh, self.r = xh, r
        y = xh * self.params["gamma"]
        y += self.params["beta"]
        return y                                          # (..., D)

    def backward(self, dy):                               # dy: (..., D)
        xh, r = self.xh, self.r
        D = self.dim
        dy2, xh2 = dy.reshape(-1, D), xh.reshape(-1, D)   # (rows, D)
        self.grads["gamma"] += np.einsum("rd,rd->d", dy2, xh2)    # (D,) sum over rows of dy * xh
        self.grads["beta"] += sum_leading(dy2)            # (D,)
        if not self.needs_input_grad:
            return None
        g = dy * self.params["gamma"]                     # (..., D) dL/dxh
        g_mean = sum_last(g) * (1.0 / D)                  # (..., 1)
        gx_mean = dot_last(g, xh) * (1.0 / D)             # (..., 1)
        g -= g_mean
        g -= xh * gx_mean
        g *= r
        return g                                          # (..., D) dx

    # -- folded into the next layer (numpynets.nn.fold) -----------------------
    def forward_normalised(self, x, training=False):      # x: (..., D)
        """The normalised rows with a column of ones after them, ``[xh | 1]``
        (rows, D+1), for a next layer that takes ``gamma`` and ``beta`` into
        its own weights (see :mod:`numpynets.nn.fold`). Four passes: the
        means (a matrix-vector product), the centring, the variances (a
        row-wise dot) and the scaling. A training forward writes into a
        buffer the layer keeps (its leading rows for a smaller batch)."""
        D = self.dim
        x2 = x.reshape(-1, D)                             # (rows, D)
        rows = x2.shape[0]
        if training:
            xa = self._xa
            if xa is None or xa.shape[0] < rows or xa.dtype != x.dtype:
                xa = self._xa = np.empty((rows, D + 1), dtype=x.dtype)
                xa[:, D] = 1
            xa = xa[:rows]
        else:
            xa = np.empty((rows, D + 1), dtype=x.dtype)
            xa[:, D] = 1
        xh = xa[:, :D]                                    # (rows, D) view
        mu = x2 @ np.full(D, 1.0 / D, dtype=x.dtype)      # (rows,) means
        np.subtract(x2, mu[:, None], out=xh)              # centred rows
        var = dot_last(xh, xh) * (1.0 / D)                # (rows, 1)
        r = 1.0 / np.sqrt(var + self.eps)                 # (rows, 1)
        # normalised rows: scaling all of xa, contiguous, and setting the ones
        # again is 2.5x faster than scaling the strided view xh
        np.multiply(xa, r, out=xa)
        xa[:, D] = 1
        self.xa, self.r, self.in_shape = xa, r, x.shape
        return xa                                         # (rows, D+1)

    def backward_normalised(self, dxh_c):                 # dxh_c: (rows, D), dL/dxh less its row means
        """dL/dx from the centred ``dxh - mean(dxh)`` the folded layer gives
        back: ``dx = r (dxh_c - xh mean(dxh_c xh))`` (the row means of
        ``xh`` are 0, so the centring leaves the last mean as it was).
        Writes into ``dxh_c``, which the folded layer made for this."""
        D = self.dim
        xh, r = self.xa[:, :D], self.r                    # (rows, D), (rows, 1)
        m = dot_last(dxh_c, xh) * (1.0 / D)               # (rows, 1) mean(dxh xh)
        dxh_c -= xh * m
        dxh_c *= r
        return dxh_c.reshape(self.in_shape)               # (..., D) dx


def _number(value, name: str, layer: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{layer}: {name} must be a number, got {value!r}")
    return float(value)


@register("batchnorm")
class BatchNorm(Layer):
    """Batch normalisation (Ioffe & Szegedy) with a learnable scale and shift.

    Over features for x: (N, D), over channels for x: (N, C, H, W): each of
    the ``size`` features (channels) has its own ``gamma``, ``beta`` and
    statistics, taken over the ``M = N`` rows (``M = N*H*W`` positions).
    Viewing x as (N, C, L) (``L = 1`` for rows, ``H*W`` for images)::

        training:  mu = mean(x),  var = mean((x - mu)^2)   (biased: / M)
                   xh = (x - mu) / sqrt(var + eps);   y = gamma * xh + beta
        eval:      xh = (x - running_mean) / sqrt(running_var + eps)

    The running statistics are buffers (``running_mean``, ``running_var``),
    updated in training with the original project's (Keras's) convention

        running = momentum * running + (1 - momentum) * batch

    (default momentum 0.9: the running value keeps 90 %). The variance that
    updates ``running_var`` is the same **biased** batch variance (/M) that
    normalises, as in the original (PyTorch uses the unbiased one, /(M-1),
    there). ``running_var`` starts at 1 and ``running_mean`` at 0, so an
    untrained model's evaluation is the identity (the original starts the
    variance at 0, which divides by sqrt(eps) until it has trained).

    Backward in training, with ``g = dy * gamma`` and ``r = 1/sqrt(var+eps)``
    (mu and var depend on every x of the feature, hence the two sums)::

        dbeta = sum dy;   dgamma = sum dy * xh
        dx = r * (g - mean(g) - xh * mean(g * xh))

    In eval mode the statistics are constants and ``dx = dy * gamma * r``.

    ``size`` may be left out of the config: it is then taken from the input
    (the features, or the channels) when the model is built.

    Derivation: docs/layers/batchnorm.md
    """

    def __init__(self, size: int | None = None, momentum: float = 0.9, eps: float = 1e-5):
        super().__init__()
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                raise ConfigError(f"batchnorm: size must be a whole number >= 1, got {size!r}")
        self.momentum = _number(momentum, "momentum", "batchnorm")
        self.eps = _number(eps, "eps", "batchnorm")
        if not 0 <= self.momentum <= 1:
            raise ConfigError(f"batchnorm: momentum must be in [0, 1], got {momentum!r}")
        if not self.eps > 0 or not np.isfinite(self.eps):
            raise ConfigError(f"batchnorm: eps must be > 0, got {eps!r}")
        self.size = None
        if size is not None:
            self._allocate(int(size))

    def _allocate(self, size: int) -> None:
        self.size = size
        self._add_param("gamma", (size,))
        self._add_param("beta", (size,))
        self.params["gamma"].fill(1)
        self.buffers = {"running_mean": np.zeros(size, np.float32), "running_var": np.ones(size, np.float32)}

    def config(self):
        return {"type": self.kind, "size": self.size, "momentum": self.momentum, "eps": self.eps}

    def reset_parameters(self, rng):
        self.params["gamma"].fill(1)
        self.params["beta"].fill(0)
        self.buffers["running_mean"].fill(0)
        self.buffers["running_var"].fill(1)

    def output_shape(self, input_shape):
        expected = f"({self.size or 'D'},) features or ({self.size or 'C'}, H, W) images"
        if len(input_shape) not in (1, 3):
            raise self.shape_error(input_shape, expected)
        if self.size is None:
            self._allocate(int(input_shape[0]))
        elif input_shape[0] != self.size:
            raise self.shape_error(input_shape, expected + f": batchnorm size {self.size} does not match "
                                   f"the input's {input_shape[0]}")
        return tuple(input_shape)

    @staticmethod
    def _as3(x):
        return x.reshape(x.shape[0], x.shape[1], -1)      # (N, C, L)

    def forward(self, x, training=False):                 # x: (N, C) or (N, C, H, W)
        x3 = self._as3(x)                                 # (N, C, L)
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not training:
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            r = (1.0 / np.sqrt(rv + self.eps)).astype(x.dtype)          # (C,)
            scale = gamma * r                                            # (C,)
            shift = beta - rm.astype(x.dtype) * scale                    # (C,)
            self.x3, self.r, self.training = x3, r, False
            return (x3 * scale[:, None] + shift[:, None]).reshape(x.shape)
        M = x3.shape[0] * x3.shape[2]
        mu = np.einsum("ncl->c", x3) * (1.0 / M)          # (C,)
        xc = x3 - mu[:, None]                             # (N, C, L) centred
        var = np.einsum("ncl,ncl->c", xc, xc) * (1.0 / M)   # (C,) biased
        r = 1.0 / np.sqrt(var + self.eps)                 # (C,)
        self.xc, self.r, self.training = xc, r, True
        m = self.momentum                                 # running = m running + (1 - m) batch
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        rm *= m
        rm += (1 - m) * mu.astype(rm.dtype)
        rv *= m
        rv += (1 - m) * var.astype(rv.dtype)
        # y = gamma xh + beta with xh = xc r: one scaled pass and one shift (xh itself is never formed)
        y = xc * (gamma * r)[:, None]
        y += beta[:, None]
        return y.reshape(x.shape)                         # same shape as x

    def backward(self, dy):                               # dy: like x
        dy3 = self._as3(dy)                               # (N, C, L)
        r = self.r
        dbeta = np.einsum("ncl->c", dy3)                  # (C,)
        if self.training:                                 # dgamma = sum dy xh = r sum dy xc
            dgamma = np.einsum("ncl,ncl->c", dy3, self.xc) * r
        else:                                             # eval: xh from the running statistics
            rm = self.buffers["running_mean"].astype(dy.dtype)
            dgamma = np.einsum("ncl,ncl->c", dy3, self.x3 - rm[:, None]) * r
        self.grads["beta"] += dbeta
        self.grads["gamma"] += dgamma
        if not self.needs_input_grad:
            return None
        gr = self.params["gamma"] * r                     # (C,) gamma / sqrt(var + eps)
        if not self.training:
            return (dy3 * gr[:, None]).reshape(dy.shape)
        M = dy3.shape[0] * dy3.shape[2]
        # dx = gamma r (dy - mean(dy) - xh mean(dy xh)), means over the M values of a feature;
        # with xh = xc r:  dx = gr dy - gr mean(dy) - xc (gr r mean(dy xh))
        dx = dy3 * gr[:, None]                            # (N, C, L)
        dx -= self.xc * (gr * r * dgamma * (1.0 / M))[:, None]
        dx -= (gr * dbeta * (1.0 / M))[:, None]
        return dx.reshape(dy.shape)


def batchnorm_train_reference(x, gamma, beta, eps, dy):
    """The slow, staged twin of BatchNorm's training forward and backward,
    in float64, straight from the chain rule (CS231n's computational graph):
    returns ``(y, dx, dgamma, dbeta, mean, biased_var)`` for x: (N, C[, H, W])."""
    x = np.asarray(x, np.float64)
    dy = np.asarray(dy, np.float64)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
    g, b = np.asarray(gamma, np.float64).reshape(shape), np.asarray(beta, np.float64).reshape(shape)
    M = x.size // x.shape[1]
    mu = x.sum(axis=axes, keepdims=True) / M
    xc = x - mu
    var = (xc ** 2).sum(axis=axes, keepdims=True) / M
    std = np.sqrt(var + eps)
    xh = xc / std
    y = g * xh + b
    dxh = dy * g
    dvar = (dxh * xc * -0.5 * std ** -3).sum(axis=axes, keepdims=True)
    dmu = (-dxh / std).sum(axis=axes, keepdims=True) + dvar * (-2 * xc).sum(axis=axes, keepdims=True) / M
    dx = dxh / std + dvar * 2 * xc / M + dmu / M
    return (y, dx, (dy * xh).sum(axis=axes), dy.sum(axis=axes), mu.reshape(-1), var.reshape(-1))
