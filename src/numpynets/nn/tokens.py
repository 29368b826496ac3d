"""Tokens: images cut into patches, position embeddings, pooling over tokens.

These are the layers around self-attention in the original's
``mnist_attention_pool``: a 28x28 image becomes 49 tokens of 16 values (its
4x4 patches), each token is projected to ``D`` values (a :class:`Linear`,
which handles ``(N, T, D)``), a learned position table is added, and after
attention and the feed-forward network the tokens are averaged into one
vector for the classifier.

Dimension letters: ``N`` batch, ``T`` tokens, ``D`` width, ``P`` patch side,
``G`` patches per side (``T = G*G``).
"""

from __future__ import annotations

import numpy as np

from ..checks import whole
from ..errors import ConfigError
from .fastsum import sum_leading
from .layer import Layer, register


def patchify(x: np.ndarray, patch: int) -> np.ndarray:
    """(N, H, W) -> (N, T, P*P) without loops.

    Token ``t = py*Gw + px`` (row-major over the patch grid) holds, at element
    ``j = dy*P + dx``, pixel ``(py*P + dy, px*P + dx)``: exactly the
    original's order. Splitting each spatial axis into (grid, within-patch)
    and moving the two grid axes in front is one reshape and one transpose.
    """
    N, H, W = x.shape
    gh, gw = H // patch, W // patch
    t = x.reshape(N, gh, patch, gw, patch)                # (N, py, dy, px, dx)
    t = t.transpose(0, 1, 3, 2, 4)                        # (N, py, px, dy, dx)
    return t.reshape(N, gh * gw, patch * patch)           # (N, T, P*P), a copy


def unpatchify(t: np.ndarray, patch: int, height: int, width: int) -> np.ndarray:
    """The inverse of :func:`patchify`: (N, T, P*P) -> (N, H, W)."""
    N = t.shape[0]
    gh, gw = height // patch, width // patch
    x = t.reshape(N, gh, gw, patch, patch)                # (N, py, px, dy, dx)
    x = x.transpose(0, 1, 3, 2, 4)                        # (N, py, dy, px, dx)
    return x.reshape(N, height, width)                    # (N, H, W)


def patchify_reference(x: np.ndarray, patch: int) -> np.ndarray:
    """Slow, obvious twin of :func:`patchify` (the original's loops), for tests."""
    N, H, W = x.shape
    gh, gw = H // patch, W // patch
    out = np.zeros((N, gh * gw, patch * patch), dtype=x.dtype)
    for n in range(N):
        for py in range(gh):
            for px in range(gw):
                for dy in range(patch):
                    for dx in range(patch):
                        out[n, py * gw + px, dy * patch + dx] = x[n, py * patch + dy, px * patch + dx]
    return out


@register("patchify")
class Patchify(Layer):
    """Cut images into non-overlapping ``P x P`` patches, one token per patch.

    (N, H, W) -> (N, T, P*P) with ``T = (H/P) (W/P)``; see :func:`patchify`
    for the order. The backward pass is the inverse permutation, since each
    pixel lands in exactly one token.

    Derivation: docs/layers/patchify.md
    """

    def __init__(self, patch: int = 4):
        super().__init__()
        self.patch = whole(patch, "patchify: patch size")

    def config(self):
        return {"type": self.kind, "patch": self.patch}

    def output_shape(self, input_shape):
        p = self.patch
        if len(input_shape) != 2 or input_shape[0] % p or input_shape[1] % p:
            raise self.shape_error(input_shape, f"(H, W) images with H and W multiples of {p}")
        return ((input_shape[0] // p) * (input_shape[1] // p), p * p)

    def grid(self, input_shape) -> tuple[int, int]:
        """(rows, columns) of the patch grid for images of ``input_shape``."""
        return input_shape[0] // self.patch, input_shape[1] // self.patch

    def forward(self, x, training=False):
        self.in_shape = x.shape                           # (N, H, W)
        return patchify(x, self.patch)                    # (N, T, P*P)

    def backward(self, dout):                             # dout: (N, T, P*P)
        if not self.needs_input_grad:
            return None
        _, H, W = self.in_shape
        return unpatchify(dout, self.patch, H, W)         # (N, H, W)


def sinusoidal_table(tokens: int, dim: int, dtype=np.float32) -> np.ndarray:
    """The Transformer's position table, as the original builds it:
    ``angle = t / 10000^(2*(d//2) / D)``, ``sin(angle)`` for even ``d`` and
    ``cos(angle)`` for odd ``d``. Pairs of columns share a frequency, and the
    frequencies fall geometrically from 1 to 1/10000 across the width, so
    nearby positions get similar rows and every position a distinct one.
    """
    t = np.arange(tokens, dtype=np.float64)[:, None]                  # (T, 1)
    d = np.arange(dim)                                                # (D,)
    angle = t / np.power(10000.0, (2 * (d // 2)) / dim)               # (T, D)
    return np.where(d % 2 == 0, np.sin(angle), np.cos(angle)).astype(dtype)


POS_INITS = ("sinusoidal", "zeros")


@register("position_embedding")
class PositionEmbedding(Layer):
    """y = x + pos, with a learned table ``pos`` of shape (T, D).

    x: (N, T, D) -> y: (N, T, D). Every sample adds the same table, so
    ``dL/dpos = sum_n dy_n`` and ``dL/dx = dy``. The original adds it to the
    projected patches *before* the ReLU, and initialises it with
    :func:`sinusoidal_table` (``init="sinusoidal"``).

    Derivation: docs/layers/position_embedding.md
    """

    def __init__(self, tokens: int, dim: int, init: str = "sinusoidal"):
        super().__init__()
        self.tokens = whole(tokens, "position_embedding: tokens")
        self.dim = whole(dim, "position_embedding: dim")
        if init not in POS_INITS:
            raise ConfigError(f"position_embedding: unknown init {init!r}; choose one of {', '.join(POS_INITS)}")
        self.init = init
        self._add_param("pos", (self.tokens, self.dim))

    def config(self):
        return {"type": self.kind, "tokens": self.tokens, "dim": self.dim, "init": self.init}

    def reset_parameters(self, rng):
        pos = self.params["pos"]
        if self.init == "sinusoidal":
            pos[...] = sinusoidal_table(self.tokens, self.dim, pos.dtype)
        else:
            pos.fill(0)

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.tokens, self.dim):
            raise self.shape_error(input_shape, f"({self.tokens}, {self.dim})")
        return tuple(input_shape)

    def forward(self, x, training=False):
        return x + self.params["pos"]                     # (N, T, D); pos broadcasts over N

    def backward(self, dout):                             # dout: (N, T, D)
        N, T, D = dout.shape
        self.grads["pos"] += sum_leading(dout.reshape(N, T * D)).reshape(T, D)   # (T, D) sum over n
        return dout if self.needs_input_grad else None


@register("mean_pool")
class MeanPool(Layer):
    """Average over tokens: (N, T, D) -> (N, D), ``y = (1/T) sum_t x_t``,
    so every token receives ``dy / T``.

    Derivation: docs/layers/mean_pool.md
    """

    def output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise self.shape_error(input_shape, "(T, D) tokens")
        return (input_shape[1],)

    def forward(self, x, training=False):
        self.in_shape = x.shape                           # (N, T, D)
        return x.mean(axis=1)                             # (N, D)

    def backward(self, dout):                             # dout: (N, D)
        if not self.needs_input_grad:
            return None
        N, T, D = self.in_shape
        dx = np.empty(self.in_shape, dtype=dout.dtype)    # (N, T, D)
        dx[...] = (dout * (1.0 / T))[:, None, :]
        return dx

    # -- a LayerNorm folded in (numpynets.nn.fold) ------------------------------
    folds_layer_norm = True

    def forward_folded(self, xa, shape, ln, training=False):   # xa: (N*T, D+1) [xh | 1]
        """``mean_t(xh gamma + beta) = mean_t(xh) gamma + beta``: the affine
        on the pooled (N, D) rows instead of the (N, T, D) tokens."""
        N, T, D = shape
        xh = xa[:, :D].reshape(N, T, D)                   # (N, T, D) view
        self.pooled = np.matmul(np.full(T, 1.0 / T, dtype=xa.dtype), xh)   # (N, D) mean_t(xh)
        self.in_shape = shape
        return self.pooled * ln.params["gamma"] + ln.params["beta"]         # (N, D)

    def backward_folded(self, dout, ln):                  # dout: (N, D)
        """The backward of :meth:`forward_folded`: adds ``ln``'s parameter
        gradients; returns the centred dL/dxh (N*T, D) (every token
        ``(dout gamma) / T`` less its mean over D), or None when ``ln``
        needs no input gradient."""
        ln.grads["gamma"] += np.einsum("nd,nd->d", dout, self.pooled)     # (D,)
        ln.grads["beta"] += sum_leading(dout)             # (D,)
        if not ln.needs_input_grad:
            return None
        N, T, D = self.in_shape
        dp = dout * ln.params["gamma"]                    # (N, D) dL/dmean_t(xh)
        dp -= dp.mean(axis=1, keepdims=True)              # centred over D
        dp *= 1.0 / T                                     # every token gets dp / T
        dxh = np.empty((N, T, D), dtype=dout.dtype)
        dxh[...] = dp[:, None, :]
        return dxh.reshape(N * T, D)                      # (N*T, D) centred dxh
