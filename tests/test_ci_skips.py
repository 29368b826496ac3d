"""Under CI a skipped test is a failure (tests/conftest.py), outside CI it
stays a skip; ``need_module`` skips or fails the same way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("ci", [True, False])
def test_skips_fail_under_ci(tmp_path, ci):
    for name in ("conftest.py", "needs.py"):
        shutil.copy(HERE / name, tmp_path / name)
    (tmp_path / "test_sample.py").write_text(
        "import pytest\nfrom needs import need_module\n\n"
        "def test_skips():\n    pytest.skip('no such thing here')\n\n"
        "def test_needs():\n    need_module('numpynets_no_such_module')\n\n"
        "@pytest.mark.skip(reason='marked')\ndef test_marked():\n    pass\n\n"
        "def test_runs():\n    assert True\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", str(tmp_path)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    if ci:
        assert r.returncode == 1, out
        # the marker skips at setup (an error), pytest.skip in the call (a failure);
        # need_module fails by itself, naming how CI provides the module
        assert "2 failed, 1 passed, 1 error" in out, out
        assert "ci: 2 skipped test(s) counted as failures" in out, out
        assert "CI must provide it (pip install numpynets_no_such_module)" in out, out
    else:
        assert r.returncode == 0, out
        assert "1 passed, 3 skipped" in out, out
