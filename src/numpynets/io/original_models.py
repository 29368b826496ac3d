"""Between numpynets models and the original project's model files.

:mod:`numpynets.io.original` knows the byte layouts; this module knows which
numpynets model each layout is, and which models a layout can hold:

* ``mlp``: ``linear(n_in → h) → relu → linear(h → n_out)``, nothing else
  (one hidden layer, biases, ReLU);
* ``cnn``: ``conv2d(k×k, stride 1, padding 1) → relu → maxpool2d(2, 2) →
  flatten → linear`` on ``(in_ch, H, W)`` inputs;
* ``attention``: the original's token pipeline with no residuals, no layer
  norm, one head, 4×4 patches of 28×28 images.

Public entry points: :func:`read_original` (file → model),
:func:`write_original` (model → file) and :func:`original_kind` (which
layout, if any, can hold a model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ModelFileError, NumpynetsError
from .native import atomic_save
from .original import (CLASSES, ELEMENT_TYPES, KINDS, Layout, attention_layout, cnn_layout, detect, mlp_layout,
                       pack, read_tensors)


class NotRepresentable(ModelFileError):
    """A model that an original file layout cannot hold."""


def _layers(model) -> list:
    return [layer.kind for layer in model.layers]


class _WithoutDropout:
    """The model as the original's files see it: Dropout has no parameters
    and is the identity outside training, so it is left out (it does not
    prevent a conversion); everything else reads through to the model."""

    def __init__(self, model):
        self._model = model
        self.layers = [l for l in model.layers if l.kind != "dropout"]

    def __getattr__(self, name):
        return getattr(self._model, name)


def _all_kinds(layers) -> set:
    kinds = set()
    for layer in layers:
        kinds.add(layer.kind)
        kinds |= _all_kinds(getattr(layer, "sublayers", []))
    return kinds


def _representable(model):
    """``model`` without its Dropout layers; BatchNorm is refused outright."""
    if "batchnorm" in _all_kinds(model.layers):
        raise NotRepresentable("the original's .bin layouts cannot hold BatchNorm (they have no place for its "
                               "scale, shift and running statistics); keep this model as .safetensors")
    return model if isinstance(model, _WithoutDropout) else _WithoutDropout(model)


@dataclass(frozen=True)
class OriginalKind:
    """Everything about one original file layout, in one record.

    * ``architecture(layout)``: the numpynets architecture a file of this
      layout rebuilds;
    * ``check(model)``: why this layout cannot hold ``model`` (None: it can);
    * ``layout(model, element_type)``: the file layout of a model that fits;
    * ``views(model)``: ``{file array name: the model's parameter array}``,
      the live parameter views (not copies). Saving packs these arrays;
      loading assigns into the very same views, so the mapping between file
      and model is written once and loading is its exact inverse.
    * ``element_types``: what the file may hold (only the MLP's may be float64).
    """

    name: str
    architecture: Callable[[Layout], dict]
    check: Callable[..., str | None]
    layout: Callable[..., Layout]
    views: Callable[..., dict]
    element_types: tuple[str, ...] = ("float32",)


# -- MLP --------------------------------------------------------------------
def _mlp_architecture(layout: Layout) -> dict:
    from ..models import mlp

    n_in, hidden, n_out = (layout.dims[k] for k in ("n_in", "hidden", "n_out"))
    if (n_in, n_out) == (784, 10):
        arch = mlp.architecture(hidden=hidden)
        arch.update(name="mlp", dataset="mnist")
        return arch
    return {"input_shape": [n_in], "name": "custom", "dataset": "mnist", "loss": "softmax_cross_entropy",
            "layers": [{"type": "linear", "in_features": n_in, "out_features": hidden},
                       {"type": "relu"},
                       {"type": "linear", "in_features": hidden, "out_features": n_out}]}


def _mlp_check(model) -> str | None:
    kinds = _layers(model)
    if kinds != ["linear", "relu", "linear"]:
        return (f"it holds exactly linear -> relu -> linear (one hidden ReLU layer); this model is "
                f"{' -> '.join(kinds)}")
    if not all(model.layers[i].bias for i in (0, 2)):
        return "its linear layers have biases; this model's do not"
    if not model.is_classifier:
        return "it holds a softmax classifier; this model's loss is " + model.loss_name
    return None


def _mlp_layout(model, element_type: str) -> Layout:
    l1, l2 = model.layers[0], model.layers[2]
    return mlp_layout(l1.in_features, l1.out_features, l2.out_features, element_type)


def _mlp_views(model) -> dict:
    l1, l2 = model.layers[0], model.layers[2]
    return {"W1": l1.params["W"], "b1": l1.params["b"], "W2": l2.params["W"], "b2": l2.params["b"]}


# -- CNN ----------------------------------------------------------------------
CNN_LAYERS = ["conv2d", "relu", "maxpool2d", "flatten", "linear"]


def _cnn_architecture(layout: Layout) -> dict:
    d = layout.dims
    oc, ic, k, h, w = d["out_ch"], d["in_ch"], d["k"], d["H"], d["W"]
    ch, cw = h + 2 - k + 1, w + 2 - k + 1                   # conv output (padding 1, stride 1): H x W for k=3
    if min(ch, cw) < 2:
        raise ModelFileError(f"the CNN header's {h}x{w} input is too small for a {k}x{k} kernel and 2x2 pooling")
    pooled = oc * (ch // 2) * (cw // 2)
    if d["fc_in"] != pooled:
        raise ModelFileError(f"the CNN header says fc_in = {d['fc_in']}, but {oc} channels of "
                             f"{ch // 2}x{cw // 2} after pooling make {pooled}; damaged header")
    if (ic, k, h, w, d["fc_out"]) == (1, 3, 28, 28, 10):      # the built-in model, any number of filters
        from ..models import cnn

        arch = cnn.architecture(channels=oc, kernel=k)
        arch.update(name="cnn", dataset="mnist")
        return arch
    return {"input_shape": [ic, h, w], "name": "custom", "dataset": "mnist", "loss": "softmax_cross_entropy",
            "layers": [{"type": "conv2d", "in_channels": ic, "out_channels": oc, "kernel_size": k,
                        "stride": 1, "padding": 1},
                       {"type": "relu"},
                       {"type": "maxpool2d", "kernel_size": 2, "stride": 2},
                       {"type": "flatten"},
                       {"type": "linear", "in_features": d["fc_in"], "out_features": d["fc_out"]}]}


def _cnn_check(model) -> str | None:
    kinds = _layers(model)
    if kinds != CNN_LAYERS:
        return f"it holds exactly {' -> '.join(CNN_LAYERS)}; this model is {' -> '.join(kinds)}"
    conv, pool, fc = model.layers[0], model.layers[2], model.layers[4]
    if (conv.stride, conv.padding) != (1, 1):
        return f"its convolution has stride 1 and padding 1; this one has stride {conv.stride}, padding {conv.padding}"
    if (pool.kernel_size, pool.stride) != (2, 2):
        return f"its max-pool is 2x2 with stride 2; this one is {pool.kernel_size}x{pool.kernel_size}/{pool.stride}"
    if not (conv.bias and fc.bias):
        return "its layers have biases; this model's do not"
    if len(model.input_shape) != 3:
        return f"it takes (C, H, W) images; this model takes {model.input_shape}"
    return None


def _cnn_layout(model, element_type: str) -> Layout:
    conv, fc = model.layers[0], model.layers[4]
    _, h, w = model.input_shape
    return cnn_layout(conv.out_channels, conv.in_channels, conv.kernel_size, h, w, fc.in_features,
                      fc.out_features)


def _cnn_views(model) -> dict:
    conv, fc = model.layers[0], model.layers[4]
    # fc rows are channel-major (c, y, x): our Flatten's order, so no permutation
    return {"conv_W": conv.params["W"], "conv_b": conv.params["b"], "fc_W": fc.params["W"], "fc_b": fc.params["b"]}


# -- attention ---------------------------------------------------------------
ATTENTION_LAYERS = ["patchify", "linear", "position_embedding", "relu", "self_attention",
                    "linear", "relu", "linear", "mean_pool", "linear"]
_ATT_SLOTS = {  # file array -> (layer index, parameter)
    "W_patch": (1, "W"), "b_patch": (1, "b"), "pos": (2, "pos"),
    "W_q": (4, "Wq"), "b_q": (4, "bq"), "W_k": (4, "Wk"), "b_k": (4, "bk"), "W_v": (4, "Wv"), "b_v": (4, "bv"),
    "W_ff1": (5, "W"), "b_ff1": (5, "b"), "W_ff2": (7, "W"), "b_ff2": (7, "b"), "W_cls": (9, "W"), "b_cls": (9, "b"),
}


def _attention_architecture(layout: Layout) -> dict:
    from ..models import attention

    arch = attention.architecture(d_model=layout.dims["d_model"], ff_dim=layout.dims["ff_dim"])
    arch.update(name="attention", dataset="mnist")
    return arch


def _attention_check(model) -> str | None:
    kinds = _layers(model)
    if kinds != ATTENTION_LAYERS:
        extra = sorted({k for k in kinds if k in ("residual", "layer_norm")})
        if extra:
            return (f"the original's attention model has no {' and no '.join(extra)} layers (and one block); "
                    "this model has them")
        return f"it holds exactly {' -> '.join(ATTENTION_LAYERS)}; this model is {' -> '.join(kinds)}"
    if tuple(model.input_shape) != (28, 28) or model.layers[0].patch != 4:
        return f"it takes 28x28 images in 4x4 patches; this model takes {model.input_shape} in " \
               f"{model.layers[0].patch}x{model.layers[0].patch} patches"
    if model.layers[4].heads != 1:
        return f"its attention has one head; this model's has {model.layers[4].heads}"
    if model.layers[9].out_features != CLASSES:
        return f"it has {CLASSES} classes; this model has {model.layers[9].out_features}"
    if not all(model.layers[i].bias for i in (1, 5, 7, 9)):
        return "its linear layers have biases; this model's do not"
    return None


def _attention_layout(model, element_type: str) -> Layout:
    return attention_layout(model.layers[1].out_features, model.layers[5].out_features)


def _attention_views(model) -> dict:
    return {name: model.layers[i].params[p] for name, (i, p) in _ATT_SLOTS.items()}


# -- the table of kinds: one record each --------------------------------------
ORIGINAL_KINDS: dict[str, OriginalKind] = {k.name: k for k in (
    OriginalKind("mlp", _mlp_architecture, _mlp_check, _mlp_layout, _mlp_views, ("float64", "float32")),
    OriginalKind("cnn", _cnn_architecture, _cnn_check, _cnn_layout, _cnn_views),
    OriginalKind("attention", _attention_architecture, _attention_check, _attention_layout, _attention_views),
)}
assert tuple(ORIGINAL_KINDS) == KINDS


def original_kind(model, kind: str | None = None) -> str:
    """The original layout that can hold ``model`` (``kind`` forces one);
    raises :class:`NotRepresentable` saying why none can."""
    if kind is not None and kind not in KINDS:
        raise NotRepresentable(f"unknown original model kind {kind!r}; choose one of {', '.join(KINDS)}")
    model = _representable(model)
    reasons = {}
    for k in ([kind] if kind else KINDS):
        why = ORIGINAL_KINDS[k].check(model)
        if why is None:
            return k
        reasons[k] = why
    if kind:
        raise NotRepresentable(f"the original's {kind} file cannot hold this model: {reasons[kind]}")
    name = model.name
    if name in KINDS:                                       # say why the matching layout does not fit
        raise NotRepresentable(f"the original's {name} file cannot hold this {name} model: {reasons[name]}")
    raise NotRepresentable(f"no original file layout can hold this model ({' -> '.join(_layers(model))}); "
                           "the original had only the MLP, CNN and attention models; keep it as .safetensors")


def model_tensors(model, kind: str, element_type: str | None = None) -> tuple[Layout, dict]:
    """(layout, named arrays) of ``model`` in the original ``kind`` file."""
    original_kind(model, kind)
    model = _representable(model)
    rec = ORIGINAL_KINDS[kind]
    element_type = element_type or rec.element_types[0]
    if element_type not in rec.element_types:
        raise NotRepresentable(f"the original's {kind} file holds {' or '.join(rec.element_types)} only, "
                               f"not {element_type}")
    return rec.layout(model, element_type), rec.views(model)


def _load(model, layout: Layout, tensors: dict) -> None:
    """Assign the file's arrays through the same views :func:`model_tensors` packs."""
    views = ORIGINAL_KINDS[layout.kind].views(model)
    assert set(views) == set(tensors), (sorted(views), sorted(tensors))
    for name, view in views.items():
        view[...] = tensors[name]


# -- public API -------------------------------------------------------------
def read_original(path, kind: str | None = None, dtype=np.float32, d_model: int | None = None,
                  ff_dim: int | None = None):
    """Load an original model file; returns ``(model, metadata)`` like
    :func:`numpynets.io.load_model`.

    The layout (and for the MLP the element type) is found from the header
    and the file size; ``metadata["original"]`` says what was found, and
    ``metadata["description"]`` says it in words, e.g. ``original mlp file
    (784-512-10, float64)``. ``dtype`` is the model's compute type: float32
    (the default, what numpynets trains in; float64 values are rounded) or
    float64 (keeps every bit of a float64 file, for conversions).
    """
    from ..models.registry import build

    layout = detect(path, kind, d_model, ff_dim)
    try:
        arch = ORIGINAL_KINDS[layout.kind].architecture(layout)
        model = build(arch, dtype=dtype, init=False)        # the file's values replace the zeros
    except NumpynetsError as exc:
        raise ModelFileError(f"{path}: {layout.describe()} does not make a numpynets model: {exc}") from None
    _load(model, layout, read_tensors(path, layout))
    meta = {"format": "original", "architecture": arch, "description": layout.describe(),
            "original": {"kind": layout.kind, "element_type": layout.element_type, "dims": dict(layout.dims),
                         "bytes": layout.nbytes},
            "recipe": {}, "metrics": {}}
    return model, meta


def write_original(path, model, kind: str | None = None, element_type: str | None = None) -> Layout:
    """Write ``model`` as the original's file (atomically) and return its layout.

    ``kind`` defaults to the one layout that can hold the model;
    ``element_type`` ("float64" or "float32") matters for the MLP only and
    defaults to float64, the type the original's ``digit_recognizer.py``
    reads. Models the layout cannot hold raise :class:`NotRepresentable`.
    """
    if element_type is not None and element_type not in ELEMENT_TYPES:
        raise NotRepresentable(f"element type {element_type!r}: choose float64 or float32")
    try:
        kind = original_kind(model, kind)
        layout, tensors = model_tensors(model, kind, element_type)
    except NotRepresentable as exc:
        raise NotRepresentable(f"{path}: {exc}") from None
    data = pack(layout, tensors)

    def writer(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_save(Path(path), writer)
    return layout
