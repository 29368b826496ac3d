"""Classification metrics beyond accuracy: the confusion matrix and what it
tells per class.

The confusion matrix ``C`` of a K-class classifier counts, for every pair of
classes, how often an image of true class ``i`` was predicted as ``j``:

    C[i, j] = #{n : y_true[n] = i and y_pred[n] = j}          # (K, K)

Rows are true classes, columns predictions. Its entries add up to the number
of samples; its diagonal holds the correct predictions, so
``trace(C) / sum(C)`` is the accuracy. Row ``i`` divided by its sum is where
the images of class ``i`` went: its diagonal entry is the per-class accuracy
(recall). Column ``j`` divided by its sum is what a prediction ``j`` really
was: its diagonal entry is the precision of ``j``.
"""

from __future__ import annotations

import numpy as np

from ..errors import NumpynetsError


def confusion_matrix(y_true, y_pred, k: int) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class ``i`` predicted as ``j``,
    an int64 ``(k, k)`` array.

    One pass of :func:`numpy.bincount` over the flat index ``k * i + j``:
    each pair (true, predicted) lands in its own one of ``k * k`` bins.
    """
    t = np.asarray(y_true).reshape(-1)                            # (N,)
    p = np.asarray(y_pred).reshape(-1)                            # (N,)
    if t.shape != p.shape:
        raise NumpynetsError(f"confusion matrix: {t.size} true labels but {p.size} predictions")
    if k < 1:
        raise NumpynetsError(f"confusion matrix: the number of classes must be >= 1, got {k}")
    for name, a in (("true labels", t), ("predictions", p)):
        if a.size and (a.min() < 0 or a.max() >= k):
            raise NumpynetsError(f"confusion matrix: {name} must lie in 0..{k - 1}, "
                                 f"found {int(a.min())}..{int(a.max())}")
    flat = t.astype(np.int64) * k + p.astype(np.int64)            # (N,) bin of each pair
    return np.bincount(flat, minlength=k * k).reshape(k, k)      # (K, K)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Percent of each true class predicted correctly, ``100 C[i, i] / sum_j C[i, j]``
    (NaN for a class with no samples)."""
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1)                                       # (K,) samples per true class
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, 100.0 * np.diag(cm) / totals, np.nan)


def accuracy_from_confusion(cm: np.ndarray) -> float:
    """Overall accuracy in percent: ``100 trace(C) / sum(C)``."""
    n = int(np.sum(cm))
    return 100.0 * float(np.trace(cm)) / n if n else float("nan")
