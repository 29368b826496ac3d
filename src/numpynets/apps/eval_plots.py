"""Pictures of a classifier's test-set mistakes: ``numpynets evaluate MODEL --plots DIR``.

Two figures, named after the model so that several fit in one folder:

* ``confusion_<model>.png``: the confusion matrix (rows: true class, columns:
  predicted) with its counts written in the cells and each row's accuracy at
  its right. A cell's colour is its share of the row on a square-root scale,
  so that 0.5 % confusions are visible beside 99 % diagonals.
* ``misclassified_<model>.png``: the test images the model got wrong with the
  highest confidence p(predicted), each titled with its true and predicted
  class and both probabilities.

matplotlib is imported inside the functions; files are written through a bare
:class:`matplotlib.figure.Figure` (Agg), never pyplot.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import ConfigError, NumpynetsError
from ..train.metrics import accuracy_from_confusion, confusion_matrix, per_class_accuracy
from .plots import require_matplotlib, save_figure

DPI = 100
CONFUSION_SIZE = (7.5, 6.5)        # inches: 750 x 650 pixels at 100 dpi
GALLERY_COLS = 8


def most_confident_mistakes(probs: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Indices of up to ``n`` misclassified samples, most confident first:
    sorted by the probability the model gave its (wrong) prediction."""
    pred = probs.argmax(axis=1)                                   # (N,)
    wrong = np.flatnonzero(pred != y)                             # (M,)
    conf = probs[wrong, pred[wrong]]                              # (M,) p(predicted) of each mistake
    order = np.argsort(-conf, kind="stable")
    return wrong[order[:n]]


def _named(names, k: int):
    """Class names to show, or None when they are just the labels (digits)."""
    if names is None or len(names) != k or all(n == str(i) for i, n in enumerate(names)):
        return None
    return list(names)


def confusion_figure(cm: np.ndarray, title: str = "", class_names=None):
    """A Figure of the confusion matrix ``cm`` (K, K) with counts and per-class
    accuracy; ``class_names`` label the rows and columns ("3 Dress")."""
    require_matplotlib()
    from matplotlib.colors import PowerNorm
    from matplotlib.figure import Figure

    cm = np.asarray(cm)
    k = cm.shape[0]
    totals = cm.sum(axis=1, keepdims=True)                        # (K, 1)
    share = np.divide(cm, np.maximum(totals, 1), dtype=np.float64)  # (K, K) rows sum to 1
    acc = per_class_accuracy(cm)                                  # (K,)

    fig = Figure(figsize=CONFUSION_SIZE, layout="constrained")
    ax = fig.subplots()
    ax.imshow(share, cmap="Blues", norm=PowerNorm(0.5, vmin=0.0, vmax=1.0))
    size = 9 if k <= 10 else 7 if k <= 20 else 5
    for i in range(k):
        for j in range(k):
            c = int(cm[i, j])
            colour = "white" if share[i, j] > 0.45 else ("0.75" if c == 0 else "black")
            ax.text(j, i, str(c), ha="center", va="center", fontsize=size, color=colour)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    names = _named(class_names, k)
    if names is not None:
        ax.set_xticklabels([f"{i} {n}" for i, n in enumerate(names)], rotation=45, ha="left", fontsize=size)
        ax.set_yticklabels([f"{i} {n}" for i, n in enumerate(names)], fontsize=size)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.xaxis.set_label_position("top")
    ax.xaxis.tick_top()
    right = ax.secondary_yaxis("right")
    right.set_yticks(range(k))
    right.set_yticklabels(["-" if np.isnan(a) else f"{a:.1f}%" for a in acc], fontsize=size)
    right.set_ylabel("accuracy of the true class")
    n = int(cm.sum())
    head = f"{title}: " if title else ""
    fig.suptitle(f"{head}test accuracy {accuracy_from_confusion(cm):.2f}% "
                 f"({int(np.trace(cm))}/{n}), {n - int(np.trace(cm))} errors", fontsize=12)
    return fig


def gallery_figure(x: np.ndarray, y: np.ndarray, probs: np.ndarray, n: int = 32, title: str = "",
                   class_names=None):
    """A Figure of the ``n`` most confidently misclassified images of ``x``,
    each titled with its true and predicted class (by name, with ``class_names``)."""
    require_matplotlib()
    from matplotlib.figure import Figure

    idx = most_confident_mistakes(probs, y, n)
    cols = GALLERY_COLS
    rows = max(1, -(-len(idx) // cols))
    fig = Figure(figsize=(1.45 * cols, 1.75 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, idx):
        img = np.asarray(x[i], dtype=np.float32)
        if img.ndim != 2:                                         # (784,) or (1, 28, 28): a square picture
            side = int(round(np.sqrt(img.size)))
            img = img.reshape(side, side) if side * side == img.size else img.reshape(1, -1)
        p = probs[i]                                              # (K,)
        pred = int(p.argmax())
        ax.imshow(img, cmap="gray_r", vmin=0.0, vmax=max(1.0, float(img.max())))
        names = _named(class_names, p.shape[0])
        if names is None:
            head = f"#{i}: true {int(y[i])}, pred {pred}"
        else:
            head = f"#{i}: {names[int(y[i])]}\nas {names[pred]}"
        ax.set_title(f"{head}\np({pred})={p[pred]:.2f} p({int(y[i])})={p[int(y[i])]:.2f}",
                     fontsize=7.5 if names is None else 6.5, color="firebrick")
    if len(idx) == 0:
        axes[0].text(0.5, 0.5, "no misclassified images", ha="center", va="center", transform=axes[0].transAxes)
    wrong = int((probs.argmax(axis=1) != y).sum())
    head = f"{title}: " if title else ""
    fig.suptitle(f"{head}the {len(idx)} most confident of {wrong} misclassified test images "
                 "(# test index, p = softmax probability)", fontsize=10)
    return fig


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"


def write_eval_plots(model, x: np.ndarray, y: np.ndarray, predictions: np.ndarray, out_dir,
                     n_gallery: int = 32, dpi: int = DPI, class_names=None) -> list[Path]:
    """Write ``confusion_<model>.png`` and ``misclassified_<model>.png`` into
    ``out_dir`` (created if needed); returns their paths.

    ``predictions`` are the class indices :func:`~numpynets.train.evaluate.evaluate`
    reported, so the matrix's diagonal is exactly that accuracy.
    """
    require_matplotlib()
    if not model.is_classifier:
        raise ConfigError(f"--plots draws a classifier's confusion matrix and misclassified images; "
                          f"the {model.name} model is not a classifier")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NumpynetsError(f"{out_dir}: cannot create the folder ({exc.strerror})") from None
    name = model.name
    k = int(model.output_shape[-1])
    y = np.asarray(y, dtype=np.int64)
    cm = confusion_matrix(y, predictions, k)                      # (K, K)
    probs = model.predict_proba(x)                                # (N, K)
    paths = [out_dir / f"confusion_{safe_name(name)}.png", out_dir / f"misclassified_{safe_name(name)}.png"]
    save_figure(confusion_figure(cm, title=name, class_names=class_names), paths[0], dpi)
    save_figure(gallery_figure(x, y, probs, n=n_gallery, title=name, class_names=class_names), paths[1], dpi)
    return paths
