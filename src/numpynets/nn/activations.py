"""Elementwise activations. Each keeps what its derivative needs."""

from __future__ import annotations

import numpy as np

from .layer import Layer, register


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
