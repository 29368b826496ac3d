"""Options and output shared by several commands."""

from __future__ import annotations

import json
import math

import numpy as np


def add_data_options(p) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the data set's files, or with a subfolder named after it (default: "
                   "$NUMPYNETS_DATA, ./data, the user cache)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the checksum check of the data files (for your own IDX data of the same shape)")


def add_dataset_option(p, help_: str) -> None:
    from ..data.datasets import DATASETS

    p.add_argument("--dataset", metavar="NAME", help=f"{help_} (one of {', '.join(DATASETS)})")


def model_dataset(model, chosen: str | None, force: bool, model_file) -> str:
    """The data set to use with ``model``: its own (recorded in the model
    file), or ``chosen`` when it is the same, or when ``force`` is given."""
    from ..data.datasets import get_dataset
    from ..errors import ConfigError

    own = model.dataset                                       # declared by Sequential
    if chosen is None or chosen == own:
        return own
    get_dataset(chosen)                                       # an unknown name lists the known ones
    if not force:
        raise ConfigError(f"{model_file}: the model was trained on {own}, not {chosen}; drop --dataset to use "
                          f"its own data set, or pass --force to use it on {chosen} anyway")
    return chosen


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
