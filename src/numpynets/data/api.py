"""The library's data API: ``load(name) -> (train, test)`` and
``batches(data, batch_size)``.

``load`` is a thin table over the loaders of each data set (the MNIST
finder/verifier/downloader in :mod:`numpynets.data.mnist`, the four XOR
rows); it adds nothing of its own, so a data-set registry can take its
place entry by entry. A data set is a :class:`~numpynets.data.mnist.Split`:
``x`` the samples (float32), ``y`` the targets, ``len()`` the count.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from ..errors import ConfigError
from .datasets import DATASETS as IMAGE_DATASETS
from .mnist import Split, load_dataset, load_mnist
from .xor import xor_data

__all__ = ["load", "batches", "DATASETS", "Split"]


def _mnist(data_dir, download: bool) -> tuple[Split, Split]:
    mn = load_mnist(data_dir, val_fraction=0.0, download_missing=download)    # says what it downloads
    return mn.train, mn.test                       # (60000, 28, 28) / (10000, 28, 28) float32, y int64


def _xor(data_dir, download: bool) -> tuple[Split, Split]:
    data = xor_data()                              # x (4, 2) float32, y (4, 1) float32
    return data, Split(data.x.copy(), data.y.copy())


def _image(name: str) -> Callable[..., tuple[Split, Split]]:
    """The loader of a registered image data set (:mod:`numpynets.data.datasets`)."""
    def loader(data_dir, download: bool) -> tuple[Split, Split]:
        d = load_dataset(name, data_dir, val_fraction=0.0, download_missing=download)
        return d.train, d.test                     # (60000, 28, 28) / (10000, 28, 28) float32, y int64
    return loader


# name -> loader(data_dir, download) -> (train, test): every registered image data set, and XOR
DATASETS: dict[str, Callable[..., tuple[Split, Split]]] = {
    **{name: _image(name) for name in IMAGE_DATASETS}, "mnist": _mnist, "xor": _xor}


def load(name: str, data_dir=None, download: bool = True) -> tuple[Split, Split]:
    """``(train, test)`` of the data set ``name``.

    * ``"mnist"``: train ``x (60000, 28, 28)`` float32 in [0, 1], ``y (60000,)``
      int64 digits; test ``x (10000, 28, 28)``, ``y (10000,)``. The files are
      looked up in ``data_dir``, ``$NUMPYNETS_DATA``, ``./data`` and the user
      cache, checked against their SHA-256, and downloaded (``download=True``)
      when no folder holds them.
    * ``"fashion-mnist"``, ``"kmnist"``: the same shapes, from their own
      subfolders (see :mod:`numpynets.data.datasets`).
    * ``"xor"``: the four rows, ``x (4, 2)``, ``y (4, 1)`` float32, as both
      train and test.

    An unknown ``name`` raises :class:`~numpynets.errors.ConfigError` listing
    the known ones.
    """
    if not isinstance(name, str) or name.lower() not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name.lower()](data_dir, download)


def _arrays(data, who: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a Split (or anything with ``.x`` and ``.y``) or an ``(x, y)`` pair."""
    if hasattr(data, "x") and hasattr(data, "y"):
        x, y = data.x, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    else:
        raise ConfigError(f"{who}: data must be a data set from numpynets.data.load or an (x, y) pair "
                          f"of arrays, got {type(data).__name__}")
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 1 or len(x) != len(y):
        raise ConfigError(f"{who}: x and y must hold the same number of samples, got x {x.shape} and y {y.shape}")
    return x, y


def batches(data, batch_size: int, shuffle: bool = False,
            seed: int | np.random.Generator | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(x, y)`` mini-batches of ``data`` (a data set or an ``(x, y)``
    pair): ``x (B, ...)``, ``y (B, ...)``, ``B = batch_size`` except the last,
    which holds the rest.

    In order unless ``shuffle``; ``seed`` (an int or a ``np.random.Generator``)
    makes the shuffle reproducible (``seed=epoch`` gives each epoch its own
    order). A batch size that is not a whole number >= 1 raises
    :class:`~numpynets.errors.ConfigError`.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batches: batch_size must be a whole number >= 1, got {batch_size!r}")
    x, y = _arrays(data, "batches")                   # checked now, not at the first next()
    order = np.random.default_rng(seed).permutation(len(x)) if shuffle else None   # (N,)
    return _batches(x, y, int(batch_size), order)


def _batches(x, y, batch_size: int, order):
    for a in range(0, len(x), batch_size):
        if order is None:
            yield x[a:a + batch_size], y[a:a + batch_size]
        else:
            idx = order[a:a + batch_size]                                  # (B,)
            yield x[idx], y[idx]
