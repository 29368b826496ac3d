"""numpynets: neural networks written from scratch on NumPy.

Every layer has a hand-written forward and backward pass; nothing here uses
automatic differentiation. The package trains four models on MNIST and XOR
(an MLP, a CNN, a single-head self-attention model and a 2-4-1 sigmoid
network) and has the tools around them: model files, plots, a drawing window.

As a library (dimension letters: ``N`` batch; shapes are per batch)::

    import numpynets as nn

    train, test = nn.data.load("mnist")              # x (60000, 28, 28) float32, y (60000,) int64
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10), seed=0)
    opt = nn.optim.SGD(model, lr=0.1, momentum=0.9, nesterov=True)
    for x, y in nn.data.batches(train, 64, shuffle=True, seed=0):
        logits = model.forward(x, training=True)     # (N, 10)
        loss, dlogits = nn.softmax_cross_entropy(logits, y)
        model.zero_grad()
        model.backward(dlogits)
        opt.step()
    print(nn.evaluate(model, test))                  # accuracy in [0, 1]
    model.save("mlp.safetensors")                    # what `numpynets evaluate` reads; nn.load reads it back

The core (``data``, ``nn``, ``optim``, ``models``, ``train``, ``io``) needs
NumPy and safetensors only; plotting and the GUI import their libraries
lazily.
"""

__version__ = "0.1.0"

from . import data, optim  # noqa: E402
from .errors import (ConfigError, DataError, ModelFileError, NumpynetsError, ShapeError,  # noqa: E402
                     TrainingDiverged)
from .io import load  # noqa: E402
from .nn import *  # noqa: E402,F401,F403  (the layers, losses, Sequential, Layer, gradcheck)
from .nn import __all__ as _nn_names  # noqa: E402
from .train.evaluate import accuracy as evaluate  # noqa: E402
from .train.fit import fit  # noqa: E402  (nn.fit: the training API on arrays)

__all__ = [*_nn_names, "data", "optim", "evaluate", "fit", "load", "NumpynetsError", "ConfigError", "DataError",
           "ModelFileError", "ShapeError", "TrainingDiverged"]
