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
import os
from pathlib import Path

import numpy as np

from ..atomic import replace_atomically
from ..checks import show
from ..errors import ModelFileError, NumpynetsError

FORMAT = "numpynets"
FORMAT_VERSION = "1"
# tensors named so are a resumable checkpoint's training state (optimizer
# moments, see numpynets.train.checkpoint), not weights: loading skips them
TRAINING_PREFIX = "training/"


def atomic_save(path, writer) -> None:
    """Call ``writer(tmp_path)`` then rename over ``path`` (see
    :func:`numpynets.atomic.replace_atomically`), with a one-line error."""
    try:
        replace_atomically(path, writer)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot write ({exc.strerror or exc}); choose another output path") from None


def model_file_contents(model, recipe: dict | None = None, metrics: dict | None = None) -> tuple[dict, dict]:
    """(tensors, string metadata) of the model file of ``model``."""
    tensors = {n: np.ascontiguousarray(p) for n, p, _ in model.named_parameters()}
    tensors.update((n, np.ascontiguousarray(b)) for n, b in model.named_buffers())
    arch = model.architecture()                                # with the model's name and dataset
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "architecture": json.dumps(arch),
            "recipe": json.dumps(recipe or {}), "metrics": json.dumps(metrics or {})}
    return tensors, meta


def write_safetensors(path, tensors: dict, meta: dict) -> None:
    """safetensors' ``save_file``, then synced to disk (a rename after it
    never exposes a file whose bytes are still only in memory); a failed
    write (disk full, file too large) is an ``OSError`` as for any file."""
    import re

    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    try:
        save_file(tensors, path, metadata=meta)
    except SafetensorError as exc:                             # "I/O error: File too large (os error 27)"
        m = re.search(r"I/O error: (.*) \(os error (\d+)\)", str(exc))
        raise (OSError(int(m.group(2)), m.group(1)) if m else OSError(str(exc))) from None
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_model(path, model, recipe: dict | None = None, metrics: dict | None = None) -> None:
    tensors, meta = model_file_contents(model, recipe, metrics)
    atomic_save(path, lambda tmp: write_safetensors(tmp, tensors, meta))


MAX_HEADER = 100 << 20          # safetensors' own limit for the JSON header (100 MB)


def read_native(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata with JSON fields decoded, tensors) of a numpynets file.

    Every JSON part (the header, and the architecture, recipe and metrics
    strings in its metadata) goes through the strict parser
    (:func:`numpynets.jsonfile.loads`): no NaN/Infinity, no nesting deep
    enough to exhaust the stack, no 4,300-digit integers."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from ..jsonfile import loads

    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            size = path.stat().st_size
            if n <= 1 or n > size - 8 or n > MAX_HEADER:
                raise ModelFileError(f"{path}: not a safetensors model file (bad header); "
                                     "was it written by numpynets? Try 'numpynets convert'")
            raw = f.read(n)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read ({exc.strerror})") from None
    header = loads(raw, f"{path}: not a safetensors model file (header)", ModelFileError)
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "architecture" not in meta:
        raise ModelFileError(f"{path}: not a numpynets model (no architecture in metadata); "
                             "was it written by another tool? Try 'numpynets convert'")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: numpynets format version {str(meta.get('format_version'))[:20]!r}; this "
                             f"numpynets reads version {FORMAT_VERSION}: upgrade numpynets")
    decoded = {}
    for k, v in meta.items():
        if not isinstance(v, str):
            raise ModelFileError(f"{path}: damaged metadata ({str(k)[:40]!r} is not a string)")
        decoded[k] = loads(v, f"{path}: damaged metadata ({k})", ModelFileError) \
            if k in ("architecture", "recipe", "metrics") else v
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError, OverflowError) as exc:
        raise ModelFileError(f"{path}: damaged or truncated model file ({str(exc)[:200]})") from None
    except MemoryError:
        raise ModelFileError(f"{path}: damaged model file (its tensors do not fit in memory)") from None
    return decoded, tensors


def load_native(path):
    """Rebuild the model stored in ``path``; returns ``(model, metadata)``.

    Nothing is allocated for the model until its architecture has been
    checked against the tensors present: layers may take only as many
    parameter values as the file holds (:func:`~numpynets.nn.layer.parameter_budget`),
    and they are built without a random initialisation (the file's values
    replace the zeros)."""
    from ..models.registry import build
    from ..nn.layer import parameter_budget

    meta, tensors = read_native(path)
    tensors = {n: t for n, t in tensors.items() if not n.startswith(TRAINING_PREFIX)}
    held = sum(int(t.size) for t in tensors.values())
    try:
        with parameter_budget(held):
            model = build(meta["architecture"], init=False)
        for name, t in tensors.items():
            if t.dtype != model.dtype:
                raise ModelFileError(f"{path}: tensor {show(name)} is {t.dtype}, expected {model.dtype}")
        model.load_state_dict(tensors)
    except NumpynetsError as exc:
        detail = str(exc) if len(str(exc)) <= 400 else str(exc)[:397] + "..."   # values from the file: cut short
        raise ModelFileError(f"{path}: the weights disagree with the file's architecture ({detail})") from None
    return model, meta
