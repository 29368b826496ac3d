"""Weight initialisation from a seeded ``numpy.random.Generator``.

Xavier/Glorot keeps the variance of activations and of gradients roughly
equal across a layer when the activation is close to linear around zero
(sigmoid, tanh): ``Var(W) = 2 / (fan_in + fan_out)``, drawn here as
``U(-l, l)`` with ``l = sqrt(6 / (fan_in + fan_out))``, as the original
project does. He/Kaiming accounts for ReLU zeroing half its inputs:
``Var(W) = 2 / fan_in``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError

INITS = ("xavier", "xavier_normal", "he", "he_uniform", "zeros")


def initialise(rng: np.random.Generator, scheme: str, shape, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    if scheme == "xavier":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, size=shape)
    elif scheme == "xavier_normal":
        w = rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=shape)
    elif scheme == "he":
        w = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
    elif scheme == "he_uniform":
        limit = math.sqrt(6.0 / fan_in)
        w = rng.uniform(-limit, limit, size=shape)
    elif scheme == "zeros":
        w = np.zeros(shape)
    else:
        raise ConfigError(f"unknown init {scheme!r}; choose one of {', '.join(INITS)}")
    return w.astype(dtype, copy=False)
