"""Runs as ``numpynets plot`` sees them: a run folder (``log.csv`` and
``config.json``) or a bare log file read into a :class:`Run`, its key figures
(:func:`summarize`) and the summary table printed beside the plot.

Every log is read through :func:`numpynets.io.logs.read_log`, so the original
project's log formats work too. Nothing here needs matplotlib.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NumpynetsError
from ..io.logs import read_log
from ..jsonfile import read_json
from ..rundir import RunDir


@dataclass
class Run:
    """One run to draw: its epochs (dicts with the keys of
    :data:`numpynets.io.logs.COLUMNS`, None where a log lacks a value) and
    what its config.json says."""
    label: str
    source: Path                      # the run folder or log file given
    log: Path
    rows: list
    fmt: str = "numpynets"
    config: dict | None = None
    result: dict | None = field(default=None)   # config.json "result": written when the run ends


def load_run(path) -> Run:
    """A run folder (``log.csv`` and ``config.json``) or a log file."""
    p = Path(path)
    if p.is_dir():
        log = RunDir(p).log
        if not log.is_file():
            raise NumpynetsError(f"{path}: a folder with no log.csv in it; give a run folder "
                                 "(numpynets train --out DIR) or a log file")
        config_path = RunDir(p).config
    elif p.is_file():
        log = p
        config_path = RunDir(p.parent).config if p.name == RunDir.LOG else None
    else:
        raise NumpynetsError(f"{path}: no such run folder or log file")
    rows, fmt = read_log(log)
    config = _read_config(config_path) if config_path else None
    if config:
        dataset = config.get("dataset")                # named when it is not the models' usual one
        other = f", {dataset}" if isinstance(dataset, str) and dataset not in ("mnist", "xor") else ""
        label = f"{config.get('model', '?')} ({config.get('recipe_name', 'default')}{other})"
    elif p.is_dir() or p.name == RunDir.LOG:
        label = log.parent.resolve().name
    else:
        label = p.stem if fmt == "numpynets" else f"{p.stem} ({fmt})"
    result = config.get("result") if config else None
    return Run(label=label, source=p, log=log, rows=rows, fmt=fmt, config=config,
               result=result if isinstance(result, dict) else None)


def _read_config(path: Path) -> dict | None:
    try:
        obj = read_json(path, "run config")             # strict: no NaN, no deep nesting, no huge ints
        return obj if isinstance(obj, dict) else None
    except NumpynetsError:
        return None                   # no config (a bare log) or a damaged one: label from the path


def load_runs(paths, log=print) -> list[Run]:
    """Every run that has at least one epoch logged (others are named and
    skipped), with labels made unique by the folder name."""
    if not paths:
        raise NumpynetsError("give at least one run folder or log file")
    runs = []
    for path in paths:
        run = load_run(path)
        if run.rows:
            runs.append(run)
        else:
            log(f"{path}: no epoch logged yet; left out")
    if not runs:
        raise NumpynetsError("nothing to plot: no epoch logged in " + ", ".join(map(str, paths)))
    _unique_labels(runs)
    return runs


def _unique_labels(runs: list[Run]) -> None:
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.label] = counts.get(r.label, 0) + 1
    for r in runs:
        if counts[r.label] > 1:
            folder = r.log.parent.resolve().name if r.log.name == RunDir.LOG else r.log.name
            r.label = f"{r.label} {folder}"
    seen: dict[str, int] = {}
    for r in runs:                    # still equal (same folder name in different places): number them
        seen[r.label] = seen.get(r.label, 0) + 1
        if seen[r.label] > 1:
            r.label = f"{r.label} #{seen[r.label]}"


# -- figures per run ----------------------------------------------------------

def series(run: Run, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of the rows that have ``key``."""
    xs, ys = [], []
    for r in run.rows:
        v = r.get(key)
        if v is not None and math.isfinite(v):
            xs.append(int(r["epoch"]))
            ys.append(float(v))
    return xs, ys


def cumulative_seconds(run: Run) -> tuple[list[int], list[float]]:
    """Training time at the end of each logged epoch. A log that skips epochs
    (XOR logs every N-th) counts each logged epoch's time for the epochs since
    the previous row."""
    xs, ys, total, prev = [], [], 0.0, 0
    for r in run.rows:
        s, e = r.get("epoch_seconds"), int(r["epoch"])
        if s is None:
            prev = e
            continue
        total += float(s) * max(e - prev, 1)
        prev = e
        xs.append(e)
        ys.append(total)
    return xs, ys


def summarize(run: Run) -> dict:
    """The key figures of a run: epochs, final/best validation accuracy, test
    accuracy (finished runs), total training time, how it stopped."""
    ve, val = series(run, "val_accuracy")
    _, cum = cumulative_seconds(run)
    best = max(range(len(val)), key=val.__getitem__) if val else None
    res = run.result or {}
    if run.result:
        stopped = str(res.get("stopped") or "completed")
    elif run.config is not None:
        stopped = "unfinished"        # config.json without a result: still running, or killed
    else:
        stopped = None
    recipe = (run.config or {}).get("recipe")
    planned = _number(recipe.get("epochs")) if isinstance(recipe, dict) else None
    return {
        "label": run.label,
        "epochs": int(run.rows[-1]["epoch"]),
        "planned_epochs": planned,
        "final_val_accuracy": val[-1] if val else None,
        "best_val_accuracy": val[best] if val else None,
        "best_epoch": ve[best] if val else None,
        "test_accuracy": _number(res.get("test_accuracy")),
        "train_seconds": cum[-1] if cum else None,
        "stopped": stopped,
    }


def _number(v) -> float | None:
    """A figure from config.json, or None when it is not a number (a file
    edited by hand or written by another version must not stop the plot)."""
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _pct(v) -> str:
    return "-" if v is None else f"{v:.2f}%"


def format_seconds(s) -> str:
    if s is None:
        return "-"
    if not math.isfinite(s):                  # a log with absurd times: say so, do not crash
        return f"{s} s"
    if s < 100:
        return f"{s:.2f} s"
    m, sec = divmod(s, 60)
    return f"{int(m)} min {sec:04.1f} s" if m < 60 else f"{int(m // 60)} h {int(m % 60):02d} min"


def summary_table(runs: list[Run]) -> str:
    """One line per run: epochs, final and best validation accuracy, test
    accuracy, total training time, how the run stopped."""
    head = ["run", "epochs", "final val", "best val (epoch)", "test", "train time", "stopped"]
    body = []
    for run in runs:
        s = summarize(run)
        epochs = str(s["epochs"])
        if s["planned_epochs"] and s["planned_epochs"] != s["epochs"]:
            epochs += f"/{s['planned_epochs']}"
        best = "-" if s["best_val_accuracy"] is None else f"{s['best_val_accuracy']:.2f}% ({s['best_epoch']})"
        body.append([s["label"], epochs, _pct(s["final_val_accuracy"]), best, _pct(s["test_accuracy"]),
                     format_seconds(s["train_seconds"]), (s["stopped"] or "-").replace("_", " ")])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])
