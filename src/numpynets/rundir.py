"""The run folder: the one place that knows its file names.

``numpynets train`` writes, in ``runs/<model>-<timestamp>/`` or ``--out``:

* ``model.safetensors``: the final model;
* ``best.safetensors``: the best epoch so far (lowest validation loss);
* ``checkpoint.safetensors``: everything an exact ``--resume`` needs after
  the last completed epoch (a model file too: it loads and evaluates);
* ``log.csv``: one row per epoch;
* ``config.json``: the resolved configuration and, when the run ends, its
  result.

Every reader and writer asks a :class:`RunDir` for these paths instead of
spelling the names.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import NumpynetsError


class RunDir:
    """A run folder. ``RunDir(path).model`` is ``path/model.safetensors``, and
    so on; ``os.fspath`` and ``/`` work as on the folder's ``Path``."""

    MODEL = "model.safetensors"
    BEST = "best.safetensors"
    CHECKPOINT = "checkpoint.safetensors"
    LOG = "log.csv"
    CONFIG = "config.json"
    MODEL_FILES = (MODEL, BEST)           # the model files a folder given as a model is searched for

    def __init__(self, path):
        self.path = Path(path)

    model = property(lambda self: self.path / self.MODEL)
    best = property(lambda self: self.path / self.BEST)
    checkpoint = property(lambda self: self.path / self.CHECKPOINT)
    log = property(lambda self: self.path / self.LOG)
    config = property(lambda self: self.path / self.CONFIG)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name) -> Path:
        return self.path / name

    def holds_run(self) -> bool:
        """Whether the folder holds anything of a run worth keeping: a model,
        a checkpoint or a log with a row (a run stopped before its first
        checkpoint leaves only a header, and the folder may be used again)."""
        if self.model.exists() or self.checkpoint.exists():
            return True
        try:
            with open(self.log, "rb") as f:
                return len(f.read(1 << 16).split(b"\n", 1)[-1].strip()) > 0
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError:                                    # unreadable: keep it
            return True

    def model_file(self) -> Path | None:
        """The first model file the folder holds (final, then best), or None."""
        for name in self.MODEL_FILES:
            if (self.path / name).is_file():
                return self.path / name
        return None

    @classmethod
    def create(cls, out: str | None, model_name: str, root: str = "runs") -> RunDir:
        """``out`` exactly if given (it must not already hold a run), else
        ``runs/<model>-<timestamp>`` (with a suffix if that exists); checked
        writable."""
        if out:
            run = cls(out)
            if run.holds_run():
                raise NumpynetsError(f"{run}: already holds a run; choose another --out or delete it")
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run, i = cls(Path(root) / f"{model_name}-{stamp}"), 1
            while run.path.exists():
                i += 1
                run = cls(Path(root) / f"{model_name}-{stamp}-{i}")
        try:
            run.path.mkdir(parents=True, exist_ok=True)
            probe = run.path / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise NumpynetsError(f"{run}: cannot write the run folder ({exc.strerror}); "
                                 "choose another with --out") from None
        return run

    @classmethod
    def existing(cls, path) -> RunDir:
        """A run folder to resume: it must exist and hold config.json and the
        checkpoint."""
        run = cls(path)
        if not run.path.is_dir():
            raise NumpynetsError(f"{run}: no such run folder; give --resume the folder a run was written to")
        for f, what in ((run.config, cls.CONFIG), (run.checkpoint, f"checkpoint ({cls.CHECKPOINT})")):
            if not f.is_file():
                raise NumpynetsError(f"{run}: no {what} in it, so it cannot be resumed; start a new run instead")
        return run
