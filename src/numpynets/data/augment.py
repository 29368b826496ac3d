"""Data augmentation: a random affine transform of each training image
(shift, rotation, scaling, optional shear) and an optional elastic
distortion, resampled for the whole batch at once.

For output pixel ``p = (row, col)`` of image ``n`` the transform reads the
input at::

    q = A[n] (p - c) + c + t[n]                 c = ((H-1)/2, (W-1)/2)

with ``A[n] = R(theta) · Shear(s) · (1/z)`` (an inverse map: the output is
the input rotated by ``theta``, sheared and zoomed by ``z``) and ``t[n]`` a
shift in pixels, plus, with ``elastic``, a smooth displacement field: a
random 4x4 grid of offsets in ``[-elastic, elastic]`` pixels, interpolated
bilinearly to ``H x W``. ``x[q]`` is bilinear interpolation between the four
neighbouring pixels, zero outside the image.

Vectorised: the sample coordinates of every output pixel of every image
are one ``(N, H, W)`` array each, and the interpolation is four gathers from
the flattened, zero-bordered batch; there is no Python loop over images.
With whole-pixel shifts only (``rotate``, ``scale``, ``shear``, ``elastic``
0 and an integer ``shift``) the batch is instead cropped at random offsets
from its zero-padded copy: one gather, exact, several times cheaper.

Randomness comes from one ``np.random.Generator`` (``Augmenter.rng``),
seeded from the run's seed by :func:`augment_rng`; the draws per batch are a
fixed sequence of vectorised calls, so the same seed gives bit-identical
batches. ``state()``/``set_state()`` save and restore the generator for an
exact resume.
"""

from __future__ import annotations

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
    """Strengths of each transform; 0 turns one off. The defaults are the
    ``convnet`` recipe's (and ``--augment``'s): +-2 px, +-10 degrees, +-10 %."""
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


def sample_coordinates(rng: np.random.Generator, cfg: AugmentConfig, n: int, h: int, w: int, dtype=np.float64):
    """(rows, cols), each (n, h, w) of ``dtype``: where each output pixel
    reads the input. The random draws are float64 whatever ``dtype``."""
    u = rng.uniform(-1.0, 1.0, size=(n, 5))                          # (n, 5): one column per transform
    theta = np.deg2rad(cfg.rotate) * u[:, 0]                         # (n,)
    zoom = 1.0 + cfg.scale * u[:, 1]                                 # (n,) > 0 (scale <= 0.9)
    shear = np.tan(np.deg2rad(cfg.shear) * u[:, 2])                  # (n,)
    ty, tx = cfg.shift * u[:, 3], cfg.shift * u[:, 4]                # (n,) pixels
    cos, sin = np.cos(theta) / zoom, np.sin(theta) / zoom            # (n,)
    # A = R(theta) @ [[1, shear], [0, 1]] / zoom, acting on (row, col) offsets
    a00, a01 = cos, cos * shear - sin
    a10, a11 = sin, sin * shear + cos
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    py = (np.arange(h) - cy).astype(dtype)[None, :, None]            # (1, h, 1)
    px = (np.arange(w) - cx).astype(dtype)[None, None, :]            # (1, 1, w)

    def col(v):                                                      # (n,) -> (n, 1, 1) of dtype
        return v.astype(dtype)[:, None, None]

    rows = col(a00) * py + col(a01) * px + col(cy + ty)              # (n, h, w)
    cols = col(a10) * py + col(a11) * px + col(cx + tx)              # (n, h, w)
    if cfg.elastic > 0:
        grid = rng.uniform(-cfg.elastic, cfg.elastic, size=(2, n, 4, 4))               # (2, n, 4, 4)
        my, mx = _bilinear_matrix(h, 4), _bilinear_matrix(w, 4)                         # (h, 4), (w, 4)
        field = np.einsum("hi,kniJ,wJ->knhw", my, grid, mx).astype(dtype)                # (2, n, h, w)
        rows += field[0]
        cols += field[1]
    return rows, cols


def resample(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear sampling of ``images`` (N, C, H, W) at (rows, cols) (N, H, W),
    zero outside; one transform per image, shared by its channels.

    Interpolation between the four neighbours ``g`` of (r, c) with fractions
    ``(a, b)``: ``top = g00 + b (g01 - g00)``, ``bottom = g10 + b (g11 - g10)``,
    ``out = top + a (bottom - top)``. The batch is padded with a zero border
    of two pixels and every coordinate clipped into it, so each of the four
    gathers is in range and a pixel outside the image reads zero; the
    gathers are ``np.take`` on the flattened padded batch, and the
    arithmetic is in place, in the images' dtype, with int32 indices."""
    N, C, H, W = images.shape
    Hp, Wp = H + 4, W + 4
    dt = images.dtype
    pad = np.zeros((N, Hp, Wp, C), dtype=dt)                          # (N, H+4, W+4, C), channels last
    pad[:, 2:-2, 2:-2, :] = images.transpose(0, 2, 3, 1)
    # padded coordinates, clipped into the border; all >= 0, so truncation is the floor
    r = rows.astype(dt)                                               # (N, H, W), a copy
    c = cols.astype(dt)
    r += dt.type(2)
    c += dt.type(2)
    np.clip(r, 0, H + 2.5, out=r)
    np.clip(c, 0, W + 2.5, out=c)
    r0, c0 = r.astype(np.int32), c.astype(np.int32)                   # (N, H, W)
    r -= r0                                                           # the fractions, in [0, 1)
    c -= c0
    base = r0
    base *= Wp
    base += c0
    base += (np.arange(N, dtype=np.int32) * (Hp * Wp))[:, None, None]  # (N, H, W): flat pixel index
    if C == 1:
        flat = pad.reshape(-1)                                        # 1-D: the fastest gather
        a, b = r, c                                                   # (N, H, W)
        shape = (N, H, W)
    else:
        flat = pad.reshape(N * Hp * Wp, C)
        a, b = r[..., None], c[..., None]                             # (N, H, W, 1)
        shape = (N, H, W, C)
    # the neighbours right, below and below-right are the same gather from shifted views
    top = np.take(flat, base, axis=0).reshape(shape)                  # g00
    g01 = np.take(flat[1:], base, axis=0).reshape(shape)
    bottom = np.take(flat[Wp:], base, axis=0).reshape(shape)          # g10
    g11 = np.take(flat[Wp + 1:], base, axis=0).reshape(shape)
    g01 -= top                                                        # top = g00 + b (g01 - g00)
    g01 *= b
    top += g01
    g11 -= bottom                                                     # bottom = g10 + b (g11 - g10)
    g11 *= b
    bottom += g11
    bottom -= top                                                     # out = top + a (bottom - top)
    bottom *= a
    top += bottom
    if C == 1:
        return top[:, None]                                           # (N, 1, H, W)
    return np.ascontiguousarray(top.transpose(0, 3, 1, 2))            # (N, C, H, W)


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
    new array of the same shape and dtype (the input is left untouched)."""

    def __init__(self, config: AugmentConfig | dict | None = None, rng: np.random.Generator | int | None = None):
        if isinstance(config, dict):
            config = AugmentConfig.from_dict(config)
        self.config = config or AugmentConfig()
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.ndim not in (3, 4):
            raise ConfigError(f"augmentation works on image batches (N, H, W) or (N, C, H, W), got shape {x.shape}")
        x4 = x[:, None] if x.ndim == 3 else x                         # (N, C, H, W)
        N, _, H, W = x4.shape
        if shift_only(self.config):
            out = random_shifts(self.rng, x4, int(self.config.shift))  # (N, C, H, W), exact
        else:
            rows, cols = sample_coordinates(self.rng, self.config, N, H, W, dtype=x4.dtype)
            out = resample(x4, rows, cols)                             # (N, C, H, W)
        return out[:, 0] if x.ndim == 3 else out

    def state(self) -> dict:
        """The generator's state (JSON-able), for an exact resume."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state
