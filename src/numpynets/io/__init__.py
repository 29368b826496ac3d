"""Model files: the native safetensors format (and, via ``load_model``, any
format numpynets can read: also the original project's ``.bin`` files, see
:mod:`numpynets.io.original`)."""

from pathlib import Path

from ..errors import ModelFileError
from ..rundir import RunDir
from .native import load_native, read_native, save_model  # noqa: F401


def load(path):
    """The model stored in ``path`` (a native ``.safetensors`` file, a run
    folder, or one of the original project's ``.bin`` files), as a
    :class:`~numpynets.nn.sequential.Sequential` with its name and dataset;
    published as ``numpynets.load``. :func:`load_model` also returns the
    file's metadata."""
    return load_model(path)[0]


def load_model(path):
    """Load any model file numpynets reads; returns ``(model, metadata)``."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{path}: no such model file")
    if p.is_dir():
        found = RunDir(p).model_file()
        if found is not None:
            return load_native(found)
        raise ModelFileError(f"{path}: a folder with no {RunDir.MODEL} in it")
    from .original import looks_like_safetensors

    if p.suffix != ".safetensors" and not looks_like_safetensors(p):
        from .original_models import read_original     # the original project's .bin files

        return read_original(p)
    return load_native(p)
