"""Data: IDX files, the registered image data sets (find / download / verify / load), augmentation, XOR."""

from .idx import read_idx, write_idx  # noqa: F401
from .datasets import DATASETS, get_dataset  # noqa: F401
from .mnist import MNIST, Split, download, find_dataset, find_mnist, load_dataset, load_mnist, load_test  # noqa: F401
from .xor import xor_data  # noqa: F401
