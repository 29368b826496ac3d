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

# -- gradient-check markers -----------------------------------------------
# ``@pytest.mark.gradcheck("conv2d")`` says "this test is a finite-difference
# gradient check of the layer (or loss) type conv2d". tests/test_layer_registry.py
# finds the markers and fails when a registered type has none. So that a
# marker cannot claim what its test does not do, the fixture below watches
# the test run: a type it names must actually go through ``check_layer``
# (layers: a layer of that type) or through ``numerical_gradient`` together
# with a call of that loss function (losses). A test parametrized over
# several types names them all and must check one of them in each instance.

@pytest.fixture(autouse=True)
def _gradcheck_marker_is_honest(request, monkeypatch):
    kinds = {k for m in request.node.iter_markers("gradcheck") for k in m.args}
    if not kinds:
        yield
        return
    from numpynets.nn import gradcheck
    from numpynets.nn.losses import LOSSES

    seen: set[str] = set()
    module = request.module
    check_layer = gradcheck.check_layer
    numerical_gradient = gradcheck.numerical_gradient

    def watched_check_layer(layer, *args, **kwargs):
        seen.add(getattr(layer, "kind", "?"))
        return check_layer(layer, *args, **kwargs)

    def watched_numerical_gradient(*args, **kwargs):
        seen.add("numerical_gradient")
        return numerical_gradient(*args, **kwargs)

    def watched_loss(name, fn):
        def loss(*args, **kwargs):
            seen.add(name)
            return fn(*args, **kwargs)
        return loss

    # tests import these by name, so patch the test module's own globals too
    for name, watched in (("check_layer", watched_check_layer), ("numerical_gradient", watched_numerical_gradient)):
        monkeypatch.setattr(gradcheck, name, watched)
        if hasattr(module, name):
            monkeypatch.setattr(module, name, watched)
    for name, fn in LOSSES.items():
        for attr, value in vars(module).items():
            if value is fn:
                monkeypatch.setattr(module, attr, watched_loss(name, fn))
    yield
    # a test parametrized over several types checks one of them per instance
    checked = sorted(k for k in kinds if k in seen and (k not in LOSSES or "numerical_gradient" in seen))
    if not checked:
        pytest.fail(f"marked gradcheck({', '.join(sorted(kinds))}) but gradient-checked none of them: "
                    "call check_layer on such a layer (or numerical_gradient on such a loss)")
