"""Options and output shared by several commands."""

from __future__ import annotations

import json
import math

import numpy as np


def add_data_options(p) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the MNIST files (default: $NUMPYNETS_DATA, ./data, the user cache)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the SHA-256 check of the MNIST files (for custom data sets)")


def add_threads_option(p) -> None:
    p.add_argument("--threads", default="auto", metavar="N",
                   help="BLAS threads: a number, or 'auto' (the cores not busy with other work; default)")


def print_json(obj: dict) -> None:
    """One JSON object on one line (NaN/inf become null)."""
    print(json.dumps(_clean(obj), separators=(",", ":")))


def _clean(v):
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
