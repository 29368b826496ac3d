"""Residual connection around a chain of layers: y = x + f(x)."""

from __future__ import annotations

from ..errors import ConfigError
from .layer import Layer, layer_from_config, register


@register("residual")
class Residual(Layer):
    """y = x + f(x), with ``f`` a chain of sub-layers (e.g. LayerNorm then
    SelfAttention: a pre-norm Transformer sub-block).

    The identity path hands the upstream gradient straight through, so
    ``dx = dy + f'(x)^T dy``: deep stacks keep a gradient even where ``f``
    saturates. ``f`` must keep the shape of its input.

    Parameters are the sub-layers', named ``"<i>.<name>"`` (``"1.Wq"``);
    :meth:`bind` hands each flat-buffer view down to the sub-layer that owns
    it, so the sub-layers compute on the model's buffers directly.

    Derivation: docs/layers/residual.md
    """

    def __init__(self, layers: list):
        super().__init__()
        if not layers:
            raise ConfigError("residual: needs at least one layer inside")
        self.sublayers = [l if isinstance(l, Layer) else layer_from_config(l) for l in layers]
        for i, layer in enumerate(self.sublayers):
            for k in layer.params:
                self.params[f"{i}.{k}"] = layer.params[k]
                self.grads[f"{i}.{k}"] = layer.grads[k]
        self._collect_buffers()
        self.uses_rng = any(l.uses_rng for l in self.sublayers)

    def _collect_buffers(self):
        self.buffers = {f"{i}.{k}": b for i, l in enumerate(self.sublayers) for k, b in l.buffers.items()}

    def config(self):
        return {"type": self.kind, "layers": [l.config() for l in self.sublayers]}

    def describe(self) -> str:
        return f"Residual({' -> '.join(l.describe() for l in self.sublayers)})"

    def reset_parameters(self, rng):
        for layer in self.sublayers:
            layer.reset_parameters(rng)

    def zero_grad(self):
        for layer in self.sublayers:                      # each sub-layer resets its own way
            layer.zero_grad()

    def zero_grad_deferred(self):
        for layer in self.sublayers:
            layer.zero_grad_deferred()

    def decays(self, name):
        i, _, key = name.partition(".")
        return self.sublayers[int(i)].decays(key)

    def set_rng(self, rng):
        self.rng = rng
        for layer in self.sublayers:
            layer.set_rng(rng)

    def set_buffer(self, name, value):
        i, _, key = name.partition(".")
        self.sublayers[int(i)].set_buffer(key, value)

    def cast_buffers(self, dtype):
        for layer in self.sublayers:
            layer.cast_buffers(dtype)
        self._collect_buffers()

    def bind(self, name, param, grad):
        i, _, key = name.partition(".")
        self.sublayers[int(i)].bind(key, param, grad)
        self.params[name], self.grads[name] = param, grad

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.sublayers:
            shape = layer.output_shape(shape)
        for i, layer in enumerate(self.sublayers):        # sizes a sub-layer took from its input
            for k in layer.params:
                self.params[f"{i}.{k}"] = layer.params[k]
                self.grads[f"{i}.{k}"] = layer.grads[k]
        self._collect_buffers()
        if shape != tuple(input_shape):
            raise self.shape_error(input_shape, f"layers that keep the shape (they give {shape})")
        return shape

    def forward(self, x, training=False):
        h = x
        for layer in self.sublayers:
            h = layer.forward(h, training)
        return x + h                                      # same shape as x

    def backward(self, dy):
        d = dy
        for layer in reversed(self.sublayers):            # every sub-layer needs its input gradient
            d = layer.backward(d)
        if not self.needs_input_grad:
            return None
        return dy + d
