"""Evaluation: loss, accuracy, per-class accuracy, predictions."""

from __future__ import annotations

import numpy as np

from ..data.datasets import DATASETS as IMAGE_DATASETS
from ..errors import ConfigError

# what each data set feeds a model and expects from it: (values per sample,
# output shape, loss); the image data sets' from their registry entries
DATASETS = {**{name: (int(np.prod(ds.sample_shape)), (len(ds.classes),), "softmax_cross_entropy")
               for name, ds in IMAGE_DATASETS.items()},
            "xor": (2, (1,), "mse")}


def check_fits_dataset(model, dataset: str, name: str = "the model") -> None:
    """Raise a one-line :class:`ConfigError` unless ``model`` takes the
    samples of ``dataset`` and gives what its labels need (MNIST: 784 pixel
    values in, 10 class scores out with softmax cross-entropy; XOR: 2 in, 1
    out with MSE). Checked before training or evaluating, so a mismatched
    architecture file fails at once instead of deep in the loss."""
    if not isinstance(dataset, str):
        raise ConfigError(f"{name}: the architecture's \"dataset\" is a name such as \"mnist\", got {str(dataset)[:40]!r}")
    if dataset not in DATASETS:
        return
    n_in, out, loss = DATASETS[dataset]
    dataset = IMAGE_DATASETS[dataset].title if dataset in IMAGE_DATASETS else dataset
    takes = int(np.prod(model.input_shape))
    if takes != n_in or tuple(model.output_shape) != out or model.loss_name != loss:
        raise ConfigError(f"{name}: takes {tuple(model.input_shape)}, gives {tuple(model.output_shape)} with "
                          f"loss {model.loss_name}; {dataset} needs {n_in} input values per sample and "
                          f"{out} outputs with loss {loss}: fix the architecture's input_shape, last layer or loss")


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> dict:
    """Mean loss and accuracy (percent) of ``model`` on ``(x, y)``, in batches.

    Returns ``loss``, ``accuracy``, ``correct``, ``n``, ``predictions`` and,
    for classifiers, ``per_class`` ({digit: (correct, total)}).
    """
    n = len(y)
    if n == 0:
        return {"loss": float("nan"), "accuracy": float("nan"), "correct": 0, "n": 0,
                "predictions": np.zeros(0, np.int64)}
    loss_sum, preds = 0.0, []
    for i in range(0, n, batch_size):
        out = model.forward(x[i:i + batch_size])
        yb = y[i:i + batch_size]
        loss_sum += float(model.per_sample_loss(out, yb).sum(dtype=np.float64))
        preds.append(model.predictions(out))
    pred = np.concatenate(preds)
    target = y if model.is_classifier else (y > 0.5).astype(np.int64).reshape(pred.shape)
    hits = pred == target
    if hits.ndim > 1:
        hits = hits.all(axis=1)
    result = {"loss": loss_sum / n, "accuracy": 100.0 * float(hits.mean()), "correct": int(hits.sum()),
              "n": n, "predictions": pred}
    if model.is_classifier:
        k = model.output_shape[-1]
        result["per_class"] = {c: (int(hits[y == c].sum()), int((y == c).sum())) for c in range(k)}
    return result


def accuracy(model, data, batch_size: int = 1000) -> float:
    """The fraction of ``data`` that ``model`` gets right, in [0, 1] (``nan``
    for no samples): ``data`` is a data set from
    :func:`numpynets.data.load` or an ``(x, y)`` pair, ``x (N, *input_shape)``,
    ``y (N,)`` class indices (or targets shaped like the output, for MSE
    models: right when every output is on the target's side of 0.5).
    Published as ``numpynets.evaluate``."""
    from ..data.api import _arrays

    x, y = _arrays(data, "evaluate")
    if not hasattr(model, "forward") or not hasattr(model, "predictions"):
        raise ConfigError(f"evaluate: expected a model (numpynets.Sequential), got {type(model).__name__}")
    result = evaluate(model, x, y, batch_size)
    return result["correct"] / result["n"] if result["n"] else float("nan")


def per_class_table(per_class: dict, names: list[str] | None = None) -> str:
    """The per-class table; with ``names`` (the data set's class names,
    when they are more than the digits) a column of names follows the label."""
    named = names is not None and any(n != str(i) for i, n in enumerate(names))
    width = max((len(n) for n in names), default=4) if named else 0
    lines = ["class  " + (f"{'name':<{width}}  " if named else "") + "correct  total  accuracy"]
    for c, (ok, tot) in per_class.items():
        acc = 100.0 * ok / tot if tot else float("nan")
        label = f"{names[c]:<{width}}  " if named else ""
        lines.append(f"{c:>5}  {label}{ok:>7}  {tot:>5}  {acc:7.2f}%")
    return "\n".join(lines)


def truth_table(model, x: np.ndarray, y: np.ndarray) -> tuple[str, bool]:
    """The XOR report: input, target, output, rounded prediction per row,
    and whether every row is right."""
    out = model.forward(x).reshape(len(x), -1)
    lines = ["input      target  output    prediction"]
    ok = True
    for xi, yi, oi in zip(x, y.reshape(len(x), -1), out):
        pred = (oi > 0.5).astype(int)
        right = bool(np.all(pred == (yi > 0.5)))
        ok &= right
        lines.append(f"{' '.join(f'{v:g}' for v in xi):<10} {' '.join(f'{v:g}' for v in yi):<7} "
                     f"{' '.join(f'{v:.4f}' for v in oi):<9} {' '.join(map(str, pred))}  "
                     f"{'ok' if right else 'WRONG'}")
    return "\n".join(lines), ok
