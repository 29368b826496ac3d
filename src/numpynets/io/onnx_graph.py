"""A small builder for ONNX graphs: named nodes and constant tensors.

ONNX describes a model as a list of nodes (operators such as ``MatMul`` or
``Conv``), each reading and writing named values, plus initializers (the
weights, stored in the file). The layer exporters in
:mod:`numpynets.io.onnx_layers` call :meth:`Graph.op` and
:meth:`Graph.const` and never touch protobuf themselves; value names are
made unique and readable (``"3.self_attention/MatMul_2"``), which is what
Netron shows next to each node.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..errors import NumpynetsError

# ONNX opset 17 has every operator the layers need, LayerNormalization
# included (new in 17), and it is read by every current runtime
# (onnxruntime >= 1.12, onnxruntime-web, Netron). IR version 8 is the one
# that opset shipped with, so older readers can open the files too.
OPSET = 17
IR_VERSION = 8


def onnx_module():
    """``import onnx``, or a one-line error naming the extra to install."""
    try:
        import onnx
    except ImportError:
        raise NumpynetsError("ONNX export needs the onnx package: pip install 'numpynets[onnx]'") from None
    return onnx


class Graph:
    """Nodes and initializers of one graph being built."""

    def __init__(self, dtype=np.float32):
        self.onnx = onnx_module()
        self.dtype = np.dtype(dtype)
        self.nodes: list = []
        self.initializers: list = []
        self._used: set[str] = set()
        self._scope = ""

    @contextmanager
    def scope(self, name: str):
        """Prefix the names made inside the block with ``name/`` (the layer's index and type)."""
        outer = self._scope
        self._scope = f"{outer}{name}/"
        try:
            yield
        finally:
            self._scope = outer

    def fresh(self, hint: str) -> str:
        base = f"{self._scope}{hint}"
        name, i = base, 1
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def const(self, hint: str, value) -> str:
        """A constant tensor (a weight, a shape) stored in the file; floats in
        the model's dtype, integers as int64 (what Reshape and friends want)."""
        arr = np.asarray(value)
        arr = arr.astype(np.int64) if arr.dtype.kind in "iub" else arr.astype(self.dtype)
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        """Add one node with one output; returns the output's name."""
        out = self.fresh(hint or op_type)
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out],
                                                     name=self.fresh(f"{op_type}_node"), **attrs))
        return out

    def reserve(self, name: str) -> str:
        """Claim a public name (the graph's ``input``, its ``logits``) exactly as given."""
        if name in self._used:
            raise NumpynetsError(f"ONNX export: the name {name!r} is taken")
        self._used.add(name)
        return name

    def rename(self, value: str, final: str) -> str:
        """Give the graph's result its public name (``logits``) with an Identity."""
        self.reserve(final)
        self.nodes.append(self.onnx.helper.make_node("Identity", [value], [final], name=self.fresh("output")))
        return final
