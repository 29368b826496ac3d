"""``convnet``: a small, strong CNN for 28x28 images, built from the
library's own layers::

    (1, 28, 28) -> conv 1->C1, 5x5, pad 2 [-> BatchNorm] -> ReLU -> max-pool 2x2   (C1, 14, 14)
                -> conv C1->C2, 3x3, pad 1 [-> BatchNorm] -> ReLU -> max-pool 2x2  (C2, 7, 7)
                -> flatten                                                         (C2*49,)
                -> linear C2*49 -> H -> ReLU [-> Dropout p] -> linear H -> 10 -> softmax cross-entropy

Two convolution blocks (defaults 16 filters of 5x5, then 32 of 3x3) see
strokes and their combinations; the hidden layer (128) mixes them over the
whole image. It is sized for NumPy on two cores: 207,178 parameters,
~1.4 M multiply-adds per image (a 5x5 second convolution, ``kernel2=5``,
costs 2.3 times as much per epoch here for no measured gain in the time we
had). BatchNorm and Dropout are options (``batchnorm=True``,
``dropout=p``), off in the measured default recipe. What carries it past
99 % is its recipe: random affine augmentation
(:mod:`numpynets.data.augment`) and Adam with a warm-up and a cosine decay
per batch.
"""

from ..errors import ConfigError
from .attention import _flag
from .recipes import Recipe


def architecture(channels: int = 16, channels2: int | None = None, kernel: int = 5, kernel2: int | None = 3,
                 hidden: int = 128, init: str = "he", batchnorm: bool = False, dropout: float = 0.0) -> dict:
    c1 = channels
    c2 = channels2 if channels2 is not None else 2 * channels
    k2 = kernel2 if kernel2 is not None else kernel
    batchnorm = _flag("batchnorm", batchnorm)
    if not 0 <= dropout < 1:
        raise ConfigError(f"convnet: dropout must be in [0, 1), got {dropout}")
    norm = [{"type": "batchnorm"}] if batchnorm else []
    drop = [{"type": "dropout", "p": dropout}] if dropout else []
    return {
        "input_shape": [1, 28, 28],
        "layers": [
            {"type": "conv2d", "in_channels": 1, "out_channels": c1, "kernel_size": kernel,
             "stride": 1, "padding": kernel // 2, "init": init},
            *norm,
            {"type": "relu"},
            {"type": "maxpool2d", "kernel_size": 2, "stride": 2},                    # (C1, 14, 14)
            {"type": "conv2d", "in_channels": c1, "out_channels": c2, "kernel_size": k2,
             "stride": 1, "padding": k2 // 2, "init": init},
            *norm,
            {"type": "relu"},
            {"type": "maxpool2d", "kernel_size": 2, "stride": 2},                    # (C2, 7, 7)
            {"type": "flatten"},
            {"type": "linear", "in_features": c2 * 49, "out_features": hidden, "init": init},
            {"type": "relu"},
            *drop,
            {"type": "linear", "in_features": hidden, "out_features": 10, "init": "xavier"},
        ],
        "loss": "softmax_cross_entropy",
    }


RECIPES = {
    # Adam, a one-epoch linear warm-up then a per-batch cosine decay to 0, random
    # affine augmentation (+-2 px, +-10 degrees, +-10 % zoom)
    "default": Recipe(epochs=10, batch_size=64, lr=2e-3, optimizer="adam",
                      schedule={"kind": "cosine", "per": "batch", "min_lr": 0.0, "warmup_epochs": 1.0},
                      augment={"shift": 2.0, "rotate": 10.0, "scale": 0.1, "shear": 0.0, "elastic": 0.0}),
}
