"""Small fake MNIST-format data sets for tests (random pixels, labels 0-9).

They are not the real files, so load them with ``verify=False``; the
downloader tests give them their own SHA-256 in ``numpynets.data.mnist.FILES``.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from numpynets.data.idx import encode_idx, write_idx

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def fake_arrays(n_train: int = 100, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def dotted(name: str) -> str:
    """``train-images-idx3-ubyte`` -> the original project's ``train-images.idx3-ubyte``."""
    stem, _, rest = name.partition("-idx")
    return f"{stem}.idx{rest}"


def write_fake_mnist(folder, n_train: int = 100, n_test: int = 20, seed: int = 0, gz: bool = True,
                     naming: str = "standard") -> dict[str, np.ndarray]:
    """Write the four files into ``folder`` (created); returns the arrays."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = fake_arrays(n_train, n_test, seed)
    for name, arr in arrays.items():
        fname = dotted(name) if naming == "dotted" else name
        write_idx(folder / (fname + (".gz" if gz else "")), arr, compress=gz)
    return arrays


def fake_files(n_train: int = 60, n_test: int = 20, seed: int = 0):
    """(gzipped bytes per name, FILES-like table of SHA-256 and size of the
    decompressed bytes) for the downloader tests."""
    blobs, table = {}, {}
    for name, arr in fake_arrays(n_train, n_test, seed).items():
        raw = encode_idx(arr)
        blobs[name] = gzip.compress(raw, mtime=0)
        table[name] = (hashlib.sha256(raw).hexdigest(), len(raw))
    return blobs, table
