"""The scripts in examples/ run as a user runs them (a subprocess, the real
MNIST through $NUMPYNETS_DATA) and their last line, the test accuracy, is
above a floor set below the worst of the seeds measured (README, "Examples").
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# script -> floor (percent). Measured on full MNIST, 1 BLAS thread, seeds 0-4
# (python examples/NAME.py --seed S); the ranges are in the README.
FLOORS = {
    "mlp.py": 97.5,            # 98.36 - 98.48; the issue asks for >= 97.5 %
    "cnn.py": 97.5,            # 98.09 - 98.53
    "attention.py": 93.0,      # 94.26 - 94.67 (a small, 2-epoch model)
    "custom_layer.py": 96.0,   # 96.63 - 97.36
    "xor.py": 100.0,           # all four rows right, every seed
}
NEEDS_MNIST = {"mlp.py", "cnn.py", "attention.py", "custom_layer.py"}
LAST_LINE = re.compile(r"test accuracy (\d+(?:\.\d+)?)%$")


def run_example(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          env=env, cwd=EXAMPLES, timeout=900)


def test_every_example_has_a_floor():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(FLOORS)


def test_mlp_example_fits_in_forty_lines():
    lines = [line for line in (EXAMPLES / "mlp.py").read_text().splitlines() if line.strip()]
    assert len(lines) <= 40


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.mnist] if n in NEEDS_MNIST else [],
                                               id=n.removesuffix(".py")) for n in sorted(FLOORS)])
def test_example_reaches_its_floor(name, request):
    if name in NEEDS_MNIST:
        request.getfixturevalue("mnist_path")      # fails under CI, skips elsewhere, when MNIST is missing
    r = run_example(name)
    assert r.returncode == 0, r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    m = LAST_LINE.fullmatch(last)
    assert m, f"last line {last!r} is not 'test accuracy NN.NN%'"
    assert float(m.group(1)) >= FLOORS[name], r.stdout


def readme_library_example() -> str:
    """The python block after the README's ``<!-- library-example -->`` line (what .ci/run runs)."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^<!-- library-example -->\n```python\n(.*?)^```$", text, re.S | re.M)
    assert m, "README.md: no ```python block right after <!-- library-example -->"
    return m.group(1)


def library_floor() -> float:
    m = re.search(r"^LIBRARY_FLOOR=(\d+(?:\.\d+)?)$", (ROOT / ".ci" / "run").read_text(), re.M)
    assert m, ".ci/run sets no LIBRARY_FLOOR"
    return float(m.group(1))


def test_readme_library_example_is_the_issue_shape():
    code = readme_library_example()
    assert code.startswith("import numpynets as nn\n")
    for piece in ('nn.data.load("mnist")', "nn.Sequential(", "nn.optim.SGD(model", "nn.data.batches(",
                  "nn.softmax_cross_entropy(", "nn.evaluate(model, test)", 'model.save("mlp.safetensors")'):
        assert piece in code, piece
    assert str(library_floor()) in (ROOT / "README.md").read_text()      # the README states CI's floor


@pytest.mark.slow
@pytest.mark.mnist
def test_readme_library_example_runs_as_written(mnist_path, tmp_path):
    script = tmp_path / "library_example.py"
    script.write_text(readme_library_example())
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    m = re.search(r"test accuracy (\d+(?:\.\d+)?)%$", last)
    assert m and float(m.group(1)) >= library_floor(), r.stdout
    from numpynets.io import load_model

    model, meta = load_model(tmp_path / "mlp.safetensors")         # what `numpynets evaluate` reads
    assert model.num_parameters() == 407_050 and meta["format"] == "numpynets"


def test_readme_states_each_floor():
    text = (ROOT / "README.md").read_text()
    for name, floor in FLOORS.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| [`examples/{name}`]")), None)
        assert row, f"README: no row for examples/{name} in the examples table"
        assert f"| {floor:.1f} % |" in row or (floor == 100 and "| 100 % |" in row), row
