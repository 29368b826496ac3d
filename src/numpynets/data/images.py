"""Turning an arbitrary picture of a digit into an MNIST-like 28x28 input.

MNIST digits were made this way (LeCun et al.): the digit's bounding box is
scaled, keeping its aspect ratio and with antialiasing, to fit a 20x20 box;
that is placed in a 28x28 field so that its centre of mass

    (r̄, c̄) = (Σ r·I[r, c] / Σ I,  Σ c·I[r, c] / Σ I)

sits at the centre of the field: pixel index (14, 14), where MNIST's own
digits have it (13.996 rows, 14.007 columns on average over the 60,000
training images, spread 0.29), not the geometric middle 13.5. Placing it at
13.5 instead shifts most drawings by a pixel and costs a small MLP about
five points of accuracy on re-centred MNIST test digits.
Feeding a network raw, off-centre strokes is the usual reason a draw-a-digit
demo misreads digits. :func:`mnist_like` does exactly this, on a float image
with white ink on black; :func:`load_image` reads any file Pillow can open,
composites transparency, inverts dark-on-light pictures and removes a grey
paper background first.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import DataError

# The most pixels an input picture may have: a 48-megapixel photo fits; more
# is refused before decoding (Pillow itself only warns up to twice its own
# limit of ~89 M pixels, and each float32 copy of such an image is 0.7 GB).
MAX_PIXELS = 50_000_000


def check_pixels(width: int, height: int, name) -> None:
    """Refuse a picture of more than :data:`MAX_PIXELS` pixels, with one line."""
    if width * height > MAX_PIXELS:
        raise DataError(f"{name}: image of {width}x{height} pixels, more than the {MAX_PIXELS:,} numpynets "
                        "reads; shrink it first (a digit needs no more than a few hundred pixels a side)")


def mnist_like(img: np.ndarray, threshold: float = 0.05) -> np.ndarray | None:
    """(H, W) float in [0, 1], ink bright -> (28, 28) float32, or ``None``
    when no pixel is above ``threshold`` (an empty canvas predicts nothing).

    The ink is rescaled so that its brightest pixel is 1 (MNIST strokes
    are saturated), its bounding box scaled to fit 20x20 (longer side 20),
    and the result shifted so that its centre of mass lands on (14, 14),
    as in MNIST."""
    from PIL import Image

    if np.ndim(img) == 2:
        check_pixels(np.shape(img)[1], np.shape(img)[0], "mnist_like")   # before the float32 copy
    img = np.asarray(img, dtype=np.float32)                      # (H, W)
    if img.ndim != 2:
        raise ValueError(f"mnist_like takes a 2-D (H, W) image, got shape {img.shape}")
    img = np.nan_to_num(np.clip(img, 0, 1))
    ink = img > threshold                                        # (H, W) bool
    if not ink.any():
        return None
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]        # (h, w) bounding box
    crop = crop / crop.max()                                     # peak ink -> 1
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))  # longer side exactly 20
    pil = Image.fromarray(np.ascontiguousarray(crop, np.float32))   # mode "F": no 8-bit rounding
    small = np.clip(np.asarray(pil.resize((nw, nh), Image.LANCZOS), dtype=np.float32), 0, 1)  # (nh, nw)
    total = small.sum(dtype=np.float64)
    if total <= 0:
        return None
    cy = float(small.sum(axis=1) @ np.arange(nh)) / total        # centre of mass, row
    cx = float(small.sum(axis=0) @ np.arange(nw)) / total        # centre of mass, column
    top, left = int(round(14.0 - cy)), int(round(14.0 - cx))   # MNIST's centre, see above
    top, left = min(max(top, 0), 28 - nh), min(max(left, 0), 28 - nw)
    out = np.zeros((28, 28), np.float32)                         # (28, 28)
    out[top:top + nh, left:left + nw] = small
    return out


def _gray(im) -> np.ndarray:
    """A Pillow image without alpha -> (H, W) float32 in [0, 1]. 16-bit,
    32-bit and float modes are scaled, not clipped to 255 as ``convert("L")``
    would."""
    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im, dtype=np.float32)
        top = 65535.0 if (im.mode != "I" or a.max() > 255) else 255.0
        return np.clip(a / np.float32(top), 0, 1)
    if im.mode == "F":
        a = np.nan_to_num(np.asarray(im, dtype=np.float32))
        return np.clip(a if a.max() <= 1 else a / np.float32(255), 0, 1)
    return np.asarray(im.convert("L"), dtype=np.float32) / np.float32(255)


def _flatten_alpha(im):
    """Composite a transparent image onto a background that contrasts with
    its visible pixels: transparent parts are background, whatever ink
    colour the picture uses (black strokes -> white paper, white strokes ->
    black)."""
    from PIL import Image

    rgba = im.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / np.float32(255)
    lum = np.asarray(rgba.convert("L"), dtype=np.float32) / np.float32(255)
    weight = alpha.sum()
    light_ink = weight > 0 and float((lum * alpha).sum() / weight) > 0.5
    bg = Image.new("RGBA", rgba.size, (0, 0, 0, 255) if light_ink else (255, 255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("L")


def load_image(path) -> np.ndarray:
    """Read an image file as (H, W) float32 in [0, 1] with bright ink.

    Transparency is composited away (see :func:`_flatten_alpha`); pictures
    whose border is mostly light (a dark digit on paper) are inverted; a grey
    background level (the median of the border) is subtracted and the rest
    stretched back to [0, 1], so photographed paper becomes black."""
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError:
        raise DataError("reading images needs Pillow: pip install pillow") from None
    try:
        with warnings.catch_warnings():                          # our own limit speaks, not Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            check_pixels(*im.size, path)                         # from the header, before decoding
            im.load()
            im = ImageOps.exif_transpose(im)                     # photos taken sideways
            if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
                gray = _gray(_flatten_alpha(im))
            else:
                gray = _gray(im)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file; check the path") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file; name the image files") from None
    except PermissionError:
        raise DataError(f"{path}: cannot read (permission denied); check its permissions") from None
    except Image.DecompressionBombError:
        raise DataError(f"{path}: image too large to read safely; shrink it first") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not an image Pillow can read ({exc.__class__.__name__}); "
                        "use a PNG, JPEG, BMP or similar") from None
    if gray.ndim != 2 or gray.size == 0:
        raise DataError(f"{path}: not a 2-D picture (shape {gray.shape}); use a PNG, JPEG, BMP or similar")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])   # (2H + 2W,)
    if border.mean() > 0.5:
        gray = 1 - gray                                          # dark ink on paper -> bright ink
        border = 1 - border
    bg = float(np.median(border))
    if 0 < bg < 1:
        gray = np.clip((gray - np.float32(bg)) / np.float32(1 - bg), 0, 1)
    return gray.astype(np.float32, copy=False)
