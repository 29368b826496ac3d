"""A model as a sequence of layers, with all parameters in one flat buffer.

Every parameter of every layer is a view into ``self.flat_params`` and every
gradient a view into ``self.flat_grads`` (the layout llm.c uses). Zeroing the
gradients writes zeros into every gradient (:meth:`zero_grad`: one pass of
fills over the flat gradient buffer), so a step taken without a backward applies no
gradient, never the previous batch's; an optimizer updates the whole model
with a handful of vectorised operations instead of a loop over tensors. The order of
``named_parameters()`` (``"0.W", "0.b", "2.W", ...``: layer index, then the
layer's own order) is fixed; it is the order in model files.

Buffers (non-trainable state such as BatchNorm's running statistics) are
named the same way (``"1.running_mean"``) but live outside the flat buffers:
optimizers are handed ``flat_params`` only, so they never see them.
``state_dict()`` holds both, and model files store both.

The model owns one random generator, ``self.rng``, shared by every layer
that draws random numbers (``layer.rng``; Dropout). A model built with an
initialisation generator takes a child of it (``Generator.spawn``, which
draws nothing, so the weights stay as they were), so the run's seed fixes
the masks too; ``rng_state()``/``set_rng_state()`` save and restore it.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import show, whole
from ..errors import ConfigError, ShapeError
from .layer import Layer, layer_from_config
from .losses import PER_SAMPLE, get_loss, softmax

__all__ = ["Sequential"]

_ALIGN = 16  # elements: keeps every view 64-byte aligned for float32


def _child_generator(rng: np.random.Generator | None) -> np.random.Generator:
    """The model's generator for layers that draw: a child of the
    initialisation generator (drawing nothing from it), or seed 0."""
    if rng is None:
        return np.random.default_rng(0)
    try:
        return rng.spawn(1)[0]
    except TypeError:                                      # a generator made without a SeedSequence
        return np.random.default_rng(int(rng.bit_generator.random_raw()))


class Sequential:
    """A model: layers applied in order, ``x (N, *input_shape) -> out (N, *output_shape)``.

    ::

        model = Sequential(Linear(784, 512), ReLU(), Linear(512, 10), seed=0)
        out = model.forward(x, training=True)          # x: (N, 784) or (N, 28, 28) -> (N, 10)
        loss, dout = model.loss(out, y)                # y: (N,) class indices
        model.zero_grad(); model.backward(dout)        # gradients in model.flat_grads

    * ``layers``: the layers, as arguments (a single list is accepted too).
    * ``input_shape``: the shape of one sample, without ``N``. Needed only where
      the first layer cannot tell it: a :class:`~numpynets.nn.linear.Linear`
      says ``(in_features,)``; a convolution or a patch layer does not know the
      image size, so ``input_shape=(1, 28, 28)`` (or ``(28, 28)``) must be given.
    * ``loss``: ``"softmax_cross_entropy"`` (classifiers, ``y`` class indices)
      or ``"mse"`` (regression, ``y`` shaped like the output).
    * ``seed`` or ``rng``: where the initial weights come from (an int, or a
      ``np.random.Generator``); with neither, fresh entropy from the OS.
      ``init=False`` leaves the parameters as the layers made them (zeros), for
      loading weights into.
    * ``name``, ``dataset``: the model's identity, stored in its files and kept
      by every copy: ``name`` is a built-in model (``"mlp"``, ...) or
      ``"custom"``; ``dataset`` is what it is trained on (``"mnist"``, ``"xor"``).

    Layers that do not connect raise :class:`~numpynets.errors.ShapeError`
    naming the layer's index and both shapes.
    """

    def __init__(self, *layers, input_shape=None, loss: str = "softmax_cross_entropy", dtype=np.float32,
                 rng: np.random.Generator | None = None, seed: int | None = None, init: bool = True,
                 name: str = "custom", dataset: str = "mnist"):
        if len(layers) in (1, 2) and isinstance(layers[0], (list, tuple)):   # Sequential([...]) and the
            if len(layers) == 2:                                             # old Sequential([...], shape)
                if input_shape is not None:
                    raise ConfigError("Sequential: input_shape given twice")
                input_shape = layers[1]
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                hint = (f"the class {layer.__name__}, not a layer; write {layer.__name__}()"
                        if isinstance(layer, type) else f"a {type(layer).__name__}, not a layer")
                raise ConfigError(f"Sequential: argument {i} is {hint} (layers are numpynets.nn.Layer objects)")
        if rng is not None and seed is not None:
            raise ConfigError("Sequential: give seed= or rng=, not both")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"Sequential: name must be a non-empty string, got {name!r}")
        if not isinstance(dataset, str) or not dataset:
            raise ConfigError(f"Sequential: dataset must be a non-empty string, got {dataset!r}")
        self.layers: list[Layer] = list(layers)
        self.name: str = name                              # identity: kept by astype, copy, save and load
        self.dataset: str = dataset
        self.input_shape: tuple[int, ...] = self._input_shape(input_shape)
        self.loss_name = loss
        self.loss_fn = get_loss(loss)
        self.output_shape: tuple[int, ...] = self._connect()
        if self.layers:                                    # nothing consumes the input's gradient
            self.layers[0].needs_input_grad = False
        if init:
            rng = rng if rng is not None else np.random.default_rng(seed)
            for layer in self.layers:
                layer.reset_parameters(rng)
        self._build_flat(np.dtype(dtype))
        for layer in self.layers:
            layer.cast_buffers(self.dtype)
        self.set_rng(_child_generator(rng))

    def _input_shape(self, input_shape) -> tuple[int, ...]:
        if input_shape is None:
            hint = self.layers[0].input_shape_hint() if self.layers else None
            if hint is None:
                first = f"its first layer, {self.layers[0].describe()}," if self.layers else "an empty model"
                raise ConfigError(f"Sequential: {first} does not say what one sample looks like; "
                                  "pass input_shape=, e.g. input_shape=(1, 28, 28) for MNIST images")
            return tuple(hint)
        if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
            raise ConfigError(f"input_shape must be a list of sizes, got {input_shape!r:.60}")
        shape = tuple(whole(s, "input_shape: each size") for s in input_shape)
        if not shape or min(shape) < 1:
            raise ConfigError(f"input_shape must hold sizes >= 1, got {input_shape!r:.60}")
        return shape

    def _connect(self) -> tuple[int, ...]:
        """Walk the per-sample shape through the layers; say where it breaks."""
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            try:
                shape = tuple(layer.output_shape(shape))
            except ShapeError as exc:
                source = "the model input" if i == 0 else f"layer {i - 1} ({self.layers[i - 1].describe()})"
                # exc names layer i and both shapes ("input of shape (512,) does not fit; expected ...")
                raise ShapeError(f"layer {i}: {exc}; its input comes from {source}") from None
        return shape

    # -- construction -----------------------------------------------------
    @classmethod
    def from_architecture(cls, arch: dict, rng=None, dtype=np.float32) -> Sequential:
        """Rebuild a model from :meth:`architecture`'s dict; ``rng=None`` leaves
        the weights at zero (for loading a state dict into)."""
        layers = []
        for i, c in enumerate(arch["layers"]):
            try:
                layers.append(layer_from_config(c))
            except ConfigError as exc:                     # "layer 2: dropout: p must be ..."
                raise ConfigError(f"layer {i}: {exc}") from None
        return cls(layers, input_shape=arch["input_shape"], loss=arch.get("loss", "softmax_cross_entropy"),
                   dtype=dtype, rng=rng, init=rng is not None, name=arch.get("name", "custom"),
                   dataset=arch.get("dataset", "mnist"))

    def architecture(self) -> dict:
        """The JSON-able dict that rebuilds this model (stored in its files):
        ``input_shape``, ``layers`` (each layer's ``config()``), ``loss``,
        ``name``, ``dataset``."""
        return {"input_shape": list(self.input_shape), "layers": [l.config() for l in self.layers],
                "loss": self.loss_name, "name": self.name, "dataset": self.dataset}

    def _build_flat(self, dtype: np.dtype) -> None:
        entries, total = [], 0
        for i, layer in enumerate(self.layers):
            for key, p in layer.params.items():
                entries.append((f"{i}.{key}", layer, key, p.shape, total))
                total += -(-p.size // _ALIGN) * _ALIGN
        self.flat_params = np.zeros(total, dtype=dtype)
        self.flat_grads = np.zeros(total, dtype=dtype)
        self._entries = []
        for name, layer, key, shape, off in entries:
            size = int(np.prod(shape))
            pv = self.flat_params[off:off + size].reshape(shape)
            gv = self.flat_grads[off:off + size].reshape(shape)
            pv[...] = layer.params[key]
            layer.bind(key, pv, gv)
            self._entries.append((name, layer, key))
        self.dtype = dtype

    def astype(self, dtype) -> Sequential:
        """A copy of this model computing in ``dtype`` (float64 for gradient checks)."""
        new = Sequential.from_architecture(self.architecture(), dtype=dtype)
        new.load_state_dict(self.state_dict())
        new.set_rng_state(self.rng_state())
        return new

    def copy(self) -> Sequential:
        """An independent copy: same identity, architecture, dtype and weights,
        with flat buffers of its own."""
        return self.astype(self.dtype)

    def __deepcopy__(self, memo) -> Sequential:
        # copy.deepcopy would copy each parameter view apart from the flat
        # buffer and break the one-buffer layout; rebuild instead
        return self.copy()

    def save(self, path, recipe: dict | None = None, metrics: dict | None = None) -> None:
        """Write the model to ``path`` as a native ``.safetensors`` file (the
        file ``numpynets evaluate`` reads and :func:`numpynets.load` loads),
        atomically; a folder that cannot be written raises
        :class:`~numpynets.errors.ModelFileError`."""
        from ..io.native import save_model               # io sits above nn: import when used

        save_model(path, self, recipe, metrics)

    # -- randomness -------------------------------------------------------
    def set_rng(self, rng: np.random.Generator) -> None:
        """Give the model (and every layer: ``layer.rng``) this generator."""
        self.rng = rng
        for layer in self.layers:
            layer.set_rng(rng)

    @property
    def uses_rng(self) -> bool:
        return any(layer.uses_rng for layer in self.layers)

    def rng_state(self) -> dict:
        """The generator's state, a JSON-able dict (NumPy's
        ``bit_generator.state``): save it with a checkpoint and give it to
        :meth:`set_rng_state` to resume with the very same random draws."""
        return self.rng.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        """Restore the generator from a :meth:`rng_state` dict."""
        name = type(self.rng.bit_generator).__name__
        if not isinstance(state, dict) or state.get("bit_generator") != name:
            got = state.get("bit_generator") if isinstance(state, dict) else type(state).__name__
            raise ConfigError(f"random generator state is for {got!r}; this model's generator is {name}")
        self.rng.bit_generator.state = state

    # -- weight decay -----------------------------------------------------
    def decay_mask(self) -> np.ndarray:
        """Boolean mask over ``flat_params``: True where weight decay applies
        by default (weight matrices and kernels, ``layer.decays(name)``);
        False for biases, normalisation scales and shifts and position
        embeddings. The alignment padding after a parameter (zeros that stay
        zero) follows that parameter, so the mask changes only where the
        decision does."""
        mask = np.zeros(self.flat_params.size, dtype=bool)
        base = self.flat_params.__array_interface__["data"][0]
        item = self.flat_params.itemsize
        starts = [(p.__array_interface__["data"][0] - base) // item for _, p, _ in self.named_parameters()]
        for (_, layer, key), a, b in zip(self._entries, starts, [*starts[1:], mask.size]):
            mask[a:b] = layer.decays(key)
        return mask

    # -- parameters -------------------------------------------------------
    def named_parameters(self):
        """[(name, param, grad), ...] in file order."""
        return [(n, l.params[k], l.grads[k]) for n, l, k in self._entries]

    def num_parameters(self) -> int:
        """The number of trainable values (the sum of every parameter's size)."""
        return sum(p.size for _, p, _ in self.named_parameters())

    def named_buffers(self):
        """[(name, buffer), ...] in file order (after the parameters in files)."""
        return [(f"{i}.{k}", b) for i, layer in enumerate(self.layers) for k, b in layer.buffers.items()]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and every buffer, by name."""
        return {**{n: p.copy() for n, p, _ in self.named_parameters()},
                **{n: b.copy() for n, b in self.named_buffers()}}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Parameters and buffers, by name, copied in place."""
        buffers = dict(self.named_buffers())
        mine = {**{n: p for n, p, _ in self.named_parameters()}, **buffers}
        if set(mine) != set(state):
            missing, extra = sorted(set(mine) - set(state)), sorted(set(state) - set(mine))
            raise ShapeError(f"parameters do not match the architecture: missing {show(missing, 200)}, "
                             f"unexpected {show(extra, 200)}")
        for n, p in mine.items():
            if tuple(state[n].shape) != p.shape:
                raise ShapeError(f"parameter {n}: shape {tuple(state[n].shape)} in the file, "
                                 f"{p.shape} in the architecture")
            if n in buffers:
                i, _, key = n.partition(".")
                self.layers[int(i)].set_buffer(key, state[n])
            else:
                p[...] = state[n]

    grads_pending = False                                  # zero_grad(defer=True) not yet completed

    def zero_grad(self, defer: bool = False) -> None:
        """Every gradient becomes zero: each layer fills its own views of the
        flat buffer (together, one pass over it), and a layer that can then
        overwrite instead of accumulate on its next backward notes it (a
        Linear).

        ``defer=True`` is the training loop's form, for a backward that
        follows at once: a layer that overwrites its gradients in its next
        backward (Linear, most of the MLP's 407,050) skips the fill, and the
        zeros are completed by that backward (``grads_pending`` until then)
        or, where none came, by the next step of an optimizer made over this
        model: a step without a backward still applies nothing."""
        if not defer:
            for layer in self.layers:
                layer.zero_grad()
            self.grads_pending = False
            return
        for layer in self.layers:
            layer.zero_grad_deferred()
        self.grads_pending = True

    # -- computation ------------------------------------------------------
    def _as_input(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1:] != self.input_shape:
            # math.prod, not np.prod: this runs every step and np.prod costs microseconds
            if x.ndim >= 1 and math.prod(x.shape[1:]) == math.prod(self.input_shape):
                x = x.reshape((x.shape[0], *self.input_shape))    # e.g. (N, 28, 28) -> (N, 784)
            else:
                raise ShapeError(f"model input: got samples of shape {tuple(x.shape[1:])}, "
                                 f"the model takes {self.input_shape}")
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        return x

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``x (N, *input_shape) -> out (N, *output_shape)``; samples with the
        same number of values are reshaped (``(N, 28, 28)`` for ``(784,)``) and
        cast to the model's dtype. ``training=True`` keeps what backward needs."""
        x = self._as_input(x)
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """``dout (N, *output_shape)``, the loss's gradient w.r.t. the output of
        the last ``forward(..., training=True)``: accumulates every parameter's
        gradient (into ``flat_grads``); returns ``None`` (the first layer
        computes no input gradient). After ``zero_grad(defer=True)`` it
        also completes the zeroing: layers it did not reach are filled, and
        a backward cut short by an error leaves zeros, not stale values."""
        if not self.grads_pending:
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
                if dout is None:
                    break
            return dout
        reached = 0
        try:
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
                reached += 1
                if dout is None:
                    break
        except BaseException:
            self.zero_grad()
            raise
        for layer in self.layers[:len(self.layers) - reached]:
            layer.zero_grad()
        self.grads_pending = False
        return dout

    def loss(self, out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """``(mean loss over the batch, dout (N, *output_shape))`` of the model's
        loss; ``y`` is ``(N,)`` class indices for cross-entropy, ``out``'s shape for MSE."""
        return self.loss_fn(out, y)

    def per_sample_loss(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The loss of each sample, ``(N,)``."""
        return PER_SAMPLE[self.loss_name](out, y)

    @property
    def is_classifier(self) -> bool:
        """True when the loss is softmax cross-entropy."""
        return self.loss_name == "softmax_cross_entropy"

    def predictions(self, out: np.ndarray) -> np.ndarray:
        """Class index for classifiers; 0/1 per output (threshold 0.5) otherwise."""
        if self.is_classifier:
            return out.argmax(axis=1)
        return (out > 0.5).astype(np.int64).reshape(out.shape[0], -1)

    def predict_proba(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """``x (N, *input_shape) -> (N, classes)`` probabilities (softmax) for a
        classifier, the raw outputs otherwise; in batches, in eval mode."""
        outs = [self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        out = np.concatenate(outs) if outs else np.zeros((0, *self.output_shape), self.dtype)
        return softmax(out) if self.is_classifier else out

    def summary(self) -> str:
        """One line per layer (index, layer, output shape, parameters) and the total."""
        lines, shape = [], self.input_shape
        for i, layer in enumerate(self.layers):
            shape = layer.output_shape(shape)
            n = sum(p.size for p in layer.params.values())
            lines.append(f"  {i:2d} {layer.describe():<52s} -> {str(shape):<14s} {n:>9,d}")
        lines.append(f"  total parameters: {self.num_parameters():,d}")
        return "\n".join(lines)
