"""ONNX export: any numpynets model as an ``.onnx`` file (opset 17).

ONNX is how trained models travel: onnxruntime runs the file on servers,
phones and in browsers, and Netron draws it. The file is built with the
``onnx`` package (the optional extra ``onnx``), one graph builder per layer
type (:mod:`numpynets.io.onnx_layers`), and checked with
``onnx.checker.check_model(full_check=True)`` before it is written.

The interface is the same for every MNIST model, whatever its own input
shape (784 values for the MLP, (1, 28, 28) for the CNN, (28, 28) for the
attention model):

* input ``input``: float32, shape (N, 1, 28, 28), pixels in [0, 1] (white
  ink on black, prepared like MNIST), ``N`` dynamic;
* output ``logits``: float32, shape (N, 10); softmax gives probabilities.

Other models (XOR) take ``input`` of shape (N, *input_shape) and give
``output`` (N, *output_shape): for XOR, (N, 2) -> (N, 1), already through
its sigmoid. Metadata (``metadata_props``): ``name``, ``dataset``,
``class_names`` (JSON list), ``numpynets_version``, ``architecture`` (JSON)
and, when the file recorded it, ``test_accuracy``.
"""

from __future__ import annotations

import json

import numpy as np

from .. import __version__
from ..atomic import replace_atomically
from ..errors import NumpynetsError
from .onnx_graph import IR_VERSION, OPSET, Graph
from .onnx_layers import NotExportable, export_layer

MNIST_INPUT = (1, 28, 28)
CLASS_NAMES = {"mnist": [str(d) for d in range(10)], "xor": ["a xor b"]}


def is_mnist_model(model) -> bool:
    """A digit classifier: 784 input values, ten class scores."""
    return (model.is_classifier and tuple(model.output_shape) == (10,)
            and int(np.prod(model.input_shape)) == 784)


def class_names(model) -> list[str]:
    dataset = model.dataset
    if dataset in CLASS_NAMES and len(CLASS_NAMES[dataset]) == int(np.prod(model.output_shape)):
        return CLASS_NAMES[dataset]
    return [str(i) for i in range(int(np.prod(model.output_shape)))]


def to_onnx(model, meta: dict | None = None):
    """The ``onnx.ModelProto`` of ``model`` (a :class:`~numpynets.nn.Sequential`);
    ``meta`` is the model file's metadata (for the test accuracy)."""
    g = Graph(np.float32)
    onnx = g.onnx
    helper, TensorProto = onnx.helper, onnx.TensorProto
    mnist = is_mnist_model(model)
    outer = MNIST_INPUT if mnist else tuple(model.input_shape)
    x = g.reserve("input")
    if outer != tuple(model.input_shape):                  # (N, 1, 28, 28) -> the model's own shape
        x = g.op("Reshape", [x, g.const("model_input_shape", [-1, *model.input_shape])], hint="model_input")
    shape = tuple(model.input_shape)
    for i, layer in enumerate(model.layers):
        with g.scope(f"{i}.{layer.kind}"):
            x = export_layer(g, layer, x, shape)
        shape = layer.output_shape(shape)
    out_name = "logits" if model.is_classifier else "output"
    g.rename(x, out_name)

    graph = helper.make_graph(
        g.nodes, model.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *outer])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", *model.output_shape])],
        initializer=g.initializers)
    proto = helper.make_model(graph, producer_name="numpynets", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    proto.model_version = 1
    proto.doc_string = (f"numpynets {model.name} model: input {list(outer)} float32 "
                        + ("pixels in [0, 1], white ink on black, MNIST-like" if mnist else "")
                        + f"; output {out_name} {list(model.output_shape)}")
    arch = model.architecture()
    props = {"name": model.name, "dataset": model.dataset,
             "class_names": json.dumps(class_names(model)), "numpynets_version": __version__,
             "architecture": json.dumps(arch, separators=(",", ":"))}
    acc = ((meta or {}).get("metrics") or {}).get("test_accuracy")
    if isinstance(acc, (int, float)):
        props["test_accuracy"] = f"{acc:.4f}"
    helper.set_model_props(proto, props)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, meta: dict | None = None):
    """Write ``model`` to ``path`` as ONNX, atomically (a failed write leaves
    no partial file). Returns the ``ModelProto``."""
    if model.dtype != np.float32:                          # a float64 model (e.g. read for a conversion)
        model = model.astype(np.float32)                   # keeps the name and dataset
    proto = to_onnx(model, meta)
    data = proto.SerializeToString()

    def writer(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    try:
        replace_atomically(path, writer)
    except OSError as exc:
        raise NumpynetsError(f"{path}: cannot write ({exc.strerror or exc}); choose another output path") from None
    return proto


__all__ = ["OPSET", "NotExportable", "export_onnx", "to_onnx", "is_mnist_model", "class_names"]
