"""Training curves of one or many runs in one figure, and a summary table.

``numpynets plot RUN_OR_LOG ... [-o curves.png]`` reads each run's
``log.csv`` (and, for a run folder, its ``config.json``: the label
"model (recipe)" and, once the run has finished, its test accuracy) and draws
six panels that share one legend:

    loss (train solid, validation dashed) | validation accuracy | learning rate
    seconds per epoch                     | cumulative time     | legend + key figures

It replaces the original project's ``plot_comparison.py``, which drew one
run's loss and epoch times from a log file no program wrote. Logs in the
original project's formats are read too (through :mod:`numpynets.io.logs`).

matplotlib is an optional extra, imported inside the functions that draw.
Writing a file never touches pyplot or the global backend (a bare
:class:`matplotlib.figure.Figure` renders with Agg); only showing a window
does.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NumpynetsError
from ..io.logs import read_log

PLOT_EXTRA = 'pip install "numpynets[plot]"'
FIGSIZE = (15.0, 8.5)          # inches; at the default 100 dpi a 1500 x 850 pixel PNG
DPI = 100
DEFAULT_OUT = "curves.png"     # where a figure goes when there is no display and no -o
_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


def require_matplotlib():
    """The matplotlib module, or a one-line error naming the extra to install."""
    try:
        import matplotlib
    except ImportError:
        raise NumpynetsError(f"matplotlib is not installed and plots need it; run: {PLOT_EXTRA}") from None
    return matplotlib


def has_display() -> bool:
    """Whether a window can be opened: not when MPLBACKEND names a file-only
    backend, and on Linux/BSD only with an X11 or Wayland display."""
    if os.environ.get("MPLBACKEND", "").lower() in _NON_INTERACTIVE:
        return False
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


# -- reading runs ------------------------------------------------------------

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
        log = p / "log.csv"
        if not log.is_file():
            raise NumpynetsError(f"{path}: a folder with no log.csv in it; give a run folder "
                                 "(numpynets train --out DIR) or a log file")
        config_path = p / "config.json"
    elif p.is_file():
        log = p
        config_path = p.parent / "config.json" if p.name == "log.csv" else None
    else:
        raise NumpynetsError(f"{path}: no such run folder or log file")
    rows, fmt = read_log(log)
    config = _read_config(config_path) if config_path else None
    if config:
        label = f"{config.get('model', '?')} ({config.get('recipe_name', 'default')})"
    elif p.is_dir() or p.name == "log.csv":
        label = log.parent.resolve().name
    else:
        label = p.stem if fmt == "numpynets" else f"{p.stem} ({fmt})"
    result = config.get("result") if config else None
    return Run(label=label, source=p, log=log, rows=rows, fmt=fmt, config=config,
               result=result if isinstance(result, dict) else None)


def _read_config(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
        return obj if isinstance(obj, dict) else None
    except (OSError, ValueError):
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
            folder = r.log.parent.resolve().name if r.log.name == "log.csv" else r.log.name
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
        stopped = res.get("stopped") or "completed"
    elif run.config is not None:
        stopped = "unfinished"        # config.json without a result: still running, or killed
    else:
        stopped = None
    planned = (run.config or {}).get("recipe", {}).get("epochs") if run.config else None
    return {
        "label": run.label,
        "epochs": int(run.rows[-1]["epoch"]),
        "planned_epochs": planned,
        "final_val_accuracy": val[-1] if val else None,
        "best_val_accuracy": val[best] if val else None,
        "best_epoch": ve[best] if val else None,
        "test_accuracy": res.get("test_accuracy"),
        "train_seconds": cum[-1] if cum else None,
        "stopped": stopped,
    }


def _pct(v) -> str:
    return "-" if v is None else f"{v:.2f}%"


def format_seconds(s) -> str:
    if s is None:
        return "-"
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


# -- drawing ------------------------------------------------------------------

def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.5")


def draw(fig, runs: list[Run], title: str | None = None) -> None:
    """Draw the six panels for ``runs`` on ``fig``."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    axes = fig.subplots(2, 3)
    ax_loss, ax_acc, ax_lr = axes[0]
    ax_time, ax_cum, ax_key = axes[1]
    colours = _colours(len(runs))
    max_epoch = max(int(r.rows[-1]["epoch"]) for r in runs)
    few = max(len(r.rows) for r in runs) <= 30       # markers show single epochs and short runs

    def plot(ax, xs, ys, colour, **kw):
        if xs:
            ax.plot(xs, ys, color=colour, marker="o" if few else None, markersize=3.5, linewidth=1.6, **kw)
        return bool(xs)

    drawn = {"loss": False, "val_loss": False, "acc": False, "train_acc": False, "lr": False, "time": False}
    losses = []
    for run, c in zip(runs, colours):
        xs, ys = series(run, "train_loss")
        drawn["loss"] |= plot(ax_loss, xs, ys, c)
        losses += ys
        xs, ys = series(run, "val_loss")
        drawn["val_loss"] |= plot(ax_loss, xs, ys, c, linestyle="--")
        losses += ys
        xs, ys = series(run, "val_accuracy")
        if xs:
            drawn["acc"] |= plot(ax_acc, xs, ys, c)
            b = max(range(len(ys)), key=ys.__getitem__)
            ax_acc.plot([xs[b]], [ys[b]], marker="*", markersize=11, color=c, markeredgecolor="k",
                        markeredgewidth=0.6, linestyle="none")
        else:                                         # no validation in this log: its train accuracy, dotted
            xs, ys = series(run, "train_accuracy")
            drawn["train_acc"] |= plot(ax_acc, xs, ys, c, linestyle=":")
        drawn["lr"] |= plot(ax_lr, *series(run, "learning_rate"), c)
        drawn["time"] |= plot(ax_time, *series(run, "epoch_seconds"), c)
        plot(ax_cum, *cumulative_seconds(run), c)

    # loss spans decades over a run: log scale when it does
    if losses and min(losses) > 0 and max(losses) / min(losses) > 20:
        ax_loss.set_yscale("log")
    cum_max = max((cumulative_seconds(r)[1] or [0])[-1] for r in runs)
    if cum_max > 300:                                 # minutes read better than thousands of seconds
        for line in ax_cum.get_lines():
            line.set_ydata([y / 60 for y in line.get_ydata()])
        ax_cum.relim()
        ax_cum.autoscale_view()
    panels = [
        (ax_loss, "Loss" + (" (train solid, validation dashed)" if drawn["val_loss"] else " (train)"),
         "loss", drawn["loss"] or drawn["val_loss"]),
        (ax_acc, "Validation accuracy" + (" (train dotted where no validation)" if drawn["train_acc"] else ""),
         "accuracy (%)", drawn["acc"] or drawn["train_acc"]),
        (ax_lr, "Learning rate (end of epoch)", "learning rate", drawn["lr"]),
        (ax_time, "Seconds per epoch", "seconds", drawn["time"]),
        (ax_cum, "Cumulative training time", "minutes" if cum_max > 300 else "seconds", drawn["time"]),
    ]
    for ax, name, ylabel, has_data in panels:
        ax.set_title(name, fontsize=11)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5 if max_epoch < 10 else 0, max_epoch + (0.5 if max_epoch < 10 else max_epoch * 0.02))
        if not has_data:
            _empty(ax, "not in these logs")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in (ax_time, ax_cum):                      # times compare honestly from zero
        ax.set_ylim(bottom=0)

    # the sixth panel: the one legend, each run with its key figures, and the line-style key
    ax_key.axis("off")
    handles = []
    detailed = len(runs) <= 6                         # three lines per run; one figure line beyond that
    for run, c in zip(runs, colours):
        s = summarize(run)
        scores, course = [], [f"{s['epochs']} epoch{'s' * (s['epochs'] != 1)}"]
        if s["test_accuracy"] is not None:
            scores.append(f"test {s['test_accuracy']:.2f}%")
        if s["best_val_accuracy"] is not None:
            scores.append(f"best val {s['best_val_accuracy']:.2f}% (epoch {s['best_epoch']})")
        if s["train_seconds"] is not None:
            course.append(format_seconds(s["train_seconds"]))
        if s["stopped"] and s["stopped"] != "completed":
            course.append(s["stopped"].replace("_", " "))
        lines = [run.label, ", ".join(scores)] + ([", ".join(course)] if detailed else [])
        text = "\n".join(line for line in lines if line)
        handles.append(Line2D([], [], color=c, linewidth=2.5, label=text))
    style = [Line2D([], [], color="0.3", label="train loss"),
             Line2D([], [], color="0.3", linestyle="--", label="validation loss")]
    if drawn["train_acc"]:
        style.append(Line2D([], [], color="0.3", linestyle=":", label="train accuracy (no validation)"))
    if drawn["acc"]:
        style.append(Line2D([], [], color="0.3", marker="*", markersize=10, markeredgecolor="k",
                            linestyle="none", label="best validation accuracy"))
    size = 10 if len(runs) <= 4 else 9 if len(runs) <= 7 else 7.5
    leg = ax_key.legend(handles=handles, loc="upper left", fontsize=size, frameon=False,
                        ncol=1 if len(runs) <= 8 else 2, title="runs", title_fontsize=size + 1,
                        alignment="left", borderaxespad=0.0)
    ax_key.add_artist(leg)
    ax_key.legend(handles=style, loc="lower left", fontsize=9, frameon=False, ncol=2, borderaxespad=0.0)
    fig.suptitle(title or ("Training curves: " + (runs[0].label if len(runs) == 1 else f"{len(runs)} runs")),
                 fontsize=14)


def check_output(out) -> Path:
    """Fail early (before any drawing) on a folder that does not exist or a
    suffix matplotlib cannot write."""
    from matplotlib.backend_bases import FigureCanvasBase

    out = Path(out)
    if not out.parent.is_dir():
        raise NumpynetsError(f"{out}: the folder {out.parent} does not exist")
    kinds = FigureCanvasBase.get_supported_filetypes()
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in kinds:
        raise NumpynetsError(f"{out}: matplotlib cannot write {'.' + suffix if suffix else 'a file without a suffix'}"
                             "; name it .png, .pdf or .svg")
    return out


def save_figure(fig, out, dpi: int = DPI) -> Path:
    """Write ``fig`` to ``out`` (format from the suffix: png, pdf, svg, ...)."""
    out = check_output(out)
    try:
        fig.savefig(out, dpi=dpi)
    except OSError as exc:
        raise NumpynetsError(f"{out}: cannot write the figure ({exc.strerror or exc})") from None
    return out


def plot_runs(paths, out=None, dpi: int = DPI, show: bool | None = None, title: str | None = None,
              log=print) -> Path | None:
    """Print the summary table of ``paths`` (run folders or log files) and
    draw their curves: to ``out`` if given; else in a window when there is a
    display (``show`` forces either way); else to ``curves.png``. Returns the
    file written, or None when a window was shown."""
    require_matplotlib()
    if out is not None:
        check_output(out)
    runs = load_runs(paths, log=log)
    log(summary_table(runs))
    if out is None and (show is False or (show is None and not has_display())):
        out = DEFAULT_OUT
        note = " (no display to open a window on; choose the file with -o)"
    else:
        note = ""
    if out is None:
        import matplotlib.pyplot as plt

        if plt.get_backend().lower() not in _NON_INTERACTIVE:
            fig = plt.figure(figsize=FIGSIZE, layout="constrained")
            draw(fig, runs, title)
            plt.show()
            return None
        out, note = DEFAULT_OUT, f" (matplotlib's backend {plt.get_backend()} cannot open a window)"
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, layout="constrained")
    draw(fig, runs, title)
    path = save_figure(fig, out, dpi)
    log(f"wrote {path}{note}")
    return path
