"""One ONNX graph builder per registered layer type.

Each builder takes the graph, the layer, the name of its input value and
the input's per-sample shape (without ``N``), adds the nodes that compute
the layer's *inference* forward pass (``training=False``), and returns the
name of the output value. The batch axis is never written into a shape, so
every exported model takes any ``N``.

:data:`EXPORTERS` is the table; a test walks :data:`numpynets.nn.LAYERS` and
fails for any registered type missing here, and :func:`export_layer` refuses
an unknown type with its name.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import NumpynetsError
from .onnx_graph import Graph

Exporter = Callable[[Graph, object, str, tuple], str]
EXPORTERS: dict[str, Exporter] = {}


class NotExportable(NumpynetsError):
    """A layer (or model) that has no ONNX form."""


def exporter(kind: str):
    def deco(fn: Exporter) -> Exporter:
        EXPORTERS[kind] = fn
        return fn

    return deco


def export_layer(g: Graph, layer, x: str, shape: tuple) -> str:
    fn = EXPORTERS.get(layer.kind)
    if fn is None:
        raise NotExportable(f"layer type {layer.kind!r} ({layer.describe()}) has no ONNX export; "
                            f"exportable types: {', '.join(sorted(EXPORTERS))}")
    return fn(g, layer, x, tuple(shape))


def _param(layer, key) -> np.ndarray:
    return np.asarray(layer.params[key])


# -- dense layers --------------------------------------------------------------

@exporter("linear")
def _linear(g, layer, x, shape):
    # y = x W + b; MatMul broadcasts over leading axes, so (N, D) and tokens (N, T, D) alike
    y = g.op("MatMul", [x, g.const("W", _param(layer, "W"))])          # (..., n_out)
    if layer.bias:
        y = g.op("Add", [y, g.const("b", _param(layer, "b"))])
    return y


@exporter("flatten")
def _flatten(g, layer, x, shape):
    return g.op("Flatten", [x], axis=1)                                   # (N, C*H*W), channel-major


# -- activations ---------------------------------------------------------------

@exporter("relu")
def _relu(g, layer, x, shape):
    return g.op("Relu", [x])


@exporter("sigmoid")
def _sigmoid(g, layer, x, shape):
    return g.op("Sigmoid", [x])


@exporter("tanh")
def _tanh(g, layer, x, shape):
    return g.op("Tanh", [x])


# -- convolution -----------------------------------------------------------------

@exporter("conv2d")
def _conv2d(g, layer, x, shape):
    # numpynets stores W as (O, C, K, K), ONNX's layout: no transpose
    K, S, P = layer.kernel_size, layer.stride, layer.padding
    inputs = [x, g.const("W", _param(layer, "W"))]
    if layer.bias:
        inputs.append(g.const("b", _param(layer, "b")))
    return g.op("Conv", inputs, kernel_shape=[K, K], strides=[S, S], pads=[P, P, P, P])   # (N, O, Ho, Wo)


@exporter("maxpool2d")
def _maxpool2d(g, layer, x, shape):
    # floor division of the output size, as numpynets (ONNX's default ceil_mode=0)
    K, S = layer.kernel_size, layer.stride
    return g.op("MaxPool", [x], kernel_shape=[K, K], strides=[S, S])


# -- tokens ------------------------------------------------------------------------

@exporter("patchify")
def _patchify(g, layer, x, shape):
    # (N, H, W) -> (N, gh, P, gw, P) -> (N, gh, gw, P, P) -> (N, T, P*P): token py*gw + px holds
    # pixel (py*P + dy, px*P + dx) at dy*P + dx, the order of numpynets.nn.tokens.patchify.
    # A 0 in a Reshape target copies that axis from the input: the batch axis stays dynamic.
    P = layer.patch
    gh, gw = shape[0] // P, shape[1] // P
    t = g.op("Reshape", [x, g.const("grid_shape", [0, gh, P, gw, P])])
    t = g.op("Transpose", [t], perm=[0, 1, 3, 2, 4])
    return g.op("Reshape", [t, g.const("token_shape", [0, gh * gw, P * P])])


@exporter("position_embedding")
def _position_embedding(g, layer, x, shape):
    return g.op("Add", [x, g.const("pos", _param(layer, "pos"))])        # (N, T, D) + (T, D)


@exporter("mean_pool")
def _mean_pool(g, layer, x, shape):
    return g.op("ReduceMean", [x], axes=[1], keepdims=0)                 # (N, T, D) -> (N, D)


# -- attention and normalisation ----------------------------------------------------

@exporter("self_attention")
def _self_attention(g, layer, x, shape):
    """q, k, v = x Wq + bq, ...; per head a = softmax(q k^T / sqrt(E)); y = a v,
    heads side by side. The 1/sqrt(E) is folded into Wq and bq, as the layer
    itself does."""
    D, H = layer.dim, layer.heads
    E = D // H
    c = np.float64(layer.scale)
    heads_shape = g.const("heads_shape", [0, 0, H, E])                   # (N, T, D) -> (N, T, H, E)

    def project(m: str, scale) -> str:
        W = _param(layer, f"W{m}").astype(np.float64) * scale
        b = _param(layer, f"b{m}").astype(np.float64) * scale
        p = g.op("MatMul", [x, g.const(f"W{m}", W)], hint=m)             # (N, T, D)
        p = g.op("Add", [p, g.const(f"b{m}", b)], hint=m)
        p = g.op("Reshape", [p, heads_shape], hint=m)                    # (N, T, H, E)
        return p

    q = g.op("Transpose", [project("q", c)], hint="q_heads", perm=[0, 2, 1, 3])     # (N, H, T, E)
    kT = g.op("Transpose", [project("k", 1.0)], hint="k_heads_T", perm=[0, 2, 3, 1])  # (N, H, E, T)
    v = g.op("Transpose", [project("v", 1.0)], hint="v_heads", perm=[0, 2, 1, 3])     # (N, H, T, E)
    s = g.op("MatMul", [q, kT], hint="scores")                                      # (N, H, T, T)
    a = g.op("Softmax", [s], hint="attention", axis=-1)                              # rows over keys
    y = g.op("MatMul", [a, v], hint="heads_out")                                     # (N, H, T, E)
    y = g.op("Transpose", [y], perm=[0, 2, 1, 3])                                    # (N, T, H, E)
    return g.op("Reshape", [y, g.const("tokens_shape", [0, 0, D])], hint="y")        # (N, T, D)


@exporter("layer_norm")
def _layer_norm(g, layer, x, shape):
    # over the last axis, biased variance: ONNX's LayerNormalization (opset 17)
    return g.op("LayerNormalization", [x, g.const("gamma", _param(layer, "gamma")),
                                       g.const("beta", _param(layer, "beta"))],
                axis=-1, epsilon=float(layer.eps))


@exporter("residual")
def _residual(g, layer, x, shape):
    h, s = x, shape
    for i, sub in enumerate(layer.sublayers):
        with g.scope(f"{i}.{sub.kind}"):
            h = export_layer(g, sub, h, s)
        s = sub.output_shape(s)
    return g.op("Add", [x, h], hint="sum")                                # y = x + f(x)


# -- layers added with issue 12 ----------------------------------------------------

@exporter("batchnorm")
def _batchnorm(g, layer, x, shape):
    # inference: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta, per feature or channel
    # (axis 1), which is ONNX's BatchNormalization with training_mode 0
    b = layer.buffers
    return g.op("BatchNormalization", [x, g.const("gamma", _param(layer, "gamma")),
                                       g.const("beta", _param(layer, "beta")),
                                       g.const("running_mean", b["running_mean"]),
                                       g.const("running_var", b["running_var"])],
                epsilon=float(layer.eps), momentum=float(layer.momentum))


@exporter("dropout")
def _dropout(g, layer, x, shape):
    return g.op("Identity", [x], hint="dropout_eval")                   # inverted dropout: identity in eval


@exporter("leaky_relu")
def _leaky_relu(g, layer, x, shape):
    return g.op("LeakyRelu", [x], alpha=float(layer.alpha))


@exporter("elu")
def _elu(g, layer, x, shape):
    return g.op("Elu", [x], alpha=float(layer.alpha))


@exporter("gelu")
def _gelu(g, layer, x, shape):
    # GELU has no operator before opset 20, so it is written out:
    #   tanh: y = x (1 + tanh(c (x + a x^3))) / 2,  c = sqrt(2/pi), a = 0.044715
    #   none: y = x (1 + erf(x / sqrt 2)) / 2
    if layer.approximate == "tanh":
        x3 = g.op("Mul", [g.op("Mul", [x, x], hint="x2"), x], hint="x3")
        u = g.op("Add", [x, g.op("Mul", [x3, g.const("a", 0.044715)])])
        u = g.op("Mul", [u, g.const("c", math.sqrt(2.0 / math.pi))], hint="u")
        phi = g.op("Tanh", [u])
    else:
        phi = g.op("Erf", [g.op("Mul", [x, g.const("inv_sqrt2", 1.0 / math.sqrt(2.0))])])
    half = g.op("Mul", [g.op("Add", [phi, g.const("one", 1.0)]), g.const("half", 0.5)], hint="cdf")
    return g.op("Mul", [x, half])


@exporter("swish")
def _swish(g, layer, x, shape):
    return g.op("Mul", [x, g.op("Sigmoid", [x])])                        # y = x sigmoid(x)
