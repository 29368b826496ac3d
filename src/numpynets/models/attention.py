"""The MNIST self-attention model (the original's ``mnist_attention_pool``).

28x28 image -> 4x4 patches -> 49 tokens of 16 values -> linear to D, plus a
learned position table (sinusoidal start) added before the ReLU -> self-
attention -> per-token feed-forward D -> F -> D -> mean over the 49 tokens
-> linear D -> 10.

With the original options (one head, no residuals, no layer norm) the layer
list is exactly the original's, and the parameters come out in its file
order: W_patch, b_patch, pos, W_q, b_q, W_k, b_k, W_v, b_v, W_ff1, b_ff1,
W_ff2, b_ff2, W_cls, b_cls (33,930 values for D=64, F=128).

Options beyond the original: ``heads`` (multi-head attention), ``residual``
(``x + f(x)`` around the attention and the feed-forward sub-blocks),
``layernorm`` (pre-norm: a LayerNorm at the start of each sub-block, and one
before the pooling), and ``blocks`` (how many attention + feed-forward
blocks are stacked).
"""

from __future__ import annotations

from ..errors import ConfigError
from .recipes import Recipe

IMAGE, PATCH = 28, 4


def _flag(name: str, value) -> bool:
    """Booleans from recipes (True/False) or the command line ("on", "off", ...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"attention: {name} must be on or off, got {value!r}")


def architecture(d_model: int = 64, ff_dim: int = 128, heads: int = 1, residual=False, layernorm=False,
                 blocks: int = 1, init: str = "xavier") -> dict:
    d_model, ff_dim, heads, blocks = int(d_model), int(ff_dim), int(heads), int(blocks)
    residual, layernorm = _flag("residual", residual), _flag("layernorm", layernorm)
    if d_model < 1 or ff_dim < 1 or blocks < 1:
        raise ConfigError(f"attention: d_model, ff_dim and blocks must be >= 1, got {d_model}, {ff_dim}, {blocks}")
    if heads < 1 or d_model % heads:
        raise ConfigError(f"attention: d_model {d_model} does not split into {heads} heads; "
                          "choose --heads that divides --d-model")
    T = (IMAGE // PATCH) ** 2

    def sub_block(layers: list[dict]) -> list[dict]:
        if layernorm:
            layers = [{"type": "layer_norm", "dim": d_model}, *layers]
        return [{"type": "residual", "layers": layers}] if residual else layers

    layers = [
        {"type": "patchify", "patch": PATCH},                                    # (49, 16)
        {"type": "linear", "in_features": PATCH * PATCH, "out_features": d_model, "init": init},
        {"type": "position_embedding", "tokens": T, "dim": d_model, "init": "sinusoidal"},
        {"type": "relu"},                                                         # (49, D)
    ]
    for _ in range(blocks):
        layers += sub_block([{"type": "self_attention", "dim": d_model, "heads": heads, "init": init}])
        layers += sub_block([
            {"type": "linear", "in_features": d_model, "out_features": ff_dim, "init": init},
            {"type": "relu"},
            {"type": "linear", "in_features": ff_dim, "out_features": d_model, "init": init},
        ])
    if layernorm:
        layers.append({"type": "layer_norm", "dim": d_model})
    layers += [
        {"type": "mean_pool"},                                                    # (D,)
        {"type": "linear", "in_features": d_model, "out_features": 10, "init": init},
    ]
    return {"input_shape": [IMAGE, IMAGE], "layers": layers, "loss": "softmax_cross_entropy"}


RECIPES = {
    # the later original (HEAD): D=64, F=128, SGD lr 0.01, batch 32, 8 epochs; trained here with
    # correct gradients. (Its early stopping, patience 3, is off as in every built-in recipe:
    # add --patience 3 to have it.)
    "original": Recipe(epochs=8, batch_size=32, lr=0.01, optimizer="sgd",
                       arch={"d_model": 64, "ff_dim": 128}),
    # the first original, the one in its overview table (38.55 % there)
    "original-small": Recipe(epochs=5, batch_size=32, lr=0.01, optimizer="sgd",
                             arch={"d_model": 16, "ff_dim": 32}),
    # our best in at most 8 epochs: pre-norm residual blocks, 4 heads, 2 blocks, AdamW with
    # warm-up and cosine decay (full MNIST test accuracy, seeds 0-2: 98.26, 98.32, 98.28 %;
    # with one block, seed 0: 97.87 %; one block and one head: 97.21 %)
    # It was tuned with weight decay on every parameter (biases, LayerNorm, position embedding), so it
    # keeps that (decay_all) rather than the weights-only default: the recipe stays bit-identical.
    "default": Recipe(epochs=8, batch_size=64, lr=2e-3, optimizer="adamw", weight_decay=0.01, decay_all=True,
                      schedule={"kind": "cosine", "per": "batch", "min_lr": 0.0, "warmup_epochs": 0.5},
                      arch={"d_model": 64, "ff_dim": 128, "heads": 4, "residual": True, "layernorm": True,
                            "blocks": 2}),
}
