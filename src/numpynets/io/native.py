"""The native model file: safetensors, with numpynets metadata.

safetensors is a flat list of named tensors plus a JSON header, readable by
many tools without running code. Our metadata (string values) holds:

* ``format``: ``"numpynets"`` and ``format_version``: ``"1"``;
* ``architecture``: the JSON that rebuilds the model (see
  :mod:`numpynets.models.registry`);
* ``recipe`` and ``metrics``: JSON, informative only.

Tensors are named as in ``Sequential.named_parameters()`` (``"0.W"``...),
followed by the buffers of ``Sequential.named_buffers()`` (BatchNorm's
``"1.running_mean"``, ``"1.running_var"``), restored on load.
Files are written atomically (:mod:`numpynets.atomic`): a temp file in the same folder, then a rename,
so an interrupted save never leaves a half-written model behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import replace_atomically
from ..errors import ModelFileError, NumpynetsError

FORMAT = "numpynets"
FORMAT_VERSION = "1"


def atomic_save(path, writer) -> None:
    """Call ``writer(tmp_path)`` then rename over ``path`` (see
    :func:`numpynets.atomic.replace_atomically`), with a one-line error."""
    try:
        replace_atomically(path, writer)
    except OSError as exc:
        raise NumpynetsError(f"{path}: cannot write ({exc.strerror or exc}); choose another output path") from None


def save_model(path, model, recipe: dict | None = None, metrics: dict | None = None) -> None:
    from safetensors.numpy import save_file

    tensors = {n: np.ascontiguousarray(p) for n, p, _ in model.named_parameters()}
    tensors.update((n, np.ascontiguousarray(b)) for n, b in model.named_buffers())
    arch = model.architecture()
    arch["name"] = getattr(model, "name", "custom")
    arch["dataset"] = getattr(model, "dataset", "mnist")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "architecture": json.dumps(arch),
            "recipe": json.dumps(recipe or {}), "metrics": json.dumps(metrics or {})}
    atomic_save(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_native(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata with JSON fields decoded, tensors) of a numpynets file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            size = path.stat().st_size
            if n <= 1 or n > size - 8:
                raise ModelFileError(f"{path}: not a safetensors model file (bad header); "
                                     "was it written by numpynets? Try 'numpynets convert'")
            header = json.loads(f.read(n))
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{path}: not a safetensors model file (header is not JSON)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "architecture" not in meta:
        raise ModelFileError(f"{path}: not a numpynets model (no architecture in metadata); "
                             "was it written by another tool? Try 'numpynets convert'")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: numpynets format version {meta.get('format_version')!r}; this "
                             f"numpynets reads version {FORMAT_VERSION}: upgrade numpynets")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: damaged or truncated model file ({exc})") from None
    try:
        decoded = {k: json.loads(meta[k]) if k in ("architecture", "recipe", "metrics") else v
                   for k, v in meta.items()}
    except (json.JSONDecodeError, TypeError):                  # TypeError: a value that is not a string
        raise ModelFileError(f"{path}: damaged metadata (invalid JSON)") from None
    return decoded, tensors


def load_native(path):
    """Rebuild the model stored in ``path``; returns ``(model, metadata)``."""
    from ..models.registry import build

    meta, tensors = read_native(path)
    try:
        model = build(meta["architecture"], seed=0)
        for name, t in tensors.items():
            if t.dtype != model.dtype:
                raise ModelFileError(f"{path}: tensor {name} is {t.dtype}, expected {model.dtype}")
        model.load_state_dict(tensors)
    except NumpynetsError as exc:
        raise ModelFileError(f"{path}: the weights disagree with the file's architecture ({exc})") from None
    return model, meta
