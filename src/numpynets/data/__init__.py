"""Data: IDX files, MNIST (find / download / verify / load), XOR, and the
library's ``load(name) -> (train, test)`` and ``batches(data, batch_size)``."""

from .api import batches, load  # noqa: F401
from .idx import read_idx, write_idx  # noqa: F401
from .mnist import MNIST, Split, download, find_mnist, load_mnist  # noqa: F401
from .xor import xor_data  # noqa: F401

__all__ = ["load", "batches", "Split", "read_idx", "write_idx", "MNIST", "download", "find_mnist", "load_mnist",
           "xor_data"]
