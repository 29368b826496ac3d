"""The built-in models (mlp, ...), their recipes, and building models from
architecture JSON."""

from .recipes import Recipe  # noqa: F401
from .registry import MODELS, build, build_architecture, get_model, get_recipe  # noqa: F401
