"""The built-in models and their recipes, and building any model from an
architecture dict (or JSON file).

An architecture is ``{"input_shape": [...], "layers": [{"type": ...}, ...],
"loss": ...}`` (plus ``"name"``); it is stored in every model file, so a
model can be rebuilt from the file alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ConfigError, NumpynetsError
from ..jsonfile import read_json
from ..nn.sequential import Sequential
from . import attention, cnn, convnet, mlp, xor
from .recipes import Recipe


@dataclass
class BuiltinModel:
    name: str
    summary: str
    architecture: Callable[..., dict]
    recipes: dict[str, Recipe]
    dataset: str = "mnist"


MODELS: dict[str, BuiltinModel] = {}


def register_model(model: BuiltinModel) -> None:
    MODELS[model.name] = model


register_model(BuiltinModel("mlp", "784 -> 512 ReLU -> 10", mlp.architecture, mlp.RECIPES))
register_model(BuiltinModel("xor", "2 -> 4 sigmoid -> 1 sigmoid, MSE", xor.architecture, xor.RECIPES,
                            dataset="xor"))
register_model(BuiltinModel("cnn", "conv 1->8 3x3 pad 1 + ReLU -> maxpool 2x2 -> 1568 -> 10",
                            cnn.architecture, cnn.RECIPES))
register_model(BuiltinModel("attention", "4x4 patches -> 49 tokens -> self-attention -> FFN -> mean pool -> 10",
                            attention.architecture, attention.RECIPES))
register_model(BuiltinModel("convnet", "conv 32 5x5 -> pool -> conv 64 3x3 -> pool -> 256 -> dropout -> 10, trained with augmentation",
                            convnet.architecture, convnet.RECIPES))


def get_model(name: str) -> BuiltinModel:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)} "
                          "or give an architecture .json file")
    return MODELS[name]


def get_recipe(model: BuiltinModel, recipe: str | None) -> Recipe:
    recipe = recipe or "default"
    if recipe not in model.recipes:
        raise ConfigError(f"model {model.name!r} has no recipe {recipe!r}; choose one of "
                          f"{', '.join(model.recipes)}")
    return model.recipes[recipe]


def build_architecture(model: BuiltinModel, options: dict) -> dict:
    try:
        arch = model.architecture(**options)
    except TypeError as exc:
        raise ConfigError(f"model {model.name!r}: bad architecture option(s) {sorted(options)} ({exc})") from None
    arch["name"] = model.name
    arch["dataset"] = model.dataset
    return arch


ARCH_KEYS = {"input_shape", "layers", "loss", "name", "dataset"}


def check_architecture(arch) -> dict:
    """Parse an architecture at the edge: a JSON object with ``input_shape``
    (a list of sizes) and ``layers`` (a non-empty list of objects), and
    optional ``loss``, ``name``, ``dataset`` (strings). Sizes inside the
    layers are checked by each layer (:mod:`numpynets.checks`)."""
    if not isinstance(arch, dict) or "layers" not in arch or "input_shape" not in arch:
        raise ConfigError("an architecture needs \"input_shape\" and \"layers\"")
    if not isinstance(arch["layers"], list) or not all(isinstance(c, dict) for c in arch["layers"]):
        raise ConfigError("an architecture's \"layers\" is a list of objects ({\"type\": ...})")
    if not arch["layers"]:
        raise ConfigError("an architecture needs at least one layer")
    if not isinstance(arch["input_shape"], list):
        raise ConfigError("an architecture's \"input_shape\" is a list of sizes, e.g. [784]")
    for key in ("loss", "name", "dataset"):
        if key in arch and not isinstance(arch[key], str):
            raise ConfigError(f"an architecture's {key!r} is a string, got {str(arch[key])[:40]!r}")
    return arch


def build(arch: dict, seed: int | np.random.Generator | None = 0, dtype=np.float32,
          init: bool = True) -> Sequential:
    """A model from an architecture dict, initialised from ``seed``; with
    ``init=False`` the parameters are left at zero for a loader to fill (no
    random draw just to be overwritten). Every failure is a
    :class:`ConfigError` (or another :class:`NumpynetsError`)."""
    check_architecture(arch)
    rng = None if not init else seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    try:
        model = Sequential.from_architecture(arch, rng=rng, dtype=dtype)
    except NumpynetsError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError, RecursionError) as exc:
        raise ConfigError(f"bad architecture: {str(exc)[:200]}") from None
    except MemoryError:                                    # e.g. a damaged file asking for 10^12 weights
        raise ConfigError("bad architecture: its parameters do not fit in memory "
                          f"(layers {[c.get('type') if isinstance(c, dict) else c for c in arch['layers']][:20]})") from None
    return model


def load_architecture_file(path, activation=None) -> dict:
    """Our schema, or the original's (``"layer_type"``, translated by
    :mod:`numpynets.models.original_arch` with ``activation`` between its
    layers, ReLU when None)."""
    from . import original_arch

    arch = read_json(path, "architecture file")
    if not isinstance(arch, dict):
        raise ConfigError(f"{path}: an architecture file holds a JSON object")
    if original_arch.is_original(arch):
        try:
            return original_arch.translate(arch, activation, name=original_arch.name_from_path(path))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    if activation is not None:
        raise ConfigError(f"{path}: this architecture names its own activation layers, so the training "
                          f"config's activation_function ({activation['type']}) cannot apply; remove one of them")
    arch.setdefault("name", "custom")
    return arch


def takes_activation(model: BuiltinModel) -> bool:
    import inspect

    return "activation" in inspect.signature(model.architecture).parameters
