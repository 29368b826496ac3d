"""XOR: 2 -> 4 sigmoid -> 1 sigmoid, mean squared error (the original's
``mlp_simple``), the smallest complete example of the library.

The original updates once per sample with ``w -= 0.01 * dE/dw`` for
``E = (y - o)^2 / 2``. Our MSE is ``(y - o)^2`` (no half), whose gradient is
twice as large, so its ``original`` recipe uses lr 0.005: the very same
update. The default recipe trains on all four points at once with a large
learning rate and stops as soon as all four are right and the MSE is below
0.01.
"""

from .recipes import Recipe


def architecture(hidden: int = 4, init: str = "xavier") -> dict:
    return {
        "input_shape": [2],
        "layers": [
            {"type": "linear", "in_features": 2, "out_features": hidden, "init": init},
            {"type": "sigmoid"},
            {"type": "linear", "in_features": hidden, "out_features": 1, "init": init},
            {"type": "sigmoid"},
        ],
        "loss": "mse",
    }


RECIPES = {
    "original": Recipe(epochs=1_000_000, batch_size=1, lr=0.005, optimizer="sgd"),
    "default": Recipe(epochs=5000, batch_size=4, lr=0.1, optimizer="adam",
                      stop_loss=0.01, stop_accuracy=100.0),
}
