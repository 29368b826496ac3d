"""Shared fixtures. The real MNIST files live beside the checkout in
``../shared/mnist`` (or wherever ``$NUMPYNETS_DATA`` points); they are never
copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from needs import in_ci, unavailable

ROOT = Path(__file__).resolve().parent.parent


def mnist_dir() -> Path | None:
    """$NUMPYNETS_DATA, ../shared/mnist, then the user cache where the quick
    start's ``numpynets train`` downloads MNIST."""
    from numpynets.data.mnist import cache_dir, find_mnist

    for cand in (os.environ.get("NUMPYNETS_DATA"), ROOT.parent / "shared" / "mnist", cache_dir()):
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
        unavailable("MNIST not found (../shared/mnist, $NUMPYNETS_DATA or the user cache)",
                    "put it in ../shared/mnist or run 'numpynets data --download'")
    return path


@pytest.fixture(scope="session")
def mnist(mnist_path):
    """The whole data set, loaded and verified once per test session."""
    from numpynets.data import load_mnist

    return load_mnist(mnist_path)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# -- under CI a skip is a failure --------------------------------------------
# A test that skips has not run; CI that passes with skipped tests has not
# checked what they check. So under CI every skip (a pytest.skip, a skip
# marker, an importorskip someone adds later) is reported as a failure, and
# the summary counts them. Outside CI skips stay skips (with -ra reasons).

_SKIPS_TURNED: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which must run every test: {reason}"
        _SKIPS_TURNED.append(item.nodeid)


def pytest_terminal_summary(terminalreporter):
    if in_ci():
        terminalreporter.write_line(f"ci: {len(_SKIPS_TURNED)} skipped test(s) counted as failures"
                                    + (": " + ", ".join(_SKIPS_TURNED) if _SKIPS_TURNED else ""))
