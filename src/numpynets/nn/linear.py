"""Fully connected layer."""

from __future__ import annotations

import numpy as np

from ..checks import whole
from .init import initialise
from .layer import Layer, register


@register("linear")
class Linear(Layer):
    """y = x @ W + b.   x: (N, n_in) -> y: (N, n_out).

    ``W`` is stored ``[in][out]`` (row-major), the original project's layout,
    so its files map onto ours without a transpose.

    Derivation: docs/layers/linear.md
    """

    decayed = frozenset({"W"})                            # weight decay: the matrix, not the bias

    def __init__(self, in_features: int, out_features: int, init: str = "xavier", bias: bool = True):
        super().__init__()
        self.in_features = whole(in_features, "linear: in_features")
        self.out_features = whole(out_features, "linear: out_features")
        self.init, self.bias = init, bool(bias)
        self._add_param("W", (self.in_features, self.out_features))
        if self.bias:
            self._add_param("b", (self.out_features,))
        self._fresh = False                               # set by zero_grad: the next backward overwrites
        self._ones_cache = None                           # ones(N) for the bias gradient

    def config(self) -> dict:
        cfg = {"type": self.kind, "in_features": self.in_features, "out_features": self.out_features,
               "init": self.init}
        if not self.bias:
            cfg["bias"] = False
        return cfg

    def reset_parameters(self, rng):
        W = self.params["W"]
        W[...] = initialise(rng, self.init, W.shape, self.in_features, self.out_features, W.dtype)
        if self.bias:
            self.params["b"].fill(0)

    def input_shape_hint(self):
        return (self.in_features,)

    def output_shape(self, input_shape):
        if len(input_shape) < 1 or input_shape[-1] != self.in_features:
            raise self.shape_error(input_shape, f"(..., {self.in_features})")
        return (*input_shape[:-1], self.out_features)

    def forward(self, x, training=False):
        self.x = x                                        # backward needs the input for dW
        y = x @ self.params["W"]                          # (N, n_out), or (N, T, n_out)
        if self.bias:
            y += self.params["b"]
        return y

    def _ones(self, dy):
        """A cached ones vector: ``ones @ dy`` sums the rows of dy as one BLAS
        matrix-vector product, 2-4x faster than ``dy.sum(axis=0)`` here."""
        ones = self._ones_cache
        if ones is None or ones.shape[0] != dy.shape[0] or ones.dtype != dy.dtype:
            ones = self._ones_cache = np.ones(dy.shape[0], dtype=dy.dtype)
        return ones

    def zero_grad(self):
        """Set the gradients to zero (a fill, as every layer does: a step
        taken without a backward then applies no gradient, never a stale
        one), and note that they are zero, so that the next backward stores
        ``x.T @ dy`` straight into ``dW`` instead of adding a temporary to the
        zeros (it saves a 1.6 MB temporary and an add per step for the MLP's
        first layer). Later backward calls accumulate as usual."""
        for g in self.grads.values():
            g.fill(0)
        self._fresh = True

    def zero_grad_deferred(self):
        """For a backward that follows at once: no fill, only the note that
        the next backward stores its gradients instead of adding them (the
        zeros would be overwritten anyway; for the MLP's first layer that
        saves a 1.6 MB fill per step)."""
        self._fresh = True

    def backward(self, dy):                               # dy: (N, n_out) or (N, T, n_out)
        x = self.x
        if x.ndim > 2:                                    # tokens: fold (N, T) into rows
            x = x.reshape(-1, self.in_features)
            dy = dy.reshape(-1, self.out_features)
        # y_j = sum_i x_i W_ij + b_j  =>  dL/dW_ij = sum_n x_ni dy_nj,  dL/db_j = sum_n dy_nj
        gW = self.grads["W"]
        if self._fresh:
            np.matmul(x.T, dy, out=gW)                    # (n_in, n_out)
            if self.bias:
                np.matmul(self._ones(dy), dy, out=self.grads["b"])   # (n_out,)
            self._fresh = False
        else:
            gW += x.T @ dy
            if self.bias:
                self.grads["b"] += self._ones(dy) @ dy
        if not self.needs_input_grad:
            return None
        dx = dy @ self.params["W"].T                      # dL/dx_ni = sum_j dy_nj W_ij
        return dx.reshape(self.x.shape)
