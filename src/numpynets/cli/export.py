"""numpynets export MODEL OUT.onnx"""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="export a model to ONNX (opset 17), for onnxruntime, Netron and others",
        description="Write MODEL as an ONNX file (opset 17, checked by onnx.checker). Every MNIST model "
        "takes 'input', float32 (N, 1, 28, 28), pixels in [0, 1], and gives 'logits' (N, 10); XOR takes "
        "(N, 2) and gives 'output' (N, 1). Needs the onnx extra: pip install 'numpynets[onnx]'.")
    p.add_argument("model_file", metavar="MODEL",
                   help="model file (.safetensors, an original .bin) or a run folder")
    p.add_argument("output", metavar="OUT.onnx", help="the ONNX file to write (atomically)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import ConfigError
    from ..io import load_model
    from ..io.onnx_export import OPSET, export_onnx
    from ..io.onnx_graph import onnx_module

    onnx_module()                                              # the missing extra, before any work
    dst = Path(args.output)
    if dst.is_dir():
        raise ConfigError(f"{dst}: is a folder; give the ONNX file's name, e.g. {dst / 'model.onnx'}")
    if not dst.parent.is_dir():
        raise ConfigError(f"{dst.parent}: no such folder; create it or choose another output path")
    model, meta = load_model(args.model_file)
    proto = export_onnx(model, dst, meta)
    graph = proto.graph
    ins = ", ".join(f"{v.name} {_dims(v)}" for v in graph.input)
    outs = ", ".join(f"{v.name} {_dims(v)}" for v in graph.output)
    print(f"wrote {dst} ({dst.stat().st_size:,d} bytes, ONNX opset {OPSET}): "
          f"{model.name}, {ins} -> {outs}")
    return 0


def _dims(value) -> str:
    dims = [d.dim_param or str(d.dim_value) for d in value.type.tensor_type.shape.dim]
    return "(" + ", ".join(dims) + ")"
