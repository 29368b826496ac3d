"""Every registered layer type (``numpynets.nn.LAYERS``) and every loss
(``numpynets.nn.losses.LOSSES``) has a derivation page, ``docs/layers/<type>.md``,
and a finite-difference gradient check. A type registered later cannot skip
either: these tests walk the registries, not a list written here.

A gradient check is a test marked ``@pytest.mark.gradcheck("<type>")``, or a
row of a ``GRADCHECK_CASES`` table that a test is parametrized over, in any
``tests/test_*.py``; they are found here by reading the test files, so it does
not matter which file holds them. ``conftest.py`` makes the marker honest: a
marked test that never runs ``check_layer`` on a layer of that type (or
``numerical_gradient`` on that loss) fails.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
from pathlib import Path

import pytest

from numpynets.nn import LAYERS
from numpynets.nn.losses import LOSSES

pytest_plugins = ["pytester"]                             # for the watcher test at the end

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "docs" / "layers"
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")            # [text](target)


def registered() -> dict[str, object]:
    """Type name -> the class (layers) or function (losses) it names."""
    return {**LAYERS, **LOSSES}


def _is_gradcheck_mark(node: ast.AST) -> bool:
    """``pytest.mark.gradcheck(...)`` (or ``mark.gradcheck(...)``)."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "gradcheck" and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "mark")


def _case_table_kinds(tree: ast.Module) -> dict[str, set[str]]:
    """A module-level table of cases, ``NAME_CASES = [("<type>[-variant]", ...), ...]``
    (as tests/test_layers_gradcheck.py's ``GRADCHECK_CASES``): table name ->
    the types its string ids name."""
    tables: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple)):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.startswith("GRADCHECK"):
                    tables[target.id] = {row.elts[0].value.split("-")[0] for row in node.value.elts
                                         if isinstance(row, ast.Tuple) and row.elts
                                         and isinstance(row.elts[0], ast.Constant)
                                         and isinstance(row.elts[0].value, str)}
    return tables


@functools.lru_cache(maxsize=None)
def gradcheck_tests() -> dict[str, list[tuple[Path, str]]]:
    """Type name -> the (file, test function) pairs that gradient-check it,
    found in every ``tests/test_*.py`` in two forms:

    * a ``@pytest.mark.gradcheck("<type>")`` decorator (marks on a
      ``pytest.param`` inside ``parametrize`` count too);
    * a test parametrized over a module-level ``GRADCHECK_CASES`` table whose
      rows start with an id ``"<type>"`` or ``"<type>-<variant>"``.
    """
    found: dict[str, list[tuple[Path, str]]] = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        tables = _case_table_kinds(tree)
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or not fn.name.startswith("test"):
                continue
            kinds: set[str] = set()
            for deco in fn.decorator_list:
                for node in ast.walk(deco):
                    if _is_gradcheck_mark(node):
                        kinds |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
                    elif isinstance(node, ast.Name) and node.id in tables:
                        kinds |= tables[node.id]
            for kind in kinds:
                found.setdefault(kind, []).append((path, fn.name))
    return found


def page_links(page: Path) -> list[tuple[str, str]]:
    return LINK.findall(page.read_text(encoding="utf-8"))


def test_every_registered_type_has_a_gradient_check():
    checks = gradcheck_tests()
    missing = sorted(set(registered()) - set(checks))
    assert not missing, (
        f"registered types without a gradient check: {', '.join(missing)}; add a test that runs "
        "numpynets.nn.gradcheck.check_layer on it (float64, random upstream gradient) and mark it "
        "@pytest.mark.gradcheck(\"<type>\")")


def test_gradcheck_marks_name_registered_types():
    unknown = sorted(set(gradcheck_tests()) - set(registered()))
    assert not unknown, f"gradcheck marks for types nobody registered (a typo, or a renamed layer?): {unknown}"


@pytest.mark.parametrize("kind", sorted(registered()))
def test_every_registered_type_has_a_page(kind):
    page = PAGES / f"{kind}.md"
    assert page.is_file(), f"{kind!r} is registered but has no derivation page {page.relative_to(ROOT)}"


@pytest.mark.parametrize("kind", sorted(registered()))
def test_page_links_to_its_code_and_its_gradient_check(kind):
    page = PAGES / f"{kind}.md"
    if not page.is_file():
        pytest.fail(f"no page {page.relative_to(ROOT)}")
    text = page.read_text(encoding="utf-8")
    targets = set()
    for label, target in page_links(page):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue                                        # a web address or an anchor in the page
        resolved = (page.parent / target.split("#")[0]).resolve()
        assert resolved.exists(), f"{page.name}: link [{label}]({target}) points at nothing"
        targets.add(resolved)
    # the file in this checkout that defines it (CI installs the package, so the
    # imported module may live in site-packages, not under src/)
    code = (ROOT / "src" / Path(*registered()[kind].__module__.split("."))).with_suffix(".py").resolve()
    assert code in targets, f"{page.name} should link to the code, {code.relative_to(ROOT)}"
    checks = [(path, name) for path, name in gradcheck_tests().get(kind, []) if path.resolve() in targets]
    assert checks, f"{page.name} should link to the test file that holds {kind!r}'s gradient check"
    assert any(name in text for _, name in checks), \
        f"{page.name} should name its gradient-check test ({', '.join(n for _, n in checks)})"


@pytest.mark.parametrize("kind", sorted(registered()))
def test_docstring_links_back_to_the_page(kind):
    doc = inspect.getdoc(registered()[kind]) or ""
    assert f"docs/layers/{kind}.md" in doc, \
        f"the docstring of {kind!r} should say where its derivation is: 'Derivation: docs/layers/{kind}.md'"


def test_index_lists_every_page():
    index = (PAGES / "README.md").read_text(encoding="utf-8")
    linked = {target for _, target in LINK.findall(index)}
    missing = sorted(kind for kind in registered() if f"{kind}.md" not in linked)
    assert not missing, f"docs/layers/README.md does not link to: {missing}"


MATH_PAGES = sorted(PAGES.glob("*.md")) + [ROOT / "docs" / "tutorial.md"]


@pytest.mark.parametrize("page", MATH_PAGES, ids=lambda p: p.name)
def test_math_blocks_are_closed(page):
    r"""Display math ($$ ... $$) opens and closes on lines of its own, and
    inline $...$ pairs up on each line: an odd count renders the rest of
    the page as mathematics on GitHub. No ``\\`` line breaks, ``\begin``
    environments or ``\_``, which GitHub's Markdown step can mangle before
    MathJax sees them: one equation per block instead."""
    in_code = False
    display = 0
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        if line.strip() == "$$":
            display += 1
            continue
        if display % 2 == 1 or "$" in line:
            assert "\\\\" not in line and "\\begin" not in line, \
                f"{page.name}:{number}: no \\\\ or \\begin in math on GitHub; split the equation"
            assert "\\_" not in line, f"{page.name}:{number}: no \\_ in math (Markdown eats the backslash)"
        assert "$$" not in line, f"{page.name}:{number}: put $$ on a line of its own"
        if display % 2 == 0:
            bare = re.sub(r"`[^`]*`", "", line)             # $ inside inline code is not math
            assert bare.count("$") % 2 == 0, f"{page.name}:{number}: unpaired $"
    assert display % 2 == 0, f"{page.name}: a $$ block is never closed"


def _math_pieces(text: str) -> list[str]:
    """The display blocks and inline formulas of a page, outside code."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)      # fenced code
    text = re.sub(r"`[^`\n]*`", "", text)                           # inline code
    pieces = re.findall(r"^\$\$\n(.*?)^\$\$", text, flags=re.S | re.M)
    text = re.sub(r"^\$\$\n.*?^\$\$", "", text, flags=re.S | re.M)
    return pieces + re.findall(r"\$([^$]+)\$", text)


@pytest.mark.parametrize("page", MATH_PAGES, ids=lambda p: p.name)
def test_formulas_balance_their_braces(page):
    """Every formula closes its braces and pairs each \\left with a \\right
    (MathJax shows an error box instead of the formula otherwise), and has
    no ``<`` right before a letter (GitHub's sanitiser takes it for a tag)."""
    for formula in _math_pieces(page.read_text(encoding="utf-8")):
        bare = formula.replace("\\{", "").replace("\\}", "")
        depth = 0
        for ch in bare:
            depth += {"{": 1, "}": -1}.get(ch, 0)
            assert depth >= 0, f"{page.name}: a }} closes nothing in: {formula.strip()}"
        assert depth == 0, f"{page.name}: an unclosed {{ in: {formula.strip()}"
        lefts, rights = len(re.findall(r"\\left\b", formula)), len(re.findall(r"\\right\b", formula))
        assert lefts == rights, f"{page.name}: \\left without \\right in: {formula.strip()}"
        assert not re.search(r"<[A-Za-z/!?]", formula), \
            f"{page.name}: '<' before a letter reads as an HTML tag on GitHub; write '< ' in: {formula.strip()}"


def test_a_gradcheck_mark_that_checks_nothing_fails(pytester):
    """The marker's watcher (conftest.py) must fail a test whose mark claims
    a type it never checks, and pass one that does check it."""
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    pytester.makeini("[pytest]\nmarkers =\n    gradcheck: test\n")
    pytester.makepyfile(test_marks="""
        import pytest
        from numpynets.nn import ReLU, Tanh
        from numpynets.nn.gradcheck import check_layer, numerical_gradient
        from numpynets.nn.losses import mse

        @pytest.mark.gradcheck("tanh")
        def test_claims_tanh_checks_relu(rng):
            check_layer(ReLU(), rng.standard_normal((2, 3)) + 3, rng)

        @pytest.mark.gradcheck("mse")
        def test_calls_the_loss_without_a_check(rng):
            p = rng.standard_normal(3)
            mse(p, p)

        @pytest.mark.gradcheck("tanh")
        def test_honest_layer(rng):
            check_layer(Tanh(), rng.standard_normal((2, 3)), rng)

        @pytest.mark.gradcheck("mse")
        def test_honest_loss(rng):
            p, t = rng.standard_normal(3), rng.standard_normal(3)
            numerical_gradient(lambda: mse(p, t)[0], p)
    """)
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, errors=2)
    out = result.stdout.str()
    assert "ERROR at teardown of test_claims_tanh_checks_relu" in out
    assert "ERROR at teardown of test_calls_the_loss_without_a_check" in out
    assert "marked gradcheck(tanh) but gradient-checked none of them" in out
