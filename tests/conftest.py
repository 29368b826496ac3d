"""Shared fixtures. The real MNIST files live beside the checkout in
``../shared/mnist`` (or wherever ``$NUMPYNETS_DATA`` points); they are never
copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def mnist_dir() -> Path | None:
    from numpynets.data.mnist import find_mnist

    for cand in (os.environ.get("NUMPYNETS_DATA"), ROOT.parent / "shared" / "mnist"):
        if cand and find_mnist(cand) is not None:
            return Path(cand)
    return None


# Commands run by tests find the real data the way a user's would, through
# $NUMPYNETS_DATA (tests of the lookup order itself monkeypatch it).
_FOUND = mnist_dir()
if _FOUND is not None and not os.environ.get("NUMPYNETS_DATA"):
    os.environ["NUMPYNETS_DATA"] = str(_FOUND)


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    path = mnist_dir()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("MNIST not found: CI needs ../shared/mnist or $NUMPYNETS_DATA")
        pytest.skip("MNIST not found (../shared/mnist or $NUMPYNETS_DATA)")
    return path


@pytest.fixture(scope="session")
def mnist(mnist_path):
    """The whole data set, loaded and verified once per test session."""
    from numpynets.data import load_mnist

    return load_mnist(mnist_path)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
