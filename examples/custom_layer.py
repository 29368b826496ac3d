"""Write a layer of your own: a PReLU whose negative slope is learned.

    python examples/custom_layer.py [--seed 0]

    y = x            where x > 0          x: (N, D) -> y: (N, D)
    y = a * x        elsewhere            a: (D,), one slope per feature

Backward, for an upstream gradient dy = dL/dy (N, D):

    dL/dx = dy            where x > 0, dy * a elsewhere
    dL/da = sum over the batch of dy * min(x, 0)     (y depends on a only where x <= 0)

The layer follows the library's contract: parameters and gradients are named
arrays that are updated in place (a model keeps them in one flat buffer),
``forward`` keeps what ``backward`` needs, ``backward`` returns dx and adds
(+=) into the gradients. One call to the library's gradient checker compares
it with finite differences; then it trains in an MNIST MLP.
"""

import argparse

import numpy as np

import numpynets as nn


class PReLU(nn.Layer):
    """Parametric ReLU, one learned slope per feature.  x: (N, D) -> y: (N, D)."""

    def __init__(self, dim: int, slope: float = 0.25):
        super().__init__()
        self.dim, self.slope = dim, slope
        self._add_param("a", (dim,))                # creates params["a"] and grads["a"], (D,)
        self.params["a"].fill(slope)

    def reset_parameters(self, rng):                # called when the model is initialised
        self.params["a"].fill(self.slope)

    def output_shape(self, input_shape):            # per-sample shapes: (D,) -> (D,)
        if input_shape[-1:] != (self.dim,):
            raise self.shape_error(input_shape, f"(..., {self.dim})")
        return tuple(input_shape)

    def forward(self, x, training=False):
        self.x = x                                  # (N, D), for backward
        return np.where(x > 0, x, self.params["a"] * x)

    def backward(self, dy):                         # dy: (N, D)
        x, a = self.x, self.params["a"]
        self.grads["a"] += (dy * np.minimum(x, 0)).sum(axis=0)    # (D,)
        return np.where(x > 0, dy, dy * a)                         # (N, D)


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=int, default=0)
seed = parser.parse_args().seed

# 1. the gradient check, in float64, against a random upstream gradient
rng = np.random.default_rng(seed)
errors = nn.gradcheck.check_layer(PReLU(5), rng.standard_normal((4, 5)), rng)
print("gradient check, relative errors:", {k: f"{e:.1e}" for k, e in errors.items()})
assert max(errors.values()) < 1e-6, errors

# 2. the layer in a model
train, test = nn.data.load("mnist")             # x (60000, 28, 28) float32, y (60000,)
model = nn.Sequential(nn.Linear(784, 256, init="he"), PReLU(256), nn.Linear(256, 10), seed=seed)
opt = nn.optim.SGD(model, lr=0.05, momentum=0.9)
for epoch in range(2):
    for x, y in nn.data.batches(train, 64, shuffle=True, seed=seed * 1000 + epoch):
        loss, dlogits = nn.softmax_cross_entropy(model.forward(x, training=True), y)
        model.zero_grad()
        model.backward(dlogits)
        opt.step()
    a = model.layers[1].params["a"]
    print(f"epoch {epoch + 1}: slopes a mean {a.mean():.3f}, range {a.min():.3f} .. {a.max():.3f}")

print(f"test accuracy {nn.evaluate(model, test):.2%}")
