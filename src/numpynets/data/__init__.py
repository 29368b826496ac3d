"""Data: IDX files, MNIST (find / download / verify / load), XOR."""

from .idx import read_idx, write_idx  # noqa: F401
from .mnist import MNIST, Split, download, find_mnist, load_mnist  # noqa: F401
from .xor import xor_data  # noqa: F401
