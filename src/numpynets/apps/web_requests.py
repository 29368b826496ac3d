"""What a request to ``numpynets serve`` may hold, parsed once at the edge.

A prediction request is a JSON object with exactly one of

* ``"pixels"``: 784 numbers in [0, 1], row-major 28x28: the model's input
  itself, used as it is (no cropping or centring);
* ``"image"``: a ``data:image/png;base64,...`` URL of a drawing of any
  size, prepared the MNIST way (:func:`numpynets.data.images.load_image`
  then :func:`~numpynets.data.images.mnist_like`, as ``numpynets predict``);
* ``"strokes"``: ``[[[x, y], ...], ...]``, the strokes drawn on the
  280x280 canvas (brush 20), painted exactly as the Tk window paints them
  (:func:`numpynets.apps.drawing.render_strokes`) and prepared the same way:
  the page sends these, so the page and ``numpynets draw`` give the model the
  same 28x28 image for the same strokes.

Anything else is a :class:`BadRequest` with the HTTP status and a one-line
message; nothing here allocates more than the (size-capped) body justifies.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math

import numpy as np

from .drawing import BRUSH, CANVAS

MAX_BODY = 1 << 20                 # 1 MiB: a 280x280 PNG is ~10 KB, 784 numbers ~15 KB
MAX_IMAGE_SIDE = 2048              # decoded picture: at most 2048 x 2048 pixels (16 MB as float32)
MAX_POINTS = 20_000                # all strokes together
PIXELS = 28 * 28
PNG_PREFIX = "data:image/png;base64,"


class BadRequest(Exception):
    """A request the server refuses: ``status`` (4xx) and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _reject_constant(name):
    raise BadRequest(400, f"JSON constant {name} is not a number; send finite numbers")


def parse_json(body: bytes) -> dict:
    """The request body as a JSON object."""
    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest(400, "the body is not UTF-8 text; send JSON") from None
    except RecursionError:
        raise BadRequest(400, "the JSON is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError:                                  # an integer of more than 4,300 digits
        raise BadRequest(400, "the JSON holds a number too long to read; send ordinary numbers") from None
    if not isinstance(obj, dict):
        raise BadRequest(400, f"send a JSON object, not a {type(obj).__name__}")
    return obj


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_pixels(value) -> np.ndarray:
    """784 numbers in [0, 1] -> (28, 28) float32."""
    if not isinstance(value, list):
        raise BadRequest(400, f"\"pixels\" must be a list of {PIXELS} numbers, got a {type(value).__name__}")
    if len(value) != PIXELS:
        raise BadRequest(400, f"\"pixels\" must hold {PIXELS} numbers (28x28, row-major), got {len(value)}")
    if not all(_number(v) for v in value):
        raise BadRequest(400, "\"pixels\" must hold numbers only")
    x = np.asarray(value, dtype=np.float64)                       # (784,)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise BadRequest(400, "\"pixels\" must lie in [0, 1] (0 black background, 1 white ink)")
    return x.astype(np.float32).reshape(28, 28)                   # (28, 28)


def parse_image(value) -> np.ndarray | None:
    """A PNG data URL -> the MNIST-like (28, 28) float32, or None when blank."""
    from PIL import Image

    from ..data.images import load_image, mnist_like
    from ..errors import DataError

    if not isinstance(value, str) or not value[:len(PNG_PREFIX)].lower() == PNG_PREFIX:
        raise BadRequest(400, f"\"image\" must be a PNG data URL starting with {PNG_PREFIX!r}")
    try:
        data = base64.b64decode(value[len(PNG_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(400, "\"image\": the base64 data is damaged") from None
    try:
        with Image.open(io.BytesIO(data)) as im:                  # reads the header only
            if im.format != "PNG":
                raise BadRequest(400, f"\"image\" holds {im.format}, not PNG")
            w, h = im.size
    except BadRequest:
        raise
    except Image.DecompressionBombError:
        raise BadRequest(400, f"\"image\" is far too large; at most {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels") from None
    except Exception:                                             # noqa: BLE001 - any undecodable header
        raise BadRequest(400, "\"image\" is not a PNG Pillow can read") from None
    if w > MAX_IMAGE_SIDE or h > MAX_IMAGE_SIDE:
        raise BadRequest(400, f"\"image\" is {w}x{h} pixels; at most {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}")
    try:
        picture = load_image(io.BytesIO(data))                     # (H, W) float32, bright ink
    except DataError:
        raise BadRequest(400, "\"image\" is not a PNG Pillow can read") from None
    return mnist_like(picture)


def parse_strokes(value) -> np.ndarray | None:
    """Canvas strokes -> the MNIST-like (28, 28) float32 of the Tk window's
    picture of them, or None when there is no ink."""
    from ..data.images import mnist_like
    from .drawing import render_strokes

    if not isinstance(value, list):
        raise BadRequest(400, "\"strokes\" must be a list of strokes, each a list of [x, y] points")
    strokes, total = [], 0
    for stroke in value:
        if not isinstance(stroke, list) or not stroke:
            raise BadRequest(400, "each stroke must be a non-empty list of [x, y] points")
        total += len(stroke)
        if total > MAX_POINTS:
            raise BadRequest(400, f"too many points: at most {MAX_POINTS} in all strokes together")
        points = []
        for p in stroke:
            if (not isinstance(p, list) or len(p) != 2 or not all(_number(c) for c in p)
                    or not all(math.isfinite(c) for c in p)):
                raise BadRequest(400, "each point must be [x, y], two finite numbers (canvas pixels)")
            # the Tk window clips the same way (Drawing._clip): the pointer may leave the canvas
            points.append((min(max(float(p[0]), 0.0), CANVAS - 1.0), min(max(float(p[1]), 0.0), CANVAS - 1.0)))
        strokes.append(points)
    picture = np.asarray(render_strokes(strokes, CANVAS, BRUSH), dtype=np.float32) / np.float32(255)  # (280, 280)
    return mnist_like(picture)


INPUTS = {"pixels": parse_pixels, "image": parse_image, "strokes": parse_strokes}


def parse_predict(body: bytes) -> tuple[str, np.ndarray | None]:
    """(which input kind, the model's (28, 28) input or None for a blank drawing)."""
    obj = parse_json(body)
    keys = sorted(obj)
    if len(keys) != 1 or keys[0] not in INPUTS:
        raise BadRequest(400, f"send exactly one of {', '.join(repr(k) for k in INPUTS)}; got keys {keys}")
    kind = keys[0]
    return kind, INPUTS[kind](obj[kind])


def parse_switch(body: bytes) -> str:
    """``{"id": "..."}``: which listed model to switch to."""
    obj = parse_json(body)
    if sorted(obj) != ["id"] or not isinstance(obj["id"], str):
        raise BadRequest(400, "send {\"id\": \"<an id from GET /api/models>\"}")
    return obj["id"]
