"""Build the API reference from the docstrings with pdoc; fail on any warning.

    python docs/build_api.py            # build into a temporary folder, then remove it (CI)
    python docs/build_api.py api-html   # keep the pages in api-html/ (open api-html/index.html)

pdoc reports what it cannot document (a module that fails to import, an
annotation it cannot parse, a docstring it cannot read) as a Python warning
and carries on; here every warning is printed and the exit status is 1, so a
broken docstring fails CI instead of vanishing from the reference. The
docstrings are reStructuredText (``code``, ``:class:`...```, ``::`` blocks).
Needs the ``docs`` extra: ``pip install ".[docs]"``.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path


def modules() -> list[str]:
    """The module specs for pdoc: ``numpynets``, plus every module that its
    package's ``__all__`` leaves out (a package's ``__all__`` lists the names
    its users import, and pdoc follows only the submodules it names; the
    reference still documents them all)."""
    import importlib
    import pkgutil

    import numpynets

    specs = ["numpynets"]
    for m in pkgutil.walk_packages(numpynets.__path__, "numpynets."):
        parent, _, leaf = m.name.rpartition(".")
        names = getattr(importlib.import_module(parent), "__all__", None)
        if names is not None and leaf not in names and not leaf.startswith("_"):
            specs.append(m.name)
    return specs


def build(out: Path) -> list[warnings.WarningMessage]:
    """Write the HTML reference of the whole ``numpynets`` package into
    ``out``; return the warnings raised while doing it."""
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="restructuredtext", footer_text="numpynets")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*modules(), output_directory=out)
    return list(caught)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("usage: python docs/build_api.py [OUT_DIR]", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(argv[0]) if argv else Path(tmp)
        caught = build(out)
        pages = len(list(out.rglob("*.html")))
    for w in caught:
        print(f"pdoc warning: {w.filename}:{w.lineno}: {w.category.__name__}: {w.message}", file=sys.stderr)
    if caught:
        print(f"api reference: {len(caught)} warning(s); fix the docstrings above", file=sys.stderr)
        return 1
    if pages == 0:
        print("api reference: pdoc wrote no pages", file=sys.stderr)
        return 1
    print(f"api reference: {pages} pages, no warnings" + (f", in {argv[0]}/" if argv else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
