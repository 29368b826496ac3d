"""The original project's architecture files and training-config activations.

The original (``src/architecture.rs``) describes a model as
``{"layers": [{"layer_type": ..., ...}, ...]}`` with ``layer_type`` one of
``dense``, ``conv2d``, ``batchnorm``, ``dropout`` (any case), and no
activation layers: the activation between layers comes from the training
config's ``activation_function`` (``relu`` when absent), with
``leaky_relu_alpha`` and ``elu_alpha``. :func:`translate` turns such a file
into our architecture:

* ``dense(input_size, output_size)`` -> ``linear``;
* ``conv2d(in_channels, out_channels, kernel_size, padding=0, stride=1,
  input_height, input_width)`` -> ``conv2d``, plus the ``flatten`` that a
  following dense layer needs (channel-major, the original's order);
* ``batchnorm(size, epsilon=1e-5, momentum=0.9)`` -> ``batchnorm`` over
  ``size`` features (after a conv2d: over its flattened C*H*W outputs, as
  the original normalises each output value, not each channel);
* ``dropout(drop_rate, size)`` -> ``dropout`` with ``p = drop_rate``;
* the activation after every dense and conv2d layer but the last one, after
  the batchnorm that follows it (dense -> batchnorm -> activation -> dropout).

The original's validation rules apply, with errors that name the layer
index and the field: required fields present, sizes > 0, stride > 0,
epsilon > 0, momentum in [0, 1], drop_rate in [0, 1), and the output size of
each layer equal to the input size of the next. Unlike the original,
unknown fields are refused rather than ignored.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..nn.activations import ACTIVATIONS, activation_config

# layer_type -> (required fields, optional fields with defaults)
SCHEMA = {
    "dense": (("input_size", "output_size"), {}),
    "conv2d": (("in_channels", "out_channels", "kernel_size", "input_height", "input_width"),
               {"padding": 0, "stride": 1}),
    "batchnorm": (("size",), {"epsilon": 1e-5, "momentum": 0.9}),
    "dropout": (("drop_rate",), {"size": None}),
}
WEIGHTED = ("dense", "conv2d")


def is_original(arch) -> bool:
    """An original-schema architecture: layers that say ``layer_type``."""
    return (isinstance(arch, dict) and isinstance(arch.get("layers"), list)
            and any(isinstance(l, dict) and "layer_type" in l for l in arch["layers"]))


def _int(i: int, cfg: dict, field: str, minimum: int = 1) -> int:
    v = cfg[field]
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"layer {i} ({cfg['layer_type']}): {field} must be a whole number >= {minimum}, got {v!r}")
    return v


def _num(i: int, cfg: dict, field: str) -> float:
    v = cfg[field]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"layer {i} ({cfg['layer_type']}): {field} must be a number, got {v!r}")
    return float(v)


def _parse(i: int, raw) -> dict:
    """One layer, validated: its fields with the defaults filled in."""
    if not isinstance(raw, dict) or "layer_type" not in raw:
        raise ConfigError(f"layer {i}: needs a \"layer_type\" ({', '.join(SCHEMA)})")
    kind = str(raw["layer_type"]).lower()
    if kind not in SCHEMA:
        raise ConfigError(f"layer {i}: unknown layer_type {raw['layer_type']!r}; choose one of {', '.join(SCHEMA)}")
    required, optional = SCHEMA[kind]
    unknown = sorted(set(raw) - {"layer_type", *required, *optional})
    if unknown:
        raise ConfigError(f"layer {i} ({kind}): unknown field(s) {unknown}; known: {sorted([*required, *optional])}")
    for f in required:
        if f not in raw:
            raise ConfigError(f"layer {i} ({kind}): missing required field {f!r}")
    cfg = {**optional, **raw, "layer_type": kind}
    if kind == "dense":
        _int(i, cfg, "input_size"), _int(i, cfg, "output_size")
    elif kind == "conv2d":
        for f in ("in_channels", "out_channels", "kernel_size", "input_height", "input_width", "stride"):
            _int(i, cfg, f)
        _int(i, cfg, "padding", minimum=0)
        h, w, k, p = cfg["input_height"], cfg["input_width"], cfg["kernel_size"], cfg["padding"]
        if h + 2 * p < k or w + 2 * p < k:
            raise ConfigError(f"layer {i} (conv2d): kernel_size {k} does not fit a {h}x{w} input with padding {p}")
    elif kind == "batchnorm":
        _int(i, cfg, "size")
        if not _num(i, cfg, "epsilon") > 0:
            raise ConfigError(f"layer {i} (batchnorm): epsilon must be > 0, got {cfg['epsilon']!r}")
        if not 0 <= _num(i, cfg, "momentum") <= 1:
            raise ConfigError(f"layer {i} (batchnorm): momentum must be in [0, 1], got {cfg['momentum']!r}")
    else:
        if not 0 <= _num(i, cfg, "drop_rate") < 1:
            raise ConfigError(f"layer {i} (dropout): drop_rate must be in [0, 1), got {cfg['drop_rate']!r}")
        if cfg["size"] is not None:
            _int(i, cfg, "size")
    return cfg


def _sizes(cfg: dict) -> tuple[int | None, int | None]:
    """(input size, output size) of a parsed layer, as flat counts (None: any)."""
    kind = cfg["layer_type"]
    if kind == "dense":
        return cfg["input_size"], cfg["output_size"]
    if kind == "conv2d":
        h, w, k, p, s = (cfg[f] for f in ("input_height", "input_width", "kernel_size", "padding", "stride"))
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        return cfg["in_channels"] * h * w, cfg["out_channels"] * ho * wo
    return cfg["size"], cfg["size"]


def translate(arch: dict, activation=None, name: str = "custom") -> dict:
    """Our architecture dict for the original's ``{"layers": [...]}``;
    ``activation`` is a name or layer config (default ReLU)."""
    unknown = sorted(set(arch) - {"layers"})
    if unknown:
        raise ConfigError(f"unknown top-level field(s) {unknown} in an original-schema architecture (it has \"layers\")")
    raw = arch["layers"]
    if not raw:
        raise ConfigError("the layer list is empty; an architecture needs at least one layer")
    parsed = [_parse(i, l) for i, l in enumerate(raw)]
    act = activation_config(activation if activation is not None else "relu")
    last_weighted = max((i for i, c in enumerate(parsed) if c["layer_type"] in WEIGHTED), default=-1)

    layers, prev_out, shape, pending = [], None, None, False
    first = parsed[0]
    if first["layer_type"] == "conv2d":
        input_shape = [first["in_channels"], first["input_height"], first["input_width"]]
    elif first["layer_type"] == "dense":
        input_shape = [first["input_size"]]
    elif first["size"] is not None:
        input_shape = [first["size"]]
    else:
        raise ConfigError("layer 0 (dropout): the first layer must give its size")
    shape = tuple(input_shape)                            # per-sample shape so far
    for i, c in enumerate(parsed):
        kind = c["layer_type"]
        n_in, n_out = _sizes(c)
        if i > 0 and n_in is not None and n_in != prev_out:
            raise ConfigError(f"layer {i}'s input size {n_in} does not match layer {i - 1}'s output size "
                              f"{prev_out} (the original: \"Layer connection mismatch\")")
        if pending and kind != "batchnorm":
            layers.append(dict(act))
            pending = False
        if kind == "conv2d":
            if len(shape) != 3 or shape != (c["in_channels"], c["input_height"], c["input_width"]):
                raise ConfigError(f"layer {i} (conv2d): takes {c['in_channels']}x{c['input_height']}x"
                                  f"{c['input_width']} images, but layer {i - 1} gives {'x'.join(map(str, shape))} "
                                  "values in another arrangement; a conv2d cannot follow a dense layer")
            layers.append({"type": "conv2d", "in_channels": c["in_channels"], "out_channels": c["out_channels"],
                           "kernel_size": c["kernel_size"], "stride": c["stride"], "padding": c["padding"]})
            h, w, k, p, s = (c[f] for f in ("input_height", "input_width", "kernel_size", "padding", "stride"))
            shape = (c["out_channels"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        elif kind in ("dense", "batchnorm"):
            if len(shape) != 1:
                layers.append({"type": "flatten"})        # channel-major, as the original's dense input
                shape = (prev_out,)
            if kind == "dense":
                layers.append({"type": "linear", "in_features": c["input_size"], "out_features": c["output_size"]})
                shape = (c["output_size"],)
            else:
                layers.append({"type": "batchnorm", "size": c["size"], "momentum": float(c["momentum"]),
                               "eps": float(c["epsilon"])})
        else:
            layers.append({"type": "dropout", "p": float(c["drop_rate"])})
        if kind in WEIGHTED and i != last_weighted:
            pending = True
        prev_out = n_out if n_out is not None else prev_out
    if pending:
        layers.append(dict(act))
    if len(shape) != 1:
        layers.append({"type": "flatten"})
    return {"name": name, "dataset": "mnist", "input_shape": input_shape, "layers": layers,
            "loss": "softmax_cross_entropy"}


# -- the training config's activation fields -----------------------------------
ACTIVATION_FIELDS = ("activation_function", "leaky_relu_alpha", "elu_alpha")


def config_activation(cfg: dict, path="training config") -> dict | None:
    """The activation a training config names (``activation_function`` with
    its alpha), as a layer config, or None when it names none. Validated
    as the original does: a known name, ``leaky_relu_alpha >= 0``,
    ``elu_alpha > 0``."""
    if not isinstance(cfg, dict):
        return None
    for field, positive in (("leaky_relu_alpha", False), ("elu_alpha", True)):
        v = cfg.get(field)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (v <= 0 if positive else v < 0):
            raise ConfigError(f"{path}: {field} must be a number {'> 0' if positive else '>= 0'}, got {v!r}")
    name = cfg.get("activation_function")
    if name is None:
        return None
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ConfigError(f"{path}: unknown activation_function {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    kind = ACTIVATIONS[name.lower()]
    layer = {"type": kind}
    if kind == "leaky_relu" and cfg.get("leaky_relu_alpha") is not None:
        layer["alpha"] = float(cfg["leaky_relu_alpha"])
    if kind == "elu" and cfg.get("elu_alpha") is not None:
        layer["alpha"] = float(cfg["elu_alpha"])
    return activation_config(layer)


def name_from_path(path) -> str:
    return Path(path).stem
