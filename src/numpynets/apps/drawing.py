"""Strokes drawn with the mouse, and the antialiased picture they make.

This is the pure half of ``numpynets draw``: no Tk here, so it can be tested
without a display. A :class:`Drawing` is a list of strokes, each a list of
canvas points (pixels of the 280x280 canvas). Every stroke is painted as a
round-capped, round-joined line of constant width: a line segment between
consecutive points plus a disc of the brush's diameter at every point.

Antialiasing by supersampling: the strokes are painted in pure white (255)
into a binary image ``supersample`` times larger on each side, then every
``s x s`` block is averaged down to one canvas pixel. A pixel half covered by
ink becomes grey 128, so edges are smooth both on screen and in what the
model receives. Because the big image is a union of white shapes, the order
in which segments are painted does not matter: painting each new segment as
the mouse moves gives exactly the image of painting all strokes at once
(:func:`render_strokes`), which the tests check.
"""

from __future__ import annotations

import numpy as np

CANVAS = 280          # canvas side in pixels, as the original (10x MNIST's 28)
BRUSH = 20.0          # brush diameter in canvas pixels, as the original
SUPERSAMPLE = 4       # painting resolution = CANVAS * SUPERSAMPLE per side

Point = tuple[float, float]


def _hi(p: Point, ss: int) -> tuple[float, float]:
    """Canvas pixel coordinates -> supersampled pixel coordinates. Canvas
    pixel x covers [x, x + 1); its centre x + 0.5 maps to (x + 0.5) * ss,
    which is pixel index (x + 0.5) * ss - 0.5 in the big image."""
    return (p[0] + 0.5) * ss - 0.5, (p[1] + 0.5) * ss - 0.5


def paint_segment(draw, p: Point, q: Point | None, brush: float, ss: int) -> None:
    """Paint one piece of a stroke into a supersampled ImageDraw: the disc at
    ``p`` (a round cap or join), and when ``q`` is given the thick segment
    p -> q and the disc at ``q``."""
    r = brush * ss / 2
    # Pillow fills an ellipse's bounding box with its corner pixels
    # included; shrinking the box by half a pixel on each side centres the
    # disc on (px, py) with area pi r^2 (checked in the tests)
    e = r - 0.5
    px, py = _hi(p, ss)
    draw.ellipse([px - e, py - e, px + e, py + e], fill=255)
    if q is None:
        return
    qx, qy = _hi(q, ss)
    if (qx, qy) != (px, py):
        draw.line([(px, py), (qx, qy)], fill=255, width=max(1, round(2 * r)))
    draw.ellipse([qx - e, qy - e, qx + e, qy + e], fill=255)


def paint_stroke(draw, stroke: list[Point], brush: float, ss: int) -> None:
    if len(stroke) == 1:
        paint_segment(draw, stroke[0], None, brush, ss)
    for p, q in zip(stroke, stroke[1:]):
        paint_segment(draw, p, q, brush, ss)


def downsample(big, ss: int):
    """Average ``ss x ss`` blocks: the supersampled binary image -> the
    antialiased canvas image (a Pillow 'L' image)."""
    return big.reduce(ss) if ss > 1 else big.copy()


def render_strokes(strokes: list[list[Point]], size: int = CANVAS, brush: float = BRUSH,
                   supersample: int = SUPERSAMPLE):
    """All strokes at once -> antialiased Pillow 'L' image ``size x size``,
    white ink on black."""
    from PIL import Image, ImageDraw

    big = Image.new("L", (size * supersample, size * supersample), 0)
    draw = ImageDraw.Draw(big)
    for stroke in strokes:
        paint_stroke(draw, stroke, brush, supersample)
    return downsample(big, supersample)


class Drawing:
    """The strokes on the canvas, with undo and clear, and their picture
    kept up to date incrementally as points arrive.

    ``begin(x, y)`` starts a stroke (mouse button pressed), ``extend(x, y)``
    adds a point (mouse moved with the button down), ``end()`` closes it.
    """

    def __init__(self, size: int = CANVAS, brush: float = BRUSH, supersample: int = SUPERSAMPLE):
        if size < 1 or brush <= 0 or supersample < 1:
            raise ValueError(f"bad drawing parameters: size {size}, brush {brush}, supersample {supersample}")
        self.size, self.brush, self.supersample = int(size), float(brush), int(supersample)
        self.strokes: list[list[Point]] = []
        self.drawing_stroke = False
        self._reset_picture()

    # -- the picture -------------------------------------------------------

    def _reset_picture(self) -> None:
        from PIL import Image, ImageDraw

        s = self.size * self.supersample
        self._big = Image.new("L", (s, s), 0)
        self._draw = ImageDraw.Draw(self._big)
        self._cache = None                       # downsampled image, None when stale

    def _repaint(self) -> None:
        self._reset_picture()
        for stroke in self.strokes:
            paint_stroke(self._draw, stroke, self.brush, self.supersample)

    def image(self):
        """The antialiased canvas picture: Pillow 'L', size x size, white on black."""
        if self._cache is None:
            self._cache = downsample(self._big, self.supersample)
        return self._cache.copy()

    def array(self) -> np.ndarray:
        """The picture as (size, size) float32 in [0, 1], ink bright."""
        return np.asarray(self.image(), dtype=np.float32) / np.float32(255)   # (size, size)

    def save_png(self, path) -> None:
        self.image().save(path, format="PNG")

    # -- strokes -----------------------------------------------------------

    @property
    def empty(self) -> bool:
        return not self.strokes

    def _clip(self, x: float, y: float) -> Point:
        # the mouse can leave the canvas while the button is held
        return (min(max(float(x), 0.0), self.size - 1.0), min(max(float(y), 0.0), self.size - 1.0))

    def begin(self, x: float, y: float) -> Point:
        """Start a stroke at (x, y); a single click leaves a dot."""
        p = self._clip(x, y)
        self.strokes.append([p])
        self.drawing_stroke = True
        paint_segment(self._draw, p, None, self.brush, self.supersample)
        self._cache = None
        return p

    def extend(self, x: float, y: float) -> tuple[Point, Point] | None:
        """Add a point to the current stroke; returns the new segment, or
        None when there is no stroke under way or the point did not move."""
        if not self.drawing_stroke:
            return None
        stroke = self.strokes[-1]
        p, q = stroke[-1], self._clip(x, y)
        if q == p:
            return None
        stroke.append(q)
        paint_segment(self._draw, p, q, self.brush, self.supersample)
        self._cache = None
        return p, q

    def end(self) -> None:
        self.drawing_stroke = False

    def undo(self) -> bool:
        """Remove the last stroke; False when there was none."""
        self.drawing_stroke = False
        if not self.strokes:
            return False
        self.strokes.pop()
        self._repaint()
        return True

    def clear(self) -> None:
        self.strokes.clear()
        self.drawing_stroke = False
        self._reset_picture()


def strokes_from_image(img: np.ndarray, scale: float = 10.0, threshold: float = 0.5) -> list[list[Point]]:
    """Trace a small image (e.g. a 28x28 MNIST digit) as strokes on a canvas
    ``scale`` times larger: every horizontal run of pixels brighter than
    ``threshold`` becomes one straight stroke along the middle of that row.
    Painted with a brush ``scale`` wide, the runs tile the ink of the
    upscaled image. Used by the tests (and handy for demos) to "draw" a
    known digit with the mouse."""
    ink = np.asarray(img) > threshold                              # (H, W) bool
    strokes = []
    for r, row in enumerate(ink):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        for c0, c1 in zip(edges[::2], edges[1::2] - 1):            # inclusive runs [c0, c1]
            # pixel c of the small image covers canvas pixels [c*scale, (c+1)*scale),
            # whose middle is canvas pixel coordinate (c + 0.5) * scale - 0.5
            y = (r + 0.5) * scale - 0.5
            stroke = [((c0 + 0.5) * scale - 0.5, y), ((c1 + 0.5) * scale - 0.5, y)]
            strokes.append(stroke if c1 > c0 else stroke[:1])      # a lone pixel is a dot
    return strokes
