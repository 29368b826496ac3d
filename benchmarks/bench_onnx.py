"""ONNX export against numpynets on the 10,000 MNIST test images: for each
model file, the size of the .onnx file, how often onnxruntime's argmax
agrees with numpynets', the largest absolute logit difference, and both
accuracies. XOR files are checked on its four points.

    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_onnx.py runs/mlp-default runs/cnn-default ...

Needs onnx and onnxruntime (pip install ".[test]").
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from common import set_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="model files or run folders")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    set_threads(args.threads)
    import onnxruntime as ort

    from numpynets.data.mnist import load_mnist_test
    from numpynets.io import load_model
    from numpynets.io.onnx_export import export_onnx

    test = None
    rows = []
    print("| model | file | ONNX size | agreement (argmax) | largest logit difference | accuracy numpynets / onnxruntime |")
    print("| --- | --- | --- | --- | --- | --- |")
    for src in args.models:
        model, meta = load_model(src)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.onnx"
            export_onnx(model, path, meta)
            size = path.stat().st_size
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        if model.is_classifier:
            test = test or load_mnist_test(log=lambda *a: None)
            x, y = test.x, test.y                                              # (10000, 28, 28)
            got = np.concatenate([sess.run(None, {"input": x[i:i + 1000, None]})[0]
                                  for i in range(0, len(x), 1000)])             # (10000, 10)
            want = np.concatenate([model.forward(x[i:i + 1000].reshape(-1, *model.input_shape))
                                   for i in range(0, len(x), 1000)])
            agree = int((got.argmax(1) == want.argmax(1)).sum())
            acc = (100 * (want.argmax(1) == y).mean(), 100 * (got.argmax(1) == y).mean())
            n = len(x)
        else:
            x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
            got, want = sess.run(None, {"input": x})[0], model.forward(x)
            agree = int(((got > 0.5) == (want > 0.5)).all(axis=1).sum())
            acc, n = (None, None), 4
        diff = float(np.abs(got - want).max())
        row = {"model": getattr(model, "name", "custom"), "file": str(src), "onnx_bytes": size,
               "agree": agree, "n": n, "max_abs_logit_diff": diff,
               "accuracy_numpynets": acc[0], "accuracy_onnxruntime": acc[1]}
        rows.append(row)
        accs = f"{acc[0]:.2f} % / {acc[1]:.2f} %" if acc[0] is not None else "all four right" \
            if agree == 4 and ((want > 0.5).ravel() == np.array([0, 1, 1, 0], bool)).all() else "-"
        print(f"| {row['model']} | {src} | {size:,d} B | {agree:,d} / {n:,d} | {diff:.2e} | {accs} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
