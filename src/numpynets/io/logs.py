"""Training logs, ours and the original project's, read into one table.

:func:`read_log` returns ``(rows, format_name)``: one dict per epoch with
our ``log.csv`` columns (:data:`COLUMNS`); a figure the file does not have
is ``None``. Accuracies are percentages, times seconds, in every format.

Formats (ORIGINAL.md §3.4 and §4.2), by the name :func:`read_log` gives them:

* ``numpynets``: our ``log.csv``; a header naming (a subset of) our columns.
* ``original-mlp``: ``training_loss_adam.txt`` / ``training_loss_sgd.txt``;
  header ``epoch,train_loss,train_time,val_loss,val_accuracy,learning_rate``.
* ``original-cnn``: ``training_loss_cnn.txt``, no header, 6 columns:
  epoch, loss, seconds, val loss, val accuracy %, learning rate.
* ``original-attention``: ``training_loss_attention.txt``, no header, 4
  columns: epoch, loss, val accuracy %, seconds (accuracy *before* time).
* ``original-c``: ``training_loss_c.txt`` of ``plot_comparison.py``, no
  header, 3 columns: epoch, loss, seconds.

The format is recognised from the header line, or, without one, from the
number of columns; a file name of the original's (``training_loss_cnn``...)
must agree with what the contents say. Anything else, or a row that does not
parse, is a :class:`~numpynets.errors.NumpynetsError` naming the file and the
line. The attention program's epoch time includes validation; the others'
do not.

Example (the plots of ``numpynets plot`` use it this way)::

    rows, fmt = read_log("logs/training_loss_cnn.txt")
    epochs = [r["epoch"] for r in rows]
    val_acc = [r["val_accuracy"] for r in rows]          # None where not logged
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import NumpynetsError
from ..rundir import RunDir

COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds"]

ORIGINAL_MLP_HEADER = ["epoch", "train_loss", "train_time", "val_loss", "val_accuracy", "learning_rate"]

# headerless formats: number of columns -> (format name, our column for each)
HEADERLESS = {
    6: ("original-cnn", ["epoch", "train_loss", "epoch_seconds", "val_loss", "val_accuracy", "learning_rate"]),
    4: ("original-attention", ["epoch", "train_loss", "val_accuracy", "epoch_seconds"]),
    3: ("original-c", ["epoch", "train_loss", "epoch_seconds"]),
}

# the original's file names and the format each must hold
NAMED = {"training_loss_adam": "original-mlp", "training_loss_sgd": "original-mlp",
         "training_loss_cnn": "original-cnn", "training_loss_attention": "original-attention",
         "training_loss_c": "original-c"}


class LogError(NumpynetsError):
    """A log file that cannot be read as any known format."""


def _number(text: str) -> float | None:
    text = text.strip()
    if text == "":
        return None
    return float(text)                 # also NaN, inf: what Rust prints for a diverged loss


def _is_number(text: str) -> bool:
    try:
        _number(text)
        return True
    except ValueError:
        return False


def _split(line: str) -> list[str]:
    return [f.strip() for f in line.split(",")]


def read_log(path) -> tuple[list[dict], str]:
    """Read a training log of any known format.

    ``path`` is a log file or a run folder (its ``log.csv``). Returns
    ``(rows, format_name)``: ``rows`` is a list of dicts, one per logged epoch
    in file order, each with every key of :data:`COLUMNS` (``epoch`` an int,
    the rest floats or ``None``); ``format_name`` is one of ``numpynets``,
    ``original-mlp``, ``original-cnn``, ``original-attention``,
    ``original-c``. Raises :class:`LogError` (one line, naming the file) for
    a missing, empty, ambiguous or unparsable file.
    """
    path = Path(path)
    if path.is_dir():
        path = RunDir(path).log
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LogError(f"{path}: no such log file") from None
    except OSError as exc:
        raise LogError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise LogError(f"{path}: not a text file, so not a training log") from None
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    if not lines:
        raise LogError(f"{path}: empty log file (no epochs logged)")
    fmt, columns, data = _recognise(path, lines)
    rows = []
    for lineno, line in data:
        fields = _split(line)
        if len(fields) != len(columns):
            raise LogError(f"{path}, line {lineno}: {len(fields)} columns, the {fmt} format has "
                           f"{len(columns)} ({','.join(columns)})")
        row = dict.fromkeys(COLUMNS)
        for name, field in zip(columns, fields):
            if name not in row:                          # a column we do not use
                continue
            try:
                row[name] = _number(field)
            except ValueError:
                raise LogError(f"{path}, line {lineno}: {name} is {field!r}, not a number") from None
        row["epoch"] = _epoch(path, lineno, row["epoch"])
        rows.append(row)
    return rows, fmt


MAX_EPOCH = 10**9          # a larger epoch number is a damaged file, not a training run


def _epoch(path, lineno, v) -> int:
    if v is None or not math.isfinite(v) or v != int(v) or v < 0:
        raise LogError(f"{path}, line {lineno}: the epoch is {v!r}, not a whole number")
    if v > MAX_EPOCH:
        raise LogError(f"{path}, line {lineno}: the epoch is {v:g}, more than {MAX_EPOCH:,} (a damaged log?)")
    return int(v)


def _recognise(path: Path, lines) -> tuple[str, list[str], list]:
    """(format name, the file's columns under our names, the data lines)."""
    lineno, first = lines[0]
    fields = _split(first)
    named = NAMED.get(path.stem)
    if not all(_is_number(f) for f in fields):            # a header line
        names = [f.lower() for f in fields]
        if names == ORIGINAL_MLP_HEADER:
            fmt = "original-mlp"
            columns = ["epoch", "train_loss", "epoch_seconds", "val_loss", "val_accuracy", "learning_rate"]
        elif "epoch" in names and set(names) <= set(COLUMNS) and len(set(names)) == len(names):
            fmt, columns = "numpynets", names
        else:
            raise LogError(f"{path}: unknown log header {first.strip()!r}; known: ours "
                           f"({','.join(COLUMNS)}) and the original MLP's ({','.join(ORIGINAL_MLP_HEADER)})")
        if named and named != fmt:
            raise LogError(f"{path}: the name says {named} but the header is the {fmt} format's; "
                           "rename the file if its contents are right")
        return fmt, columns, lines[1:]
    if len(fields) not in HEADERLESS:
        raise LogError(f"{path}: {len(fields)} columns and no header: not a training log numpynets knows "
                       f"(the original's headerless logs have 6 (cnn), 4 (attention) or 3 (epoch,loss,time))")
    fmt, columns = HEADERLESS[len(fields)]
    if named and named != fmt:
        raise LogError(f"{path}: the name says {named} but its {len(fields)} columns are the {fmt} format's; "
                       "rename the file if its contents are right")
    return fmt, columns, lines
