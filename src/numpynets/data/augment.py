"""Data augmentation: a random affine transform of each training image
(shift, rotation, scaling, optional shear) and an optional elastic
distortion, resampled for many images at once.

For output pixel ``p = (row, col)`` of image ``n`` the transform reads the
input at::

    q = A[n] (p - c) + c + t[n]                 c = ((H-1)/2, (W-1)/2)

with ``A[n] = R(theta) · Shear(s) · (1/z)`` (an inverse map: the output is
the input rotated by ``theta``, sheared and zoomed by ``z``) and ``t[n]`` a
shift in pixels, plus, with ``elastic``, a smooth displacement field: a
random 4x4 grid of offsets in ``[-elastic, elastic]`` pixels, interpolated
bilinearly to ``H x W``. ``x[q]`` is bilinear interpolation between the four
neighbouring pixels, zero outside the image.

Vectorised: both parts of ``q`` are linear in a few functions of the pixel
(its row, its column, 1, and the elastic grid's 16 hat functions), so the
sample coordinates of every output pixel of every image are one matrix
product, the images' stacked (2N, 3 or 19) weights times that (3 or 19,
H*W) basis. The interpolation is two gathers of (pixel, right-hand
neighbour) pairs from the flattened, zero-bordered images; there is no
Python loop over images. The border is as wide as the configuration's
transforms need (an affine map is extreme at the image's corners), so no
coordinate needs clipping; only wild strengths (a border over
``MAX_BORDER`` pixels) clip into a narrow one.
With whole-pixel shifts only (``rotate``, ``scale``, ``shear``, ``elastic``
0 and an integer ``shift``) the batch is instead cropped at random offsets
from its zero-padded copy: one gather, exact, several times cheaper.

:class:`Augmenter` draws all of a call's transforms at once and resamples
in blocks of ``block_pixels`` (32 MNIST images), whose working arrays stay
in cache and are reused; the trainer calls it on chunks of about 1,000
images (:attr:`numpynets.train.fit.Trainer.augment_pixels`), not per batch.

Randomness comes from one ``np.random.Generator`` (``Augmenter.rng``),
seeded from the run's seed by :func:`augment_rng`; the draws per call are a
fixed sequence of vectorised calls, so the same seed gives bit-identical
images. ``state()``/``set_state()`` save and restore the generator for an
exact resume.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..errors import ConfigError

# field -> (largest sensible value, unit, what it means)
LIMITS = {
    "shift": (14.0, "pixels", "largest translation along each axis"),
    "rotate": (180.0, "degrees", "largest rotation either way"),
    "scale": (0.9, "", "largest relative zoom: the size is multiplied by a factor in [1-s, 1+s]"),
    "shear": (45.0, "degrees", "largest shear angle either way"),
    "elastic": (8.0, "pixels", "largest elastic displacement"),
}


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of each transform; 0 turns one off. The defaults are
    ``--augment``'s: +-2 px, +-10 degrees, +-10 %; the ``convnet`` recipe
    adds an elastic distortion of up to 1.5 px."""
    shift: float = 2.0
    rotate: float = 10.0
    scale: float = 0.1
    shear: float = 0.0
    elastic: float = 0.0

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            top, unit, what = LIMITS[f.name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"--augment-{f.name} must be a number, got {v!r}")
            if v < 0:
                raise ConfigError(f"--augment-{f.name} must be >= 0 ({what}), got {v:g}")
            if v > top:
                raise ConfigError(f"--augment-{f.name} {v:g} is absurd: at most {top:g} {unit} ({what})".replace("  ", " "))

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        """Parse a recipe's ``augment`` dict; unknown keys are refused."""
        if not isinstance(d, dict):
            raise ConfigError(f"augment must be a JSON object of strengths, got {d!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"augment: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def augment_rng(seed: int) -> np.random.Generator:
    """The augmentation stream of a run: the third child of the run's seed
    (the first two are initialisation and shuffling, see
    :func:`numpynets.train.fit.seeds`), so turning augmentation on leaves
    the other two streams unchanged."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])


def _bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) weights that interpolate ``n_in`` evenly spaced knots
    (first and last at the ends) linearly onto ``n_out`` points."""
    pos = np.linspace(0.0, n_in - 1.0, n_out)                        # (n_out,)
    lo = np.minimum(np.floor(pos).astype(np.int64), n_in - 2)
    frac = pos - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] = 1 - frac
    m[np.arange(n_out), lo + 1] = frac
    return m


def _inverse_maps(rng: np.random.Generator, cfg: AugmentConfig, n: int, h: int, w: int):
    """The batch's transforms: (n, 2, 3) float64 affine maps ``[A | b]``
    taking an output pixel ``(row, col, 1)`` to where it reads the input,
    and the elastic grid (2, n, 4, 4) of offsets (the weights of :func:`_basis`),
    or None. The random draws are one fixed sequence: (n, 5) uniforms, then
    the elastic grid."""
    u = rng.uniform(-1.0, 1.0, size=(n, 5))                          # (n, 5): one column per transform
    theta = u[:, 0] * math.radians(cfg.rotate)                       # (n,)
    zoom = u[:, 1] * cfg.scale + 1.0                                 # (n,) > 0 (scale <= 0.9)
    cos, sin = np.cos(theta) / zoom, np.sin(theta) / zoom            # (n,)
    m = np.empty((n, 2, 3))                                          # (n, 2, 3)
    # A = R(theta) @ [[1, shear], [0, 1]] / zoom, acting on (row, col) offsets from the centre c
    m[:, 0, 0], m[:, 1, 0] = cos, sin
    if cfg.shear:
        shear = np.tan(u[:, 2] * math.radians(cfg.shear))            # (n,)
        m[:, 0, 1], m[:, 1, 1] = cos * shear - sin, sin * shear + cos
    else:
        m[:, 0, 1], m[:, 1, 1] = -sin, cos
    # q = A (p - c) + c + t = A p + b,  b = c + t - A c
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    m[:, :, 2] = u[:, 3:5] * cfg.shift + (cy, cx) - m[:, :, 0] * cy - m[:, :, 1] * cx
    grid = rng.uniform(-cfg.elastic, cfg.elastic, size=(2, n, 4, 4)) if cfg.elastic > 0 else None   # (2, n, 4, 4)
    return m, grid


@functools.lru_cache(maxsize=16)
def _basis(h: int, w: int, dtype: np.dtype, elastic: bool) -> np.ndarray:
    """(3 or 19, h*w) of ``dtype`` (read-only): the functions of the pixel
    that a sample coordinate is a weighted sum of. First ``(row, col, 1)``
    of every pixel, row-major, the affine map's; with ``elastic`` then the
    16 bilinear hat functions of the 4x4 elastic grid,
    ``my[row, i] * mx[col, j]`` in row ``3 + 4 i + j``, whose weights are
    the grid's offsets."""
    i, j = np.divmod(np.arange(h * w), w)                            # (h*w,) each
    rows = [np.stack([i, j, np.ones_like(i)]).astype(np.float64)]   # (3, h*w), exact integers
    if elastic:
        my, mx = _bilinear_matrix(h, 4), _bilinear_matrix(w, 4)      # (h, 4), (w, 4)
        rows.append((my[i][:, :, None] * mx[j][:, None, :]).reshape(h * w, 16).T)   # (16, h*w)
    basis = np.concatenate(rows).astype(dtype)
    basis.flags.writeable = False
    return basis


def _weights(m: np.ndarray, grid, dtype, offset: float = 0.0) -> np.ndarray:
    """(n, 2, 3 or 19) of ``dtype``: each image's weights of :func:`_basis`
    for its rows and its columns, the maps ``m`` (n, 2, 3) with ``offset``
    added, then the elastic ``grid`` (2, n, 4, 4) flattened, or none."""
    n = len(m)
    parts = [m] if grid is None else [m, grid.transpose(1, 0, 2, 3).reshape(n, 2, 16)]
    wts = np.concatenate(parts, axis=2, dtype=dtype)                 # (n, 2, 3 or 19), a copy
    wts[:, :, 2] += offset
    return wts


def _coordinates(wts: np.ndarray, h: int, w: int, out: np.ndarray | None = None) -> np.ndarray:
    """(n, 2, h*w) of the weights' dtype: rows then columns where each
    output pixel reads the input, for the weights ``wts`` (n, 2, 3 or 19)
    of :func:`_weights`. All pixels of all images, affine map and elastic
    field together, are one matrix product: the (2n, 3 or 19) stacked
    weights times the basis (written into ``out`` when given)."""
    n, _, k = wts.shape
    basis = _basis(h, w, wts.dtype, k > 3)                           # (k, h*w)
    return np.matmul(wts.reshape(2 * n, k), basis,
                     out=None if out is None else out.reshape(2 * n, h * w)).reshape(n, 2, h * w)


def sample_coordinates(rng: np.random.Generator, cfg: AugmentConfig, n: int, h: int, w: int, dtype=np.float64):
    """(rows, cols), each (n, h, w) of ``dtype``: where each output pixel
    reads the input. The random draws are float64 whatever ``dtype``."""
    m, grid = _inverse_maps(rng, cfg, n, h, w)
    q = _coordinates(_weights(m, grid, dtype), h, w)                 # (n, 2, h*w)
    return q[:, 0].reshape(n, h, w), q[:, 1].reshape(n, h, w)


MAX_BORDER = 8      # the widest zero border the resampler pads with; beyond it coordinates are clipped
CLIP_BORDER = 2     # the border when coordinates are clipped into it


def _border(lo: float, hi: float, size: int) -> int | None:
    """The zero border (pixels on every side) that holds every coordinate
    in [lo, hi] along an axis of ``size`` pixels with both neighbours, one
    pixel to spare for rounding; None when that is over ``MAX_BORDER``."""
    need = max(1, math.ceil(max(-lo, hi - (size - 1))) + 1)
    return need if need <= MAX_BORDER else None


@functools.lru_cache(maxsize=64)
def config_border(cfg: AugmentConfig, h: int, w: int) -> int | None:
    """The zero border that holds every coordinate any transform of ``cfg``
    can produce on an h x w image, or None (clip) when that is over
    ``MAX_BORDER``; computed once per configuration, not per batch.

    ``q - c = A (p - c) + t + elastic``: an affine map is extreme at the
    image's corners ``p``; the map is linear in ``1/zoom``, in the shear's
    tangent and in ``t``, so those are extreme at the ends of their ranges,
    and the elastic field is a convex combination of offsets within
    ``+-elastic``. Over the angle the corner moves by at most ``L`` pixels
    per radian (``L = |S (p - c)| / zoom``), so a grid of angles ``delta``
    apart misses at most ``L delta / 2``."""
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rot, k = math.radians(cfg.rotate), 64
    sh = math.tan(math.radians(cfg.shear))
    corners = [(cy, cx), (cy, -cx), (-cy, cx), (-cy, -cx)]                    # p - c
    sp = np.array([[(py + s * px, px) for py, px in corners] for s in (-sh, sh)])   # (2, 4, 2): S (p - c)
    theta = np.linspace(-rot, rot, k + 1)[:, None, None]                        # (65, 1, 1)
    cos, sin = np.cos(theta), np.sin(theta)                                     # (65, 1, 1)
    inv_zoom = np.array([1 / (1 - cfg.scale), 1 / (1 + cfg.scale)])[:, None, None, None]   # (2, 1, 1, 1)
    rows = inv_zoom * (cos * sp[..., 0] - sin * sp[..., 1])                     # (2, 65, 2, 4): R S (p - c) / zoom
    cols = inv_zoom * (sin * sp[..., 0] + cos * sp[..., 1])                     # (2, 65, 2, 4)
    miss = np.hypot(sp[..., 0], sp[..., 1]).max() * inv_zoom.max() * (2 * rot / k) / 2   # between grid angles
    slack = miss + cfg.shift + cfg.elastic
    b = [_border(c + v.min() - slack, c + v.max() + slack, size) for c, v, size in ((cy, rows, h), (cx, cols, w))]
    return None if None in b else max(b)


def resample(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear sampling of ``images`` (N, C, H, W) at (rows, cols) (N, H, W),
    zero outside; one transform per image, shared by its channels (see
    :func:`_resample_bordered`; the border comes from the coordinates'
    extent, clipped beyond ``MAX_BORDER``)."""
    N, _, H, W = images.shape
    q = np.stack([rows.reshape(N, H * W), cols.reshape(N, H * W)], axis=1).astype(images.dtype)   # (N, 2, H*W)
    border = None
    if q.size:
        b = [_border(q[:, 0].min(), q[:, 0].max(), H), _border(q[:, 1].min(), q[:, 1].max(), W)]
        border = None if None in b else max(b)
    q += images.dtype.type(border or CLIP_BORDER)
    return _resample_bordered(images, q, border)


@functools.lru_cache(maxsize=16)
def _starts(n: int, stride: int, dtype) -> np.ndarray:
    """(n, 1): where each image starts in the flattened batch (read-only)."""
    s = (np.arange(n) * stride).astype(dtype)[:, None]
    s.flags.writeable = False
    return s


class _Buffers:
    """The resampler's working arrays for one block shape, kept between
    blocks and calls (:class:`Augmenter` keeps two shapes): the table of
    pairs, whose border stays zero so only the images' place in it is
    written each time, and every intermediate. Fresh arrays of these sizes
    (0.1-1.4 MB for 16-32 images) can come from ``mmap`` and cost a page
    fault per 4 KB on first touch: on the loaded shared machine reuse made
    a batch of 16 take 0.58x the time, on an idle one 0.94x."""

    def __init__(self, N: int, C: int, H: int, W: int, bd: int, dt):
        Hp, Wp, HW, dt = H + 2 * bd, W + 2 * bd, H * W, np.dtype(dt)
        cdt = np.complex64 if dt == np.float32 else np.complex128     # a pair of the images' floats
        idt = dt if N * C * Hp * Wp < 2 ** 24 else np.float64         # flat indices, exact in float32 below 2**24
        self.q = np.empty((N, 2, HW), dtype=dt)                      # coordinates, then fractions
        self.whole = np.empty((N, 2, HW), dtype=dt)                  # their whole-pixel parts
        self.flat_f = np.empty((N, HW), dtype=idt)                   # top-left neighbour's flat index
        self.flat = np.empty((N, C, HW), dtype=np.intp)              # ... as np.take's index type, per channel
        self.pairs = np.zeros((N, C, Hp, Wp), dtype=cdt)             # (pixel, right neighbour), zero border
        self.v = np.empty((N, C, HW), dtype=cdt)
        self.below = np.empty((N, C, HW), dtype=cdt)
        self.planes = (np.arange(C) * (Hp * Wp))[:, None]            # (C, 1): each channel's plane


def _fast_dtype(dt) -> bool:
    """float32 and float64 images are resampled in their own dtype; others
    (float16, integers) go through float64."""
    return np.dtype(dt) in (np.float32, np.float64)


def _resample_bordered(images: np.ndarray, q: np.ndarray, border: int | None,
                       buffers: _Buffers | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Bilinear sampling of ``images`` (N, C, H, W) at ``q`` (N, 2, H*W):
    rows and columns in the coordinates of the image with a zero border of
    ``border`` pixels on every side, which holds every coordinate with its
    neighbours; or, with ``border`` None, a border of ``CLIP_BORDER`` into
    which the whole-pixel parts are clipped (every coordinate outside the
    image then reads zero whatever its fraction). ``q`` is overwritten.

    Interpolation between the four neighbours ``g`` of (r, c) with fractions
    ``(a, b)``: first down the rows, ``v = g0* + a (g1* - g0*)`` for both
    columns at once, then across, ``out = v0 + b (v1 - v0)``. Each pixel and
    its right-hand neighbour are stored side by side as one complex number
    (complex64 for float32 images; real: the pixel, imaginary: its neighbour), so two gathers (the pair at the
    top-left neighbour and the pair one row below) fetch all four, and the
    row interpolation is complex arithmetic with a real weight. Every array
    is (N, C or 1, H*W), so each NumPy call runs one long inner loop.

    ``buffers`` (a :class:`_Buffers` the caller keeps) are the working
    arrays, reused: with them and ``out`` ((N, C, H, W) of the images'
    dtype, which receives the result) a block allocates nothing. Without
    them each call makes its own."""
    N, C, H, W = images.shape
    bd = CLIP_BORDER if border is None else border
    Hp, Wp = H + 2 * bd, W + 2 * bd
    dt = images.dtype
    if not _fast_dtype(dt):                                           # float16, integers: compute in float64
        res = _resample_bordered(images.astype(np.float64), q.astype(np.float64, copy=False), border)
        if out is None:
            return res.astype(dt)
        np.copyto(out, res, casting="unsafe")
        return out
    b = buffers or _Buffers(N, C, H, W, bd, dt)
    pv = b.pairs.view(dt).reshape(N, C, Hp, Wp, 2)
    pv[:, :, bd:bd + H, bd:bd + W, 0] = images
    pv[:, :, bd:bd + H, bd - 1:bd - 1 + W, 1] = images
    whole = np.floor(q, out=b.whole)                                  # (N, 2, H*W)
    q -= whole                                                        # the fractions, in [0, 1)
    if border is None:
        np.clip(whole, 0, np.array([[Hp - 2], [Wp - 2]], dtype=dt), out=whole)
    # the top-left neighbour's flat index, row * Wp + col + the image's start: whole numbers,
    # exact in floating point, converted to np.take's index type once
    flat_f = np.multiply(whole[:, 0], Wp, out=b.flat_f)               # (N, H*W)
    flat_f += whole[:, 1]
    flat_f += _starts(N, C * Hp * Wp, b.flat_f.dtype)
    flat = b.flat                                                     # (N, C, H*W): one plane per channel
    flat[...] = flat_f[:, None]
    if C > 1:
        flat += b.planes
    # mode="clip": every index is inside the table by construction (the border holds each
    # coordinate with its neighbours, or the whole parts were clipped into it above); with
    # out= the default mode="raise" gathers into a temporary and copies it over, 2.5x the work
    f = b.pairs.reshape(-1)
    v = np.take(f, flat, out=b.v, mode="clip")                        # (N, C, H*W): (g00, g01)
    below = np.take(f[Wp:], flat, out=b.below, mode="clip")           # (g10, g11)
    below -= v                                                        # v = g0* + a (g1* - g0*)
    below *= q[:, 0:1]
    v += below
    res = np.subtract(v.imag, v.real, out=None if out is None else out.reshape(N, C, H * W))
    res *= q[:, 1:2]                                                  # out = v0 + b (v1 - v0), (N, C, H*W)
    res += v.real
    return res.reshape(N, C, H, W)


def resample_reference(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Slow, obvious twin of :func:`resample` (tests only): a loop over every
    output pixel, interpolating between its four neighbours."""
    N, C, H, W = images.shape
    out = np.zeros_like(images)

    def at(n, ch, i, j):
        return images[n, ch, i, j] if 0 <= i < H and 0 <= j < W else 0.0

    for n in range(N):
        for i in range(H):
            for j in range(W):
                r, c = rows[n, i, j], cols[n, i, j]
                i0, j0 = math.floor(r), math.floor(c)
                a, b = r - i0, c - j0
                for ch in range(C):
                    out[n, ch, i, j] = ((1 - a) * ((1 - b) * at(n, ch, i0, j0) + b * at(n, ch, i0, j0 + 1))
                                        + a * ((1 - b) * at(n, ch, i0 + 1, j0) + b * at(n, ch, i0 + 1, j0 + 1)))
    return out


def shift_only(cfg: AugmentConfig) -> bool:
    """Only whole-pixel shifts: no rotation, zoom, shear or elastic field,
    and an integer shift strength (the fast, exact crop path)."""
    return (cfg.rotate == 0 and cfg.scale == 0 and cfg.shear == 0 and cfg.elastic == 0
            and float(cfg.shift).is_integer())


def random_shifts(rng: np.random.Generator, images: np.ndarray, shift: int) -> np.ndarray:
    """Each image (N, C, H, W) moved by whole pixels, (dy, dx) uniform in
    [-shift, shift], zero filled: a random crop of the zero-padded batch,
    one gather of every image's window (convnetjs's random crops)."""
    N, C, H, W = images.shape
    k = int(shift)
    d = rng.integers(-k, k + 1, size=(N, 2))                         # (N, 2): dy, dx
    pad = np.zeros((N, C, H + 2 * k, W + 2 * k), dtype=images.dtype)
    pad[:, :, k:k + H, k:k + W] = images
    win = np.lib.stride_tricks.sliding_window_view(pad, (H, W), axis=(2, 3))   # (N, C, 2k+1, 2k+1, H, W) view
    n = np.arange(N)
    # output pixel p reads input p - d: the window that starts at k - d in the padded image
    return win[n, :, k - d[:, 0], k - d[:, 1]]                       # (N, C, H, W)


class Augmenter:
    """Random affine (+ elastic) transforms of image batches.

    ``augmenter(x)`` takes a batch (N, H, W) or (N, C, H, W) and returns a
    new array of the same shape and dtype (the input is left untouched).

    A call draws every image's transform at once (one fixed sequence of
    vectorised draws per call), then resamples the images in blocks of
    about ``block_pixels`` pixels (whole-pixel shifts, an exact crop, take
    the call's images at once), whose working arrays stay in the core's
    cache and are reused between blocks and calls. So one call on many
    batches' images at once (as :class:`~numpynets.train.fit.Trainer`
    makes, see its ``augment_pixels``) costs less than a call per batch,
    whose fixed costs come back each time and whose working arrays the
    training step evicts in between."""

    block_pixels = 32 * 28 * 28        # resampled at a time: 32 MNIST images, a ~1.4 MB working set

    def __init__(self, config: AugmentConfig | dict | None = None, rng: np.random.Generator | int | None = None):
        if isinstance(config, dict):
            config = AugmentConfig.from_dict(config)
        self.config = config or AugmentConfig()
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self._buffers = {}                                             # the resampler's working arrays, reused

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.ndim not in (3, 4):
            raise ConfigError(f"augmentation works on image batches (N, H, W) or (N, C, H, W), got shape {x.shape}")
        x4 = x[:, None] if x.ndim == 3 else x                         # (N, C, H, W)
        N, C, H, W = x4.shape
        if shift_only(self.config):
            out = random_shifts(self.rng, x4, int(self.config.shift))  # (N, C, H, W), exact
        else:
            m, grid = _inverse_maps(self.rng, self.config, N, H, W)    # (N, 2, 3), (2, N, 4, 4) or None
            border = config_border(self.config, H, W)                  # None: clip (wild strengths)
            wdt = x4.dtype if _fast_dtype(x4.dtype) else np.float64
            wts = _weights(m, grid, wdt, offset=border or CLIP_BORDER)   # (N, 2, 3 or 19)
            out = np.empty_like(x4, order="C")                         # (N, C, H, W)
            k = max(1, self.block_pixels // max(1, C * H * W))         # images per block
            for s in range(0, N, k):
                e = min(N, s + k)
                b = self._buffers_for((e - s, C, H, W), border, x4.dtype)   # None: float16, integers
                q = _coordinates(wts[s:e], H, W, out=None if b is None else b.q)   # (k, 2, H*W)
                _resample_bordered(x4[s:e], q, border, b, out=out[s:e])
        return out[:, 0] if x.ndim == 3 else out

    def _buffers_for(self, shape, border, dt) -> _Buffers | None:
        """The working arrays for blocks of ``shape``, kept for the last two
        shapes seen (the full blocks and a call's shorter last one)."""
        if not _fast_dtype(dt):
            return None
        key = (tuple(shape), border, np.dtype(dt))
        if key not in self._buffers:
            if len(self._buffers) >= 2:
                del self._buffers[next(iter(self._buffers))]
            N, C, H, W = shape
            self._buffers[key] = _Buffers(N, C, H, W, CLIP_BORDER if border is None else border, dt)
        return self._buffers[key]

    def state(self) -> dict:
        """The generator's state (JSON-able), for an exact resume."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state
