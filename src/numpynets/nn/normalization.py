"""Layer normalisation over the last axis."""

from __future__ import annotations

import numpy as np

from ..checks import real, whole
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
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim = whole(dim, "layer_norm: dim")
        self.eps = real(eps, "layer_norm: eps", low=0, low_open=True)
        self._add_param("gamma", (self.dim,))
        self._add_param("beta", (self.dim,))
        self.params["gamma"].fill(1)

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
