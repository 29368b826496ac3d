"""Writing a file atomically: into a temp file beside it, then one rename.

A reader (or a crash, or Ctrl-C) sees either the old file or the whole new
one, never half of it, and a failed write leaves the old file as it was and
no temp file behind. Used for every file numpynets writes whole: model
files, config.json, downloaded MNIST files, IDX files.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_atomically(path, writer) -> None:
    """Call ``writer(tmp_path)`` on a new temp file in ``path``'s folder,
    give it the mode a plain ``open(path, "w")`` would (``mkstemp`` makes
    0600), then rename it over ``path``. Raises ``OSError``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".part")
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomically(path, data: bytes) -> None:
    """``path.write_bytes(data)``, atomically (see :func:`replace_atomically`)."""

    def writer(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    replace_atomically(path, writer)
