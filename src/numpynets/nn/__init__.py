"""Layers with hand-written forward and backward passes, losses, initialisation."""

from . import gradcheck  # noqa: F401
from .activations import ELU, GELU, Flatten, LeakyReLU, ReLU, Sigmoid, Swish, Tanh  # noqa: F401
from .conv import Conv2D, MaxPool2D  # noqa: F401
from .dropout import Dropout  # noqa: F401
from .attention import SelfAttention  # noqa: F401
from .layer import LAYERS, Layer, layer_from_config, register  # noqa: F401
from .linear import Linear  # noqa: F401
from .losses import log_softmax, mse, softmax, softmax_cross_entropy  # noqa: F401
from .normalization import BatchNorm, LayerNorm  # noqa: F401
from .residual import Residual  # noqa: F401
from .sequential import Sequential  # noqa: F401
from .tokens import MeanPool, Patchify, PositionEmbedding  # noqa: F401

# the public names (also exported by ``import numpynets``): every registered
# layer class, the base class, the container, the losses, the gradient checker
__all__ = ["Sequential", "Layer", "register", "gradcheck", "softmax_cross_entropy", "mse", "softmax",
           "log_softmax", *sorted({cls.__name__ for cls in LAYERS.values()})]
