"""docs/tutorial.md runs as written: its ```python blocks, in order, in one
namespace (as a reader pasting them into one session would). The blocks
assert their own results: the PReLU's gradient check passes, the broken
variant's fails, the model trains past a floor."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from numpynets.nn import LAYERS
from numpynets.runtime import blas_threads

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_tutorial_links_resolve():
    for label, target in re.findall(r"\[([^\]]*)\]\(([^)\s]+)\)", TUTORIAL.read_text(encoding="utf-8")):
        if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
            assert (TUTORIAL.parent / target.split("#")[0]).exists(), f"tutorial: [{label}]({target}) points at nothing"


def test_tutorial_has_code():
    blocks = python_blocks(TUTORIAL.read_text(encoding="utf-8"))
    assert len(blocks) >= 6, "the tutorial lost its code blocks (or their ```python fences)"


@pytest.mark.mnist
def test_tutorial_runs(mnist_path, capsys):
    registry = dict(LAYERS)                       # a block that registers a layer must not leak it
    namespace: dict = {"__name__": "tutorial"}
    try:
        with blas_threads(1):                     # small matrices: one thread is fastest, on a busy machine too
            for number, block in enumerate(python_blocks(TUTORIAL.read_text(encoding="utf-8")), 1):
                code = compile(block, f"docs/tutorial.md, python block {number}", "exec")
                exec(code, namespace)             # noqa: S102 - the tutorial is ours
    finally:
        LAYERS.clear()
        LAYERS.update(registry)
    out = capsys.readouterr().out
    assert "test accuracy" in out
