"""Shared by the ONNX and web tests: small MNIST models trained for a few
dozen steps (enough that their logits mean something and the argmax is not
decided by rounding), and onnxruntime sessions for exported files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from numpynets.models.registry import build, build_architecture, get_model

# model kind -> (builtin name, architecture options)
KINDS = {
    "mlp": ("mlp", {"hidden": 64}),
    "cnn": ("cnn", {}),
    "attention": ("attention", {"d_model": 16, "ff_dim": 32}),
    "attention-multihead": ("attention", {"d_model": 16, "ff_dim": 32, "heads": 4, "residual": True,
                                          "layernorm": True, "blocks": 2}),
}


def require(module: str):
    """Import a test dependency; under CI a missing one fails instead of skipping."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is missing; CI installs it with the test extra")
        pytest.skip(f"{module} not installed (pip install '.[test]')", allow_module_level=True)


def quick_train(model, x: np.ndarray, y: np.ndarray, steps: int = 40, batch: int = 64, lr: float = 1e-2,
                seed: int = 0):
    """A few Adam steps on the flat buffers (written out here, so these tests
    do not depend on the optimizers' API)."""
    rng = np.random.default_rng(seed)
    m = np.zeros_like(model.flat_params)
    v = np.zeros_like(model.flat_params)
    for t in range(1, steps + 1):
        idx = rng.integers(0, len(x), batch)
        xb = x[idx].reshape(batch, *model.input_shape)
        out = model.forward(xb, training=True)
        _, dout = model.loss(out, y[idx])
        model.zero_grad()
        model.backward(dout)
        g = model.flat_grads
        m[...] = 0.9 * m + 0.1 * g
        v[...] = 0.999 * v + 0.001 * g * g
        step = lr * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        model.flat_params -= (np.float32(step) * m / (np.sqrt(v) + np.float32(1e-8))).astype(np.float32)
    return model


def built(kind: str, seed: int = 0):
    name, opts = KINDS[kind]
    return build(build_architecture(get_model(name), opts), seed=seed)


def session(proto_or_path):
    ort = require("onnxruntime")
    data = proto_or_path.SerializeToString() if hasattr(proto_or_path, "SerializeToString") else str(proto_or_path)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])
