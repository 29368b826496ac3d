"""numpynets plot RUN_OR_LOG... [-o curves.png]"""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="training curves of one or more runs, and a summary table",
                       description="Draw loss, validation accuracy, learning rate, seconds per epoch and "
                       "cumulative training time of one or more runs in one figure, and print a summary "
                       "table. Without -o the figure opens in a window when there is a display, and is "
                       "written to curves.png otherwise.")
    p.add_argument("runs", nargs="+", metavar="RUN_OR_LOG",
                   help="a run folder (log.csv + config.json) or a log file (ours or the original project's)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the figure here (.png, .pdf, .svg)")
    p.add_argument("--dpi", type=int, default=100, help="dots per inch of a PNG (default 100: 1500x850 pixels)")
    p.add_argument("--title", help="the figure's title")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..apps.plots import plot_runs
    from ..errors import ConfigError

    if not 10 <= args.dpi <= 600:
        raise ConfigError(f"--dpi must be between 10 and 600, got {args.dpi}")
    plot_runs(args.runs, out=args.output, dpi=args.dpi, title=args.title)
    return 0
