"""The layer contract, and the registry that builds layers from JSON configs.

Every layer is a small class with the same shape (dimension letters: ``N``
batch, ``C`` channels, ``H, W`` spatial, ``T`` tokens, ``D`` width):

* ``params`` and ``grads``: dicts of named arrays with the same keys and
  shapes. After a layer joins a :class:`~numpynets.nn.sequential.Sequential`
  these are views into the model's flat buffers, so a layer must update them
  in place (``+=``, ``out=``) and never rebind them.
* ``forward(x, training=False)`` returns the output and keeps exactly what
  ``backward`` needs.
* ``backward(dout)`` returns ``dx`` (or ``None`` when ``needs_input_grad`` is
  false, as for the first layer of a model) and *accumulates* into ``grads``.
  It must not modify ``dout``. Backward never updates parameters.
* ``output_shape(input_shape)`` maps a per-sample shape (without ``N``) to the
  output's, and raises :class:`~numpynets.errors.ShapeError` naming the layer
  and both shapes when the input does not fit.
* ``config()`` returns the JSON-able dict that rebuilds the layer through
  :func:`layer_from_config`.

Layers compute in the dtype they are given: float32 in training, float64 in
gradient checks.
"""

from __future__ import annotations

import contextlib
import contextvars
import math

import numpy as np

from ..errors import ConfigError, ShapeError

LAYERS: dict[str, type[Layer]] = {}

# Elements that parameter allocations may still take, while a loader has set
# a budget (see parameter_budget); None: no budget (training a new model).
_BUDGET: contextvars.ContextVar[list | None] = contextvars.ContextVar("numpynets_param_budget", default=None)


@contextlib.contextmanager
def parameter_budget(elements: int):
    """Within this block, layers may allocate at most ``elements`` parameter
    values in all; the next allocation beyond it raises :class:`ConfigError`
    *before* any memory is taken. Loaders set it to the number of values the
    file's tensors really hold, so metadata that describes a model of 10^9
    parameters next to a 1 KB payload is refused, not allocated."""
    token = _BUDGET.set([int(elements)])
    try:
        yield
    finally:
        _BUDGET.reset(token)


def register(kind: str):
    """Class decorator: make a layer buildable from ``{"type": kind, ...}``."""

    def deco(cls):
        cls.kind = kind
        LAYERS[kind] = cls
        return cls

    return deco


class Layer:
    kind = "layer"

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.needs_input_grad = True

    # -- the contract -----------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)

    def config(self) -> dict:
        return {"type": self.kind}

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """Draw fresh initial values for the parameters (in place)."""

    def bind(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        """Replace parameter ``name`` and its gradient by views into the
        model's flat buffers (values already copied). A composite layer that
        holds sub-layers overrides this to hand the views down to them."""
        self.params[name], self.grads[name] = param, grad

    # -- helpers shared by every layer ------------------------------------
    def _add_param(self, name: str, shape: tuple[int, ...], dtype=np.float32) -> None:
        budget = _BUDGET.get()
        if budget is not None:
            need = math.prod(shape)                        # Python ints: no overflow
            if need > budget[0]:
                raise ConfigError(f"{self.kind}: parameter {name} of shape {tuple(shape)} needs {need:,} values, "
                                  f"more than the {budget[0]:,} the file holds")
            budget[0] -= need
        self.params[name] = np.zeros(shape, dtype=dtype)
        self.grads[name] = np.zeros(shape, dtype=dtype)

    def zero_grad(self) -> None:
        """Reset the gradients before a new backward pass (accumulation starts over)."""
        for g in self.grads.values():
            g.fill(0)

    def shape_error(self, input_shape, expected: str) -> ShapeError:
        return ShapeError(
            f"{self.describe()}: input of shape {tuple(input_shape)} does not fit; "
            f"expected {expected}"
        )

    def describe(self) -> str:
        args = {k: v for k, v in self.config().items() if k != "type"}
        inner = ", ".join(f"{k}={v}" for k, v in args.items())
        return f"{type(self).__name__}({inner})"

    def __repr__(self) -> str:
        return self.describe()


def layer_from_config(cfg: dict) -> Layer:
    """Build a layer from ``{"type": "linear", "in_features": 784, ...}``."""
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ConfigError(f"layer config {cfg!r} has no \"type\"; known types: {', '.join(sorted(LAYERS))}")
    if not isinstance(cfg["type"], str):
        raise ConfigError(f"layer \"type\" is a name such as \"linear\", got {str(cfg['type'])[:40]!r}")
    kind = cfg["type"].lower()
    if kind not in LAYERS:
        raise ConfigError(f"unknown layer type {cfg['type']!r}; known types: {', '.join(sorted(LAYERS))}")
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    try:
        return LAYERS[kind](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"layer {kind!r}: bad fields {sorted(kwargs)} ({exc})") from None
