"""What a test needs from the machine, said once: outside CI a missing piece
skips the test (with the reason); under CI (``CI`` set) it fails it, since
CI must provide everything (``.ci/run`` installs it)."""

from __future__ import annotations

import importlib
import os

import pytest


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def unavailable(why: str, fix: str = ""):
    """Skip, or fail under CI, with ``why`` (and how CI provides it)."""
    if in_ci():
        pytest.fail(f"{why}: CI must provide it{f' ({fix})' if fix else ''}", pytrace=False)
    pytest.skip(why)


def need_module(name: str, fix: str = ""):
    """``importorskip`` that fails under CI: the module, imported."""
    try:
        return importlib.import_module(name)
    except ImportError:
        unavailable(f"{name} is not installed", fix or f"pip install {name}")
