"""The run folder: ``log.csv`` (one row per epoch, flushed every epoch) and
``config.json``."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from ..errors import NumpynetsError

LOG_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
               "learning_rate", "epoch_seconds"]


class RunLog:
    """CSV log with the columns of :data:`LOG_COLUMNS`, flushed every row so a
    run that stops (or is stopped) keeps every finished epoch.

    ``keep_epochs=k`` continues an existing log (a resume): the rows of
    epochs after ``k`` and a cut-off last line (a hard stop mid-write) are
    dropped first, atomically. A row that cannot be written (disk full, the
    folder gone) is cut off again and raises a one-line error."""

    def __init__(self, path: Path, keep_epochs: int | None = None):
        self.path = Path(path)
        if keep_epochs is None:
            self.f = open(self.path, "w", newline="", encoding="utf-8")
            self.writer = csv.writer(self.f)
            self._guarded(lambda: self.writer.writerow(LOG_COLUMNS))
        else:
            _truncate_log(self.path, keep_epochs)
            self.f = open(self.path, "a", newline="", encoding="utf-8")
            self.writer = csv.writer(self.f)

    def write(self, row: dict) -> None:
        self._guarded(lambda: self.writer.writerow([_fmt(row.get(c)) for c in LOG_COLUMNS]))

    def _guarded(self, write) -> None:
        pos = self.f.tell()
        try:
            write()
            self.f.flush()
            os.fsync(self.f.fileno())
        except OSError as exc:
            try:                                           # no half row left behind
                self.f.seek(pos)
                self.f.truncate()
            except OSError:
                pass
            raise NumpynetsError(f"{self.path}: cannot write the log ({exc.strerror or exc}); "
                                 "free some space or fix the folder's permissions") from None

    def close(self) -> None:
        try:
            self.f.close()
        except OSError:
            pass


def _truncate_log(path: Path, keep_epochs: int) -> None:
    """Keep the header and the complete rows of epochs 1..keep_epochs."""
    from ..atomic import write_bytes_atomically

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise NumpynetsError(f"{path}: cannot read the run's log ({exc}); it cannot be resumed") from None
    lines = text.split("\n")
    kept = [",".join(LOG_COLUMNS)]
    for line in lines[1:-1]:                               # lines[-1]: after the last newline (or a cut row)
        cells = line.split(",")
        if len(cells) == len(LOG_COLUMNS) and cells[0].isdigit() and int(cells[0]) <= keep_epochs:
            kept.append(line.rstrip("\r"))
    data = ("\r\n".join(kept) + "\r\n").encode("utf-8")
    try:
        write_bytes_atomically(path, data)
    except OSError as exc:
        raise NumpynetsError(f"{path}: cannot write the log ({exc.strerror or exc}); "
                             "free some space or fix the folder's permissions") from None


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
