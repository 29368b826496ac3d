"""numpynets: neural networks written from scratch on NumPy.

Every layer has a hand-written forward and backward pass; nothing here uses
automatic differentiation. The package trains four models on MNIST and XOR
(an MLP, a CNN, a single-head self-attention model and a 2-4-1 sigmoid
network) and has the tools around them: model files, plots, a drawing window.

The core (``data``, ``nn``, ``optim``, ``models``, ``train``, ``io``) needs
NumPy and safetensors only; plotting and the GUI import their libraries
lazily.
"""

__version__ = "0.1.0"

from .errors import NumpynetsError  # noqa: F401
from .train.fit import fit  # noqa: F401,E402  (nn.fit: the training API on arrays)
