"""The four XOR points."""

import numpy as np

from .mnist import Split


def xor_data(dtype=np.float32) -> Split:
    """The XOR truth table: ``x (4, 2)``, ``y (4, 1)``."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return Split(x, y)
