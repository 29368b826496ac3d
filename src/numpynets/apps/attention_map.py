"""Attention maps from a trained model's real weights.

The original's ``visualize_attention.py`` could only draw synthetic
patterns, because its trainer never exported attention weights. Here the
model itself is run on one test image with
:attr:`~numpynets.nn.attention.SelfAttention.keep_attention` set, and the
softmax weights ``a`` (H, T, T) of that forward pass are drawn:

* the image with its patch grid (7x7 patches of 4x4 pixels), the query
  patches marked;
* the T x T attention matrix (row = query patch, column = key patch; each
  row sums to 1);
* for a few query patches, the query's row reshaped to the patch grid and
  overlaid on the image: where that patch looks.

With several heads the maps show the mean over heads (still a distribution
per row). The figure is a :class:`matplotlib.figure.Figure` rendered by Agg
straight to a file, never pyplot, so it works without a display; matplotlib
is imported inside the functions (the ``plot`` extra).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, NumpynetsError

PLOT_EXTRA = 'pip install "numpynets[plot]"'
FIGSIZE = (12.0, 7.5)          # inches: a 1200 x 750 pixel PNG at DPI
DPI = 100
N_QUERIES = 4


def attention_layers(model) -> list:
    """The model's SelfAttention layers in forward order, looking inside
    composite layers (e.g. a Residual around LayerNorm + attention)."""
    from ..nn.attention import SelfAttention

    found = []

    def walk(layers):
        for layer in layers:
            if isinstance(layer, SelfAttention):
                found.append(layer)
            walk(getattr(layer, "sublayers", ()))

    walk(model.layers)
    return found


def patch_grid(model) -> tuple[int, int, int]:
    """(rows, columns, patch side) of the model's Patchify layer."""
    from ..nn.tokens import Patchify

    for layer in model.layers:
        if isinstance(layer, Patchify):
            rows, cols = layer.grid(model.input_shape)
            return rows, cols, layer.patch
    raise NumpynetsError("this attention model does not cut its input into patches (no patchify layer), "
                         "so its attention cannot be drawn over the image")


def require_attention(model, source: str = "model") -> list:
    layers = attention_layers(model)
    if not layers:
        raise NumpynetsError(f"{source}: a {model.name} model has no self-attention "
                             "layer; attention maps need an attention model (numpynets train attention)")
    return layers


def attention_for(model, image: np.ndarray, layer: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (K,) and attention weights (H, T, T) of the
    ``layer``-th attention layer for one image (28, 28)."""
    layers = require_attention(model)
    if not 0 <= layer < len(layers):
        raise ConfigError(f"--layer {layer}: the model has {len(layers)} attention layer"
                          f"{'s' * (len(layers) != 1)} (0 to {len(layers) - 1})")
    att = layers[layer]
    att.keep_attention = True
    try:
        probs = model.predict_proba(image[None])[0]       # (K,)
        weights = np.array(att.last_attention[0], dtype=np.float64)   # (H, T, T)
    finally:
        att.keep_attention, att.last_attention = False, None
    return probs, weights


def pick_queries(image: np.ndarray, rows: int, cols: int, patch: int, k: int = N_QUERIES) -> list[int]:
    """``k`` query patches worth looking at: the inkiest patches, taken
    greedily so that no two are neighbours when that is possible."""
    ink = image[:rows * patch, :cols * patch].reshape(rows, patch, cols, patch).sum(axis=(1, 3)).ravel()
    order = [int(t) for t in np.argsort(-ink, kind="stable")]
    chosen: list[int] = []
    for t in order:
        if len(chosen) == k:
            break
        if all(max(abs(t // cols - c // cols), abs(t % cols - c % cols)) > 1 for c in chosen):
            chosen.append(t)
    for t in order:                                       # too few far-apart patches: fill up
        if len(chosen) == k:
            break
        if t not in chosen:
            chosen.append(t)
    return chosen


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError:
        raise NumpynetsError(f"attention maps need matplotlib, which is not installed; run: {PLOT_EXTRA}") from None
    return Figure


def draw_attention_map(image: np.ndarray, weights: np.ndarray, grid: tuple[int, int, int], out,
                       queries: list[int] | None = None, predicted: int | None = None,
                       label: int | None = None, probability: float | None = None,
                       title: str | None = None, dpi: int = DPI, layer: int | None = None) -> list[int]:
    """Draw the figure described in the module docstring to ``out`` (any
    format matplotlib writes, by its extension). ``weights`` is (H, T, T) or
    (T, T); ``layer`` (when given) names which attention layer they come
    from. Returns the query patches drawn."""
    Figure = _matplotlib()
    rows, cols, patch = grid
    T = rows * cols
    a = weights.mean(axis=0) if weights.ndim == 3 else weights            # (T, T)
    heads = weights.shape[0] if weights.ndim == 3 else 1
    if a.shape != (T, T):
        raise ConfigError(f"attention weights of shape {a.shape} do not fit a {rows}x{cols} patch grid")
    if queries is None:
        queries = pick_queries(image, rows, cols, patch)
    for q in queries:
        if not 0 <= q < T:
            raise ConfigError(f"query patch {q} is outside the {rows}x{cols} grid (0 to {T - 1})")
    H, W = image.shape
    mean_note = f", mean of {heads} heads" if heads > 1 else ""
    layer_note = f" of layer {layer}" if layer is not None else ""

    fig = Figure(figsize=FIGSIZE, dpi=dpi, layout="constrained")
    gs = fig.add_gridspec(2, max(len(queries), 2) * 2)
    half = max(len(queries), 2)

    ax = fig.add_subplot(gs[0, :half])
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, extent=(0, W, H, 0))
    for i in range(1, rows):
        ax.axhline(i * patch, color="tab:cyan", lw=0.6, alpha=0.7)
    for j in range(1, cols):
        ax.axvline(j * patch, color="tab:cyan", lw=0.6, alpha=0.7)
    for n, q in enumerate(queries):
        y0, x0 = (q // cols) * patch, (q % cols) * patch
        ax.add_patch(_rect(x0, y0, patch, f"C{n + 1}"))
        ax.text(x0 + patch / 2, y0 + patch / 2, str(q), color=f"C{n + 1}", ha="center", va="center",
                fontsize=8, fontweight="bold")
    ax.set_title(f"input with its {rows}x{cols} patches (token = row*{cols} + column)")
    ax.set_xticks([]), ax.set_yticks([])

    ax = fig.add_subplot(gs[0, half:])
    im = ax.imshow(a, cmap="viridis", vmin=0, interpolation="nearest")
    ax.set_title(f"attention weights{layer_note}{mean_note}\nrow: query patch, column: key patch")
    ax.set_xticks(range(0, T, cols)), ax.set_yticks(range(0, T, cols))
    ax.set_xlabel("key patch"), ax.set_ylabel("query patch")
    fig.colorbar(im, ax=ax, shrink=0.85)

    for n, q in enumerate(queries):
        ax = fig.add_subplot(gs[1, 2 * n:2 * n + 2])
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, extent=(0, W, H, 0))
        m = a[q].reshape(rows, cols)                                       # where query q looks
        ax.imshow(m, cmap="hot", alpha=0.6, extent=(0, cols * patch, rows * patch, 0),
                  interpolation="nearest", vmin=0, vmax=max(float(m.max()), 1e-12))
        y0, x0 = (q // cols) * patch, (q % cols) * patch
        ax.add_patch(_rect(x0, y0, patch, f"C{n + 1}"))
        ax.set_title(f"query patch {q} (row {q // cols}, col {q % cols}); max {m.max():.2f}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])

    if title is None:
        parts = []
        if predicted is not None:
            p = f" ({probability:.1%})" if probability is not None else ""
            parts.append(f"predicted {predicted}{p}")
        if label is not None:
            parts.append(f"true {label}")
            if predicted is not None:
                parts.append("correct" if predicted == label else "WRONG")
        title = ", ".join(parts)
    if title:
        fig.suptitle(title, fontsize=13)
    try:
        fig.savefig(out, dpi=dpi)
    except (OSError, ValueError) as exc:
        raise NumpynetsError(f"{out}: cannot write the figure ({exc}); choose another output path") from None
    return list(queries)


def _rect(x0, y0, size, color):
    from matplotlib.patches import Rectangle

    return Rectangle((x0, y0), size, size, fill=False, edgecolor=color, lw=2)
