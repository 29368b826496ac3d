"""The MNIST MLP: 784 -> 512 ReLU -> 10 (the original's ``mnist_mlp``)."""

from ..nn.activations import activation_config
from .options import check_dropout
from .recipes import Recipe


def architecture(hidden: int = 512, init: str = "xavier", activation="relu", dropout: float = 0.0,
                 batchnorm: bool = False) -> dict:
    """``activation`` is a name (``"gelu"``) or a layer config; ``dropout`` p
    > 0 adds a Dropout after the hidden activation; ``batchnorm`` a
    BatchNorm between the hidden linear layer and its activation."""
    hidden_block = [{"type": "linear", "in_features": 784, "out_features": hidden, "init": init}]
    if batchnorm:
        hidden_block.append({"type": "batchnorm", "size": hidden})
    hidden_block.append(activation_config(activation))
    if check_dropout(dropout):
        hidden_block.append({"type": "dropout", "p": float(dropout)})
    return {
        "input_shape": [784],
        "layers": [
            *hidden_block,
            {"type": "linear", "in_features": hidden, "out_features": 10, "init": init},
        ],
        "loss": "softmax_cross_entropy",
    }


RECIPES = {
    # the original's hyperparameters (its seed-description SGD version), correct gradients
    "original": Recipe(epochs=10, batch_size=64, lr=0.01, optimizer="sgd", arch={"init": "xavier"}),
    # our best for this architecture in 10 epochs
    # (measured, full MNIST, 2 seeds: lr 0.1 98.30/98.41; lr 0.05 98.23/98.35; with weight decay 5e-4
    # 98.16; Adam 1e-3 batch 128 98.12/98.20). Dropout 0.2 after the hidden ReLU beat the same recipe
    # without it, seeds 0/1/2: 98.54/98.30/98.46 % against 98.24/98.39/98.42 % (mean 98.43 vs 98.35;
    # dropout 0.1, seed 0: 98.50), so it is part of the default; Dropout does not stop a conversion to
    # the original's .bin file.
    "default": Recipe(epochs=10, batch_size=64, lr=0.1, optimizer="sgd", momentum=0.9, nesterov=True,
                      schedule={"kind": "cosine", "per": "batch", "min_lr": 0.0},
                      arch={"init": "he", "dropout": 0.2}),
}
