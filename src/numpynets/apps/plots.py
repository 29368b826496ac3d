"""Training curves of one or many runs in one figure (the summary table beside
it comes from :mod:`numpynets.apps.run_summary`).

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

import os
import sys
from pathlib import Path

from ..errors import NumpynetsError
from .run_summary import Run, cumulative_seconds, format_seconds, load_runs, series, summarize, summary_table

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
