"""Data: IDX files, the registered image data sets (find / download / verify / load), augmentation,
XOR, and the library's ``load(name) -> (train, test)`` and ``batches(data, batch_size)``."""

from .api import batches, load  # noqa: F401
from .idx import read_idx, write_idx  # noqa: F401
from .datasets import DATASETS, get_dataset  # noqa: F401
from .mnist import MNIST, Split, download, find_dataset, find_mnist, load_dataset, load_mnist, load_test  # noqa: F401
from .xor import xor_data  # noqa: F401

__all__ = ["load", "batches", "Split", "read_idx", "write_idx", "MNIST", "download", "find_mnist", "load_mnist",
           "xor_data", "DATASETS", "get_dataset", "find_dataset", "load_dataset", "load_test"]
