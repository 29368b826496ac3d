"""Losses. Each returns ``(loss, dlogits)``: the mean over the batch and its
gradient with respect to the model's output, in the output's dtype."""

from __future__ import annotations

import numpy as np

from ..checks import show
from ..errors import ConfigError


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, stable: subtract the row max first
    (softmax is shift-invariant) so exp never overflows."""
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis: ``z (N, K) -> p (N, K)``, rows summing to 1 (stable)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_ROWS = [np.arange(0)]                                    # the last arange(N), for the label gather


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Fused softmax + cross-entropy.   logits: (N, K), y: (N,) int labels.

    L = -(1/N) sum_n log p_n,y_n  with  p = softmax(logits).
    Its gradient collapses to dL/dlogits = (p - onehot(y)) / N: the
    softmax Jacobian and the 1/p of the log cancel.

    With z = logits - max and s = sum_k exp(z_k) per row, -log p_y =
    log s - z_y, and p = exp(z) / s: one exp over (N, K), the rest on
    (N,) or (N, 1) arrays. (:func:`softmax_cross_entropy_reference` is the
    slow twin, through log_softmax.)

    Derivation: docs/layers/softmax_cross_entropy.md
    """
    N = logits.shape[0]
    rows = _ROWS[0]
    if rows.shape[0] != N:
        rows = _ROWS[0] = np.arange(N)
    # the ufuncs' own reduce: ndarray.max/.sum add a Python wrapper per call
    z = logits - np.maximum.reduce(logits, axis=-1, keepdims=True)   # (N, K), max 0 per row
    e = np.exp(z)                                         # (N, K)
    s = np.add.reduce(e, axis=-1, keepdims=True)          # (N, 1), >= 1
    nll = np.log(s[:, 0])                                 # (N,)
    nll -= z[rows, y]                                     # (N,) -log p_y
    loss = float(np.add.reduce(nll, dtype=np.float64)) / N
    s *= N
    e /= s                                                # p / N, (N, K)
    e[rows, y] -= 1 / N                                   # (p - onehot(y)) / N
    return loss, e


def softmax_cross_entropy_reference(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The slow, obvious twin of :func:`softmax_cross_entropy`, for tests."""
    N = logits.shape[0]
    logp = log_softmax(logits)                            # (N, K)
    rows = np.arange(N)
    loss = -float(logp[rows, y].mean(dtype=np.float64))
    dlogits = np.exp(logp)                                # p, (N, K)
    dlogits[rows, y] -= 1
    dlogits /= N
    return loss, dlogits


def cross_entropy_per_sample(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-log p_y for each row (for evaluation; no gradient)."""
    return -log_softmax(logits)[np.arange(logits.shape[0]), y]


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over all elements: L = mean((pred - target)^2),
    dL/dpred = 2 (pred - target) / size.

    Derivation: docs/layers/mse.md
    """
    if target.shape != pred.shape or target.dtype != pred.dtype:
        target = target.reshape(pred.shape).astype(pred.dtype, copy=False)
    diff = pred - target
    flat = diff.reshape(-1)
    loss = float(np.dot(flat, flat)) / flat.size          # a dot is far cheaper than mean() on tiny arrays
    diff *= 2 / flat.size
    return loss, diff


def mse_per_sample(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    diff = pred - target.reshape(pred.shape)
    return (diff * diff).reshape(pred.shape[0], -1).mean(axis=1)


LOSSES = {"softmax_cross_entropy": softmax_cross_entropy, "mse": mse}
PER_SAMPLE = {"softmax_cross_entropy": cross_entropy_per_sample, "mse": mse_per_sample}


def get_loss(name: str):
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {show(name)}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]
