"""Inverted dropout: the one layer that draws random numbers."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .layer import Layer, register


@register("dropout")
class Dropout(Layer):
    """In training, each unit is kept with probability ``1 - p`` and scaled
    by ``1 / (1 - p)`` (inverted dropout: the expected output equals the
    input, so evaluation needs no rescaling and is the identity)::

        training:  u ~ U[0, 1) per unit;  mask = (u >= p) / (1 - p);  y = x * mask
        eval:      y = x

    ``dy/dx = mask``: backward multiplies by the same mask, so the gradient
    of a dropped unit is 0. The uniform draws come from ``self.rng``, the
    model's generator (see :mod:`numpynets.nn.layer`); ``p = 0`` draws
    nothing. x: any shape -> y: same shape.

    Derivation: docs/layers/dropout.md
    """

    uses_rng = True

    def __init__(self, p: float = 0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p < 1:
            raise ConfigError(f"dropout: p must be a number in [0, 1) (the fraction of units dropped), got {p!r}")
        self.p = float(p)
        self.mask = None

    def config(self):
        return {"type": self.kind, "p": self.p}

    def forward(self, x, training=False):
        if not training or self.p == 0:
            self.mask = None
            return x
        if self.rng is None:
            raise ConfigError("dropout: no random generator; put the layer in a Sequential model "
                              "(or give it one with layer.set_rng(np.random.default_rng(seed)))")
        dt = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        u = self.rng.random(x.shape, dtype=dt)            # same shape as x, U[0, 1)
        np.multiply(u >= self.p, 1.0 / (1.0 - self.p), out=u)   # the mask: 0 or 1/(1-p)
        self.mask = u
        return x * u

    def backward(self, dout):
        if not self.needs_input_grad:
            return None
        return dout if self.mask is None else dout * self.mask
