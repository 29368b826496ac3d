"""The command line: ``numpynets COMMAND ...`` (also ``python -m numpynets``).

Each command lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``. User errors (:class:`~numpynets.errors.NumpynetsError`)
print one line, ``numpynets: error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import NumpynetsError

COMMANDS = ["train", "evaluate", "predict", "data", "plot", "convert", "draw", "attention-map", "export", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numpynets",
        description="Neural networks from scratch on NumPy: train, evaluate and use MNIST and XOR models.")
    parser.add_argument("--version", action="version", version=f"numpynets {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".{name.replace('-', '_')}", __name__).add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except NumpynetsError as exc:
        print(f"numpynets: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("numpynets: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
