"""Elementwise activations. Each keeps what its derivative needs."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from .layer import Layer, register
from .special import erf


@register("relu")
class ReLU(Layer):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0 (0 at x = 0, as the original).

    Derivation: docs/layers/relu.md
    """

    def forward(self, x, training=False):
        y = np.maximum(x, 0)
        self.mask = y > 0                                 # same shape as x, bool
        return y

    def backward(self, dout):
        return dout * self.mask


@register("sigmoid")
class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x));  dy/dx = y (1 - y), so keep y.

    Computed as (1 + tanh(x/2)) / 2, the same function: tanh never overflows,
    so no branch on the sign of x is needed (3 array operations: this layer
    runs 8 million times in the original XOR recipe).

    Derivation: docs/layers/sigmoid.md
    """

    def forward(self, x, training=False):
        y = np.tanh(x * 0.5)
        y += 1
        y *= 0.5
        self.y = y
        return y

    def backward(self, dout):
        y = self.y
        return dout * y * (1 - y)


@register("tanh")
class Tanh(Layer):
    """y = tanh(x);  dy/dx = 1 - y^2.

    Derivation: docs/layers/tanh.md
    """

    def forward(self, x, training=False):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dout):
        return dout * (1 - self.y * self.y)


@register("flatten")
class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in channel-major order (index c*H*W + h*W + w),
    the order the original CNN uses for its fully connected weights.

    Derivation: docs/layers/flatten.md
    """

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        self.in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.in_shape)


def _alpha(value, layer: str, positive: bool) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if not ok or not np.isfinite(value) or (value <= 0 if positive else value < 0):
        raise ConfigError(f"{layer}: alpha must be a number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


@register("leaky_relu")
class LeakyReLU(Layer):
    """y = x for x > 0, alpha x otherwise;  dy/dx = 1 or alpha (alpha at 0).

    Derivation: docs/layers/leaky_relu.md
    """

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        self.alpha = _alpha(alpha, "leaky_relu", positive=False)

    def config(self):
        return {"type": self.kind, "alpha": self.alpha}

    def forward(self, x, training=False):
        self.pos = x > 0                                  # same shape as x, bool
        return np.where(self.pos, x, x * self.alpha)

    def backward(self, dout):
        return np.where(self.pos, dout, dout * self.alpha)


@register("elu")
class ELU(Layer):
    """y = x for x > 0, alpha (exp(x) - 1) otherwise (Clevert et al.);
    dy/dx = 1, or alpha exp(x) = y + alpha for x <= 0, so keep y.

    Derivation: docs/layers/elu.md
    """

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = _alpha(alpha, "elu", positive=True)

    def config(self):
        return {"type": self.kind, "alpha": self.alpha}

    def forward(self, x, training=False):
        self.pos = x > 0
        neg = np.expm1(np.minimum(x, 0))                  # exp(x) - 1, never overflows
        neg *= self.alpha
        self.y = np.where(self.pos, x, neg)
        return self.y

    def backward(self, dout):
        return np.where(self.pos, dout, dout * (self.y + self.alpha))


_GELU_C = math.sqrt(2.0 / math.pi)                        # the original rounds it to 0.7978846
_GELU_A = 0.044715
GELU_FORMS = ("tanh", "none")


@register("gelu")
class GELU(Layer):
    """The Gaussian error linear unit (Hendrycks & Gimpel), y = x Phi(x).

    ``approximate="tanh"`` (the original's form, the default), with
    ``u = c (x + a x^3)``, ``c = sqrt(2/pi)``, ``a = 0.044715``::

        y = x (1 + tanh u) / 2
        dy/dx = (1 + tanh u) / 2 + x (1 - tanh^2 u) c (1 + 3 a x^2) / 2

    ``approximate="none"``: the exact ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``::

        dy/dx = Phi(x) + x phi(x),   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

    Derivation: docs/layers/gelu.md
    """

    def __init__(self, approximate: str = "tanh"):
        super().__init__()
        if approximate not in GELU_FORMS:
            raise ConfigError(f"gelu: approximate must be one of {', '.join(repr(f) for f in GELU_FORMS)}, "
                              f"got {approximate!r}")
        self.approximate = approximate

    def config(self):
        return {"type": self.kind, "approximate": self.approximate}

    def forward(self, x, training=False):
        self.x = x
        if self.approximate == "tanh":
            x2 = x * x
            t = np.tanh(_GELU_C * x * (1 + _GELU_A * x2))     # tanh u
            self.t, self.x2 = t, x2
            return 0.5 * x * (1 + t)
        cdf = erf(x * (1 / math.sqrt(2)))
        cdf += 1
        cdf *= 0.5                                        # Phi(x)
        self.cdf = cdf
        return x * cdf

    def backward(self, dout):
        x = self.x
        if self.approximate == "tanh":
            t, x2 = self.t, self.x2
            d = (1 - t * t) * (_GELU_C * 0.5) * x * (1 + 3 * _GELU_A * x2)
            d += 0.5 * (1 + t)
        else:
            d = np.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi)) * x
            d += self.cdf
        d *= dout
        return d


@register("swish")
class Swish(Layer):
    """y = x sigmoid(x) (SiLU; ``"silu"`` is accepted as a type name);
    with s = sigmoid(x): dy/dx = s + x s (1 - s) = s (1 + x (1 - s)).

    Derivation: docs/layers/swish.md
    """

    def forward(self, x, training=False):
        s = np.tanh(x * 0.5)                              # sigmoid as in Sigmoid: never overflows
        s += 1
        s *= 0.5
        self.x, self.s = x, s
        return x * s

    def backward(self, dout):
        s = self.s
        d = 1 - s
        d *= self.x
        d += 1
        d *= s
        d *= dout
        return d


# Activation names a model option or a training config may give (the
# original's activation_function values, plus sigmoid), with the layer type.
ACTIVATIONS = {"relu": "relu", "leaky_relu": "leaky_relu", "elu": "elu", "gelu": "gelu", "swish": "swish",
               "silu": "swish", "tanh": "tanh", "sigmoid": "sigmoid"}


def activation_config(spec) -> dict:
    """The layer config of an activation given by name (``"gelu"``) or as a
    layer config (``{"type": "leaky_relu", "alpha": 0.1}``), validated."""
    from .layer import layer_from_config

    cfg = {"type": spec} if isinstance(spec, str) else dict(spec) if isinstance(spec, dict) else None
    name = str(cfg.get("type", "")).lower() if cfg else repr(spec)
    if cfg is None or name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name if cfg else repr(spec)!r}; choose one of "
                          f"{', '.join(ACTIVATIONS)}")
    cfg["type"] = ACTIVATIONS[name]
    return layer_from_config(cfg).config()
