"""The run folder: ``log.csv`` (one row per epoch, flushed every epoch) and
``config.json``."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

from ..errors import NumpynetsError

LOG_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
               "learning_rate", "epoch_seconds"]


def make_run_dir(out: str | None, model_name: str, root: str = "runs") -> Path:
    """``out`` exactly if given (it must not already hold a run), else
    ``runs/<model>-<timestamp>`` (with a suffix if that exists)."""
    if out:
        path = Path(out)
        if (path / "log.csv").exists() or (path / "model.safetensors").exists():
            raise NumpynetsError(f"{path}: already holds a run; choose another --out or delete it")
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(root) / f"{model_name}-{stamp}"
        i = 1
        while path.exists():
            i += 1
            path = Path(root) / f"{model_name}-{stamp}-{i}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise NumpynetsError(f"{path}: cannot write the run folder ({exc.strerror}); "
                             "choose another with --out") from None
    return path


class RunLog:
    """CSV log with the columns of :data:`LOG_COLUMNS`, flushed every row so a
    run that stops (or is stopped) keeps every finished epoch."""

    def __init__(self, path: Path):
        self.path = path
        self.f = open(path, "w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.f)
        self.writer.writerow(LOG_COLUMNS)
        self.f.flush()

    def write(self, row: dict) -> None:
        self.writer.writerow([_fmt(row.get(c)) for c in LOG_COLUMNS])
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def write_json(path: Path, obj: dict) -> None:
    from ..io.native import atomic_save
    from ..jsonfile import finite

    def writer(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(finite(obj), f, indent=2, default=str, allow_nan=False)   # NaN -> null: strict readers
            f.write("\n")

    atomic_save(path, writer)
