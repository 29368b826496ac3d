"""Layers with hand-written forward and backward passes, losses, initialisation."""

from .activations import Flatten, ReLU, Sigmoid, Tanh  # noqa: F401
from .layer import LAYERS, Layer, layer_from_config, register  # noqa: F401
from .linear import Linear  # noqa: F401
from .losses import log_softmax, mse, softmax, softmax_cross_entropy  # noqa: F401
from .sequential import Sequential  # noqa: F401
