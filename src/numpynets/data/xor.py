"""The four XOR points."""

import numpy as np

from .mnist import Split


def xor_data(dtype=np.float32) -> Split:
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return Split(x, y)
