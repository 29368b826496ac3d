"""Which model ``numpynets draw`` uses, and what it says about a drawing.

The pure half of the window's logic, beside :mod:`.drawing`: choosing a
model file (the newest run's, or the user's), checking it reads digits,
turning the canvas picture into the 28x28 input the model receives (the
MNIST recipe of :func:`numpynets.data.images.mnist_like`), the ten
probabilities, and the throttle that keeps live predictions to a sensible
rate while the mouse moves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.images import mnist_like
from ..errors import ModelFileError, NumpynetsError
from ..jsonfile import read_json
from ..rundir import RunDir

MODEL_FILE = RunDir.MODEL


# -- finding models -----------------------------------------------------------

def run_models(runs_root="runs") -> list[Path]:
    """``runs_root/*/model.safetensors``, newest (by modification time) first."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    found = []
    for path in root.glob(f"*/{MODEL_FILE}"):
        try:
            found.append((path.stat().st_mtime, path))
        except OSError:                          # removed while we looked
            continue
    return [p for _, p in sorted(found, key=lambda t: (-t[0], str(t[1])))]


def no_model_message(runs_root="runs") -> str:
    return (f"no trained model found (looked for {Path(runs_root) / '*' / MODEL_FILE}); "
            "train one with 'numpynets train mlp --threads 1' (a minute or two), "
            "or give a model file: numpynets draw MODEL")


def default_model(runs_root="runs") -> Path:
    """The newest run's model, or a one-line error saying how to get one."""
    models = run_models(runs_root)
    if not models:
        raise NumpynetsError(no_model_message(runs_root))
    return models[0]


def describe_run_model(path) -> str:
    """A short menu label: the run folder's name and, when its config.json
    records one, the test accuracy."""
    path = Path(path)
    label = path.parent.name or str(path)
    try:
        result = read_json(RunDir(path.parent).config, "run config").get("result") or {}
        acc = result.get("test_accuracy")
        if isinstance(acc, (int, float)) and not isinstance(acc, bool):
            label += f"  ({acc:.2f}% test)"
    except (NumpynetsError, AttributeError):
        pass
    return label


# -- predicting ---------------------------------------------------------------

def check_digit_model(model, path) -> None:
    """A model the window can use takes a 28x28 image (in any per-sample
    shape of 784 values) and gives ten class scores: a model of any of the
    registered 28x28 data sets (MNIST, Fashion-MNIST, KMNIST)."""
    if (not model.is_classifier or tuple(model.output_shape) != (10,)
            or int(np.prod(model.input_shape)) != 784):
        raise ModelFileError(f"{path}: not an MNIST digit classifier, nor one of other 28x28 images into 10 classes (takes "
                             f"{tuple(model.input_shape)}, gives {tuple(model.output_shape)}); use a model "
                             "trained on MNIST, Fashion-MNIST or KMNIST")


def model_classes(model) -> tuple[str, str, list[str]]:
    """(data set name, its title, class names) of a model, from the data set
    its file records (MNIST for files that record none)."""
    from ..data.datasets import DATASETS, class_names

    name = model.dataset
    ds = DATASETS.get(name)
    return name, ds.title if ds else name, class_names(name, int(model.output_shape[-1]))


@dataclass
class Prediction:
    x: np.ndarray                  # (28, 28) float32: what the model received
    probabilities: np.ndarray      # (10,) float64, sums to 1

    @property
    def digit(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())


class Recognizer:
    """A loaded digit model and the path it came from."""

    def __init__(self, model, path=None, meta: dict | None = None):
        check_digit_model(model, path or "model")
        self.model, self.path, self.meta = model, Path(path) if path else None, meta or {}
        self.dataset, self.dataset_title, self.class_names = model_classes(model)

    @property
    def digits(self) -> bool:
        """The classes are the digits 0-9 (an MNIST model)."""
        return all(n == str(i) for i, n in enumerate(self.class_names))

    def label(self, index: int) -> str:
        return self.class_names[index]

    @classmethod
    def load(cls, path) -> Recognizer:
        from ..io import load_model

        path = Path(path)
        if path.is_dir():                        # a run folder: name the file it holds
            path = RunDir(path).model_file() or path
        model, meta = load_model(path)
        return cls(model, path, meta)

    @property
    def name(self) -> str:
        kind = self.model.name
        where = str(self.path) if self.path else "in memory"
        acc = (self.meta.get("metrics") or {}).get("test_accuracy")
        extra = f", {acc:.2f}% test" if isinstance(acc, (int, float)) else ""
        return f"{kind}{extra}: {where}"

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(N, 28, 28) float32 -> (N, 10) float64 probabilities."""
        from ..nn.losses import softmax

        x = np.asarray(x, dtype=self.model.dtype)                    # (N, 28, 28)
        return softmax(self.model.forward(x).astype(np.float64))    # (N, 10)

    def predict(self, picture: np.ndarray) -> Prediction | None:
        """Canvas picture (H, W) float in [0, 1], ink bright -> the model's
        28x28 input and its ten probabilities; None for an empty canvas."""
        x = mnist_like(picture)                                       # (28, 28) or None
        if x is None:
            return None
        return Prediction(x=x, probabilities=self.probabilities(x[None])[0])


class Throttle:
    """At most one call per ``interval`` seconds. ``wait()`` says how long
    until the next call may run (0: now); ``mark()`` records that one ran.
    The window runs a prediction at once when ``wait()`` is 0, and otherwise
    schedules one for later, so the last state is always shown."""

    def __init__(self, interval: float = 0.05, clock=time.monotonic):
        self.interval, self.clock = float(interval), clock
        self._last: float | None = None

    def wait(self) -> float:
        if self._last is None:
            return 0.0
        return max(0.0, self._last + self.interval - self.clock())

    def mark(self) -> None:
        self._last = self.clock()
