"""Turning an arbitrary picture of a digit into an MNIST-like 28x28 input.

MNIST digits were made this way (LeCun et al.): the digit's bounding box is
scaled, keeping its aspect ratio and with antialiasing, to fit a 20x20 box;
that is placed in a 28x28 field so that its centre of mass sits at the
centre. Feeding a network raw, off-centre strokes is the usual reason a
draw-a-digit demo misreads digits. :func:`mnist_like` does exactly this, on
a float image with white ink on black; :func:`load_image` reads any file
Pillow can open and inverts dark-on-light pictures first.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def mnist_like(img: np.ndarray, threshold: float = 0.05) -> np.ndarray | None:
    """(H, W) float in [0, 1], ink bright -> (28, 28) float32, or ``None``
    when there is no ink at all (an empty canvas predicts nothing)."""
    from PIL import Image

    img = np.asarray(img, dtype=np.float32)
    ink = img > threshold
    if not ink.any():
        return None
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]        # bounding box
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    pil = Image.fromarray(np.clip(crop * 255, 0, 255).astype(np.uint8))
    small = np.asarray(pil.resize((nw, nh), Image.LANCZOS), dtype=np.float32) / np.float32(255)
    small = np.clip(small, 0, 1)
    # centre of mass of the scaled digit -> centre of the 28x28 field
    total = small.sum()
    if total <= 0:
        return None
    cy = (small.sum(axis=1) * np.arange(nh)).sum() / total
    cx = (small.sum(axis=0) * np.arange(nw)).sum() / total
    top, left = int(round(13.5 - cy)), int(round(13.5 - cx))
    top, left = min(max(top, 0), 28 - nh), min(max(left, 0), 28 - nw)
    out = np.zeros((28, 28), np.float32)
    out[top:top + nh, left:left + nw] = small
    return out


def load_image(path) -> np.ndarray:
    """Read an image file as (H, W) float32 in [0, 1] with bright ink:
    pictures whose border is mostly light (dark digit on paper) are inverted."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError("reading images needs Pillow: pip install pillow") from None
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im.convert("RGBA"))
            gray = np.asarray(im.convert("L"), dtype=np.float32) / np.float32(255)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not an image Pillow can read ({exc.__class__.__name__}); "
                        "use a PNG, JPEG, BMP or similar") from None
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > 0.5:
        gray = 1 - gray
    return gray
