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

import numpy as np

from ..checks import whole
from ..errors import ConfigError, ShapeError
from .layer import Layer, layer_from_config
from .losses import PER_SAMPLE, get_loss, softmax

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
    def __init__(self, layers: list[Layer], input_shape, loss: str = "softmax_cross_entropy",
                 dtype=np.float32, rng: np.random.Generator | None = None):
        self.layers = list(layers)
        if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
            raise ConfigError(f"input_shape must be a list of sizes, got {input_shape!r:.60}")
        self.input_shape = tuple(whole(s, "input_shape: each size") for s in input_shape)
        self.loss_name = loss
        self.loss_fn = get_loss(loss)
        shape = self.input_shape
        for i, layer in enumerate(self.layers):            # raises ShapeError naming the layer
            try:
                shape = layer.output_shape(shape)
            except ShapeError as exc:
                raise ShapeError(f"layer {i}: {exc}") from None
        self.output_shape = shape
        if self.layers:                                    # nothing consumes the input's gradient
            self.layers[0].needs_input_grad = False
        if rng is not None:
            for layer in self.layers:
                layer.reset_parameters(rng)
        self._build_flat(np.dtype(dtype))
        for layer in self.layers:
            layer.cast_buffers(self.dtype)
        self.set_rng(_child_generator(rng))

    # -- construction -----------------------------------------------------
    @classmethod
    def from_architecture(cls, arch: dict, rng=None, dtype=np.float32) -> Sequential:
        layers = []
        for i, c in enumerate(arch["layers"]):
            try:
                layers.append(layer_from_config(c))
            except ConfigError as exc:                     # "layer 2: dropout: p must be ..."
                raise ConfigError(f"layer {i}: {exc}") from None
        return cls(layers, arch["input_shape"], loss=arch.get("loss", "softmax_cross_entropy"),
                   dtype=dtype, rng=rng)

    def architecture(self) -> dict:
        return {"input_shape": list(self.input_shape), "layers": [l.config() for l in self.layers],
                "loss": self.loss_name}

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
            raise ShapeError(f"parameters do not match the architecture: missing {missing}, unexpected {extra}")
        for n, p in mine.items():
            if tuple(state[n].shape) != p.shape:
                raise ShapeError(f"parameter {n}: shape {tuple(state[n].shape)} in the file, "
                                 f"{p.shape} in the architecture")
            if n in buffers:
                i, _, key = n.partition(".")
                self.layers[int(i)].set_buffer(key, state[n])
            else:
                p[...] = state[n]

    def zero_grad(self) -> None:
        """Every gradient becomes zero: each layer fills its own views of the
        flat buffer (together, one pass over it), and a layer that can then
        overwrite instead of accumulate on its next backward notes it (a
        Linear)."""
        for layer in self.layers:
            layer.zero_grad()

    # -- computation ------------------------------------------------------
    def _as_input(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1:] != self.input_shape:
            if x.ndim >= 1 and int(np.prod(x.shape[1:])) == int(np.prod(self.input_shape)):
                x = x.reshape((x.shape[0], *self.input_shape))    # e.g. (N, 28, 28) -> (N, 784)
            else:
                raise ShapeError(f"model input: got samples of shape {tuple(x.shape[1:])}, "
                                 f"the model takes {self.input_shape}")
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        return x

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._as_input(x)
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
            if dout is None:
                break
        return dout

    def loss(self, out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        return self.loss_fn(out, y)

    def per_sample_loss(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        return PER_SAMPLE[self.loss_name](out, y)

    @property
    def is_classifier(self) -> bool:
        return self.loss_name == "softmax_cross_entropy"

    def predictions(self, out: np.ndarray) -> np.ndarray:
        """Class index for classifiers; 0/1 per output (threshold 0.5) otherwise."""
        if self.is_classifier:
            return out.argmax(axis=1)
        return (out > 0.5).astype(np.int64).reshape(out.shape[0], -1)

    def predict_proba(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        outs = [self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        out = np.concatenate(outs) if outs else np.zeros((0, *self.output_shape), self.dtype)
        return softmax(out) if self.is_classifier else out

    def summary(self) -> str:
        lines, shape = [], self.input_shape
        for i, layer in enumerate(self.layers):
            shape = layer.output_shape(shape)
            n = sum(p.size for p in layer.params.values())
            lines.append(f"  {i:2d} {layer.describe():<52s} -> {str(shape):<14s} {n:>9,d}")
        lines.append(f"  total parameters: {self.num_parameters():,d}")
        return "\n".join(lines)
