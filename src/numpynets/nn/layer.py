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
* ``buffers``: a dict of named **non-trainable** arrays (BatchNorm's
  ``running_mean`` and ``running_var``). They have no gradient; the model
  saves them in its files next to the parameters (named ``"<i>.<key>"``
  like parameters, :meth:`Sequential.named_buffers`) and restores them on
  load, and they live outside the flat parameter buffer, so no optimizer
  and no weight decay ever touches them. A layer updates its buffers in
  place during ``forward(x, training=True)`` only.
* ``decayed``: the names of the parameters weight decay applies to by
  default: weight matrices and kernels (``{"W"}`` for Linear and Conv2D).
  Biases, normalisation scales and shifts and position embeddings are left
  out (:meth:`decays`; ``Sequential.decay_mask()`` turns it into a mask
  over the flat buffer for the optimizers).
* ``rng``: the random generator of a layer that draws random numbers
  (``uses_rng = True``, e.g. Dropout). The layer never makes its own: the
  model hands every layer one shared :class:`numpy.random.Generator`
  (``Sequential.set_rng``), derived from the run's seed, so the same seed
  and thread count give bit-identical runs, and the generator's state
  (``Sequential.rng_state()`` / ``set_rng_state()``) can be saved and
  restored for an exact resume. Layers draw only in training mode.
* ``forward(x, training)`` decides the train/eval behaviour: Dropout drops
  and BatchNorm uses (and updates) batch statistics only when ``training``
  is true; everything except the training step runs with ``training=False``.

Layers compute in the dtype they are given: float32 in training, float64 in
gradient checks.
"""

from __future__ import annotations

import contextlib
import contextvars
import math

import numpy as np

from ..checks import show
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
    """The base class of every layer (see the module docstring for the whole
    contract). Subclass it to write a layer of your own: create parameters
    with ``self._add_param("W", shape)``, implement ``forward`` and
    ``backward`` (and ``output_shape`` when the output's shape differs from
    the input's), check it with :func:`numpynets.nn.gradcheck.check_layer`.
    Shapes: ``x (N, ...) -> y (N, ...)``, per-sample shapes without ``N``."""

    kind = "layer"
    decayed: frozenset[str] = frozenset()      # parameters weight decay applies to by default
    uses_rng = False                           # True: forward(training=True) draws from self.rng

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.rng: np.random.Generator | None = None
        self.needs_input_grad = True

    # -- the contract -----------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``x (N, *in_shape) -> y (N, *out_shape)``; keeps what ``backward``
        needs. ``training`` selects train-time behaviour where a layer has one."""
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """``dout (N, *out_shape)``, dL/dy of the last forward -> ``dx (N, *in_shape)``
        (None when ``needs_input_grad`` is false); adds (+=) dL/dθ into ``grads``."""
        raise NotImplementedError

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The per-sample output shape for a per-sample ``input_shape`` (no ``N``);
        raises :class:`~numpynets.errors.ShapeError` when the input does not fit."""
        return tuple(input_shape)

    def input_shape_hint(self) -> tuple[int, ...] | None:
        """The per-sample input shape this layer implies on its own, or None
        when it fits many (an activation, a convolution of any image size).
        :class:`~numpynets.nn.sequential.Sequential` asks its first layer, so
        ``input_shape`` is needed only where this is None."""
        return None

    def config(self) -> dict:
        """The JSON-able dict that rebuilds this layer through :func:`layer_from_config`."""
        return {"type": self.kind}

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """Draw fresh initial values for the parameters (in place)."""

    def bind(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        """Replace parameter ``name`` and its gradient by views into the
        model's flat buffers (values already copied). A composite layer that
        holds sub-layers overrides this to hand the views down to them."""
        self.params[name], self.grads[name] = param, grad

    def decays(self, name: str) -> bool:
        """Whether weight decay applies to parameter ``name`` by default."""
        return name in self.decayed

    def set_rng(self, rng: np.random.Generator) -> None:
        """Receive the model's generator (a composite layer hands it down)."""
        self.rng = rng

    def set_buffer(self, name: str, value: np.ndarray) -> None:
        """Restore buffer ``name`` in place (from a model file); a composite
        layer routes ``"<i>.<key>"`` to its sub-layer."""
        self.buffers[name][...] = value

    def cast_buffers(self, dtype) -> None:
        """Buffers follow the model's compute dtype (called by the model)."""
        for k, b in self.buffers.items():
            if b.dtype != dtype:
                self.buffers[k] = b.astype(dtype)

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

    def zero_grad_deferred(self) -> None:
        """Like :meth:`zero_grad`, for a backward that follows at once
        (``Sequential.backward(dout, accumulate=False)``): by default the same
        fill; a layer whose backward can write its gradients outright instead
        of adding to them (Linear) only notes that, so the zeros are never
        written."""
        self.zero_grad()

    def shape_error(self, input_shape, expected: str) -> ShapeError:
        """The ShapeError for an ``input_shape`` that does not fit (``expected`` says what would)."""
        return ShapeError(
            f"{self.describe()}: input of shape {tuple(input_shape)} does not fit; "
            f"expected {expected}"
        )

    def describe(self) -> str:
        """E.g. ``Linear(in_features=784, out_features=512, init=xavier)``."""
        args = {k: v for k, v in self.config().items() if k != "type"}
        inner = ", ".join(f"{k}={v}" for k, v in args.items())
        return f"{type(self).__name__}({inner})"

    def __repr__(self) -> str:
        return self.describe()


# other names accepted when parsing, never registered (nor saved: config() writes the real name)
ALIASES = {"silu": "swish"}


def layer_from_config(cfg: dict) -> Layer:
    """Build a layer from ``{"type": "linear", "in_features": 784, ...}``."""
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ConfigError(f"layer config {show(cfg)} has no \"type\"; known types: {', '.join(sorted(LAYERS))}")
    if not isinstance(cfg["type"], str):
        raise ConfigError(f"layer \"type\" is a name such as \"linear\", got {show(cfg['type'])}")
    kind = cfg["type"].lower()
    kind = ALIASES.get(kind, kind)
    if kind not in LAYERS:
        raise ConfigError(f"unknown layer type {show(cfg['type'])}; known types: {', '.join(sorted(LAYERS))}")
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    try:
        return LAYERS[kind](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"layer {show(kind)}: bad fields {show(sorted(kwargs), 200)} ({str(exc)[:200]})") from None
