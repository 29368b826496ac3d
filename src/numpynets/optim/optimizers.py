"""Optimizers: they own their state and update parameters in place.

An optimizer is given ``(param, grad)`` pairs (for a
:class:`~numpynets.nn.sequential.Sequential`, the one pair of flat buffers,
so each update is a few vectorised operations over the whole model). State
(momentum, Adam moments) is kept per element, i.e. per parameter: the
original project shares one Adam state across all tensors; this does not.

All arithmetic stays in the parameters' dtype: learning rates and
coefficients are Python floats, which NumPy 2 treats as "weak" scalars, so a
float32 buffer is never promoted to float64.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError


class Optimizer:
    def __init__(self, pairs, lr: float):
        self.pairs = [(p, g) for p, g in pairs]
        self.lr = float(lr)
        self.t = 0                                         # number of step() calls

    def step(self) -> None:
        self.t += 1
        for i, (p, g) in enumerate(self.pairs):
            self._update(i, p, g)

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def state(self) -> dict:
        return {}


class SGD(Optimizer):
    """p -= lr * (g + wd p), with optional (Nesterov) momentum:

    v = mu v + (g + wd p);  p -= lr v            (heavy ball, PyTorch's form)
    p -= lr (g' + mu v)  with g' = g + wd p      (Nesterov)
    """

    def __init__(self, pairs, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(pairs, lr)
        if momentum < 0 or weight_decay < 0:
            raise ConfigError("SGD: momentum and weight decay must be >= 0")
        if nesterov and momentum == 0:
            raise ConfigError("SGD: Nesterov needs a momentum > 0 (add --momentum 0.9)")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), float(weight_decay)
        self.velocity = [np.zeros_like(p) for p, _ in self.pairs] if momentum else None
        self._tmp = [np.empty_like(p) for p, _ in self.pairs] if (momentum or weight_decay) else None

    def _update(self, i, p, g):
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        if not mu and not wd:
            p -= lr * g
            return
        d = self._tmp[i]
        np.copyto(d, g)
        if wd:
            d += wd * p                                    # L2 penalty (wd/2)|p|^2 has gradient wd p
        if mu:
            v = self.velocity[i]
            v *= mu
            v += d
            if self.nesterov:
                d += mu * v                                # look ahead along the velocity
            else:
                d = v
        p -= lr * d


class Adam(Optimizer):
    """Adam (Kingma & Ba). With ``decoupled=True`` it is AdamW (Loshchilov &
    Hutter): weight decay shrinks ``p`` directly instead of entering ``g``.

    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
    p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
    """

    def __init__(self, pairs, lr: float, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = False):
        super().__init__(pairs, lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ConfigError(f"Adam: betas must be in [0, 1), got {betas}")
        if weight_decay < 0 or eps <= 0:
            raise ConfigError("Adam: weight decay must be >= 0 and eps > 0")
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)
        self.weight_decay, self.decoupled = float(weight_decay), bool(decoupled)
        self.m = [np.zeros_like(p) for p, _ in self.pairs]
        self.v = [np.zeros_like(p) for p, _ in self.pairs]
        self._tmp = [np.empty_like(p) for p, _ in self.pairs]

    def _update(self, i, p, g):
        b1, b2, wd = self.b1, self.b2, self.weight_decay
        m, v, d = self.m[i], self.v[i], self._tmp[i]
        if wd and self.decoupled:
            p *= 1 - self.lr * wd
        if wd and not self.decoupled:
            g = g + wd * p                                 # L2 penalty enters the moments
        m *= b1
        m += (1 - b1) * g
        np.multiply(g, g, out=d)
        v *= b2
        d *= 1 - b2
        v += d
        # fold both bias corrections into one step size and one eps
        step = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        eps_hat = self.eps * math.sqrt(1 - b2 ** self.t)
        np.sqrt(v, out=d)
        d += eps_hat
        np.divide(m, d, out=d)
        d *= step
        p -= d


def AdamW(pairs, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01):
    return Adam(pairs, lr, betas, eps, weight_decay, decoupled=True)


OPTIMIZERS = ("sgd", "adam", "adamw")


def make_optimizer(name: str, pairs, lr: float, momentum: float = 0.0, nesterov: bool = False,
                   weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8) -> Optimizer:
    name = name.lower()
    if name == "sgd":
        return SGD(pairs, lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "adam":
        return Adam(pairs, lr, betas, eps, weight_decay)
    if name == "adamw":
        return Adam(pairs, lr, betas, eps, weight_decay, decoupled=True)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
