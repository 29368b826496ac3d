"""The original project's model files (Rust-Neural-Networks, ORIGINAL.md §3).

Three raw binary layouts with no magic number and no type information. Every
number is little-endian, whatever the platform (``'<i4'``, ``'<f4'``,
``'<f8'`` below, never native order). Matrices are row-major ``[in][out]``,
our :class:`~numpynets.nn.linear.Linear` layout, so no transposes are needed.

* **MLP** ``mnist_model.bin``::

      int32 n_in, n_hidden, n_out                       (784, 512, 10)
      W1 [n_in][n_hidden], b1 [n_hidden], W2 [n_hidden][n_out], b2 [n_out]

  The element type is not stored. The Rust trainer writes float32; the C
  program and ``digit_recognizer.py`` use float64. With
  ``n = n_in·h + h + h·n_out + n_out`` values after the 12-byte header, the
  file has ``12 + 4n`` or ``12 + 8n`` bytes, so its size decides (1,628,212 B
  and 3,256,412 B for 784-512-10).
* **CNN** ``mnist_cnn_model_best.bin`` (float32 only)::

      int32 out_ch, in_ch, k, H, W                      (8, 1, 3, 28, 28)
      conv W [oc][ic][ky][kx], conv b [oc]
      int32 fc_in, fc_out                               (1568, 10)
      FC W [fc_in][fc_out], FC b [fc_out]

  Padding 1, stride 1 and the 2×2/2 max-pool are implied, not stored; the FC
  input index is channel-major, ``c·(H/2)(W/2) + py·(W/2) + px``.
* **attention** ``mnist_attention_model_best.bin`` (float32, no header): with
  ``D`` the model width, ``F`` the feed-forward width (64 and 128; 16 and 32
  in the first version), 16-value patches and 49 tokens::

      W_patch [16][D], b_patch [D], pos [49][D],
      W_q [D][D], b_q, W_k, b_k, W_v, b_v,
      W_ff1 [D][F], b_ff1 [F], W_ff2 [F][D], b_ff2 [D], W_cls [D][10], b_cls [10]

  ``3D² + 2DF + F + 80D + 10`` values. Without a header only the size tells
  ``D`` and ``F``: automatic detection accepts the original's ``F = 2D``
  (``7D² + 82D + 10`` values); other widths need ``d_model``/``ff_dim``.

Reading validates the header against the file size *before* reading or
allocating anything else, so a truncated, padded or damaged file (or one whose
header asks for gigabytes) gives a one-line :class:`ModelFileError` that names
the file, never a ``MemoryError`` or a half-loaded model. Which model the
weights go into, and which models a format can hold, is in
:mod:`numpynets.io.original_models`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelFileError

KINDS = ("mlp", "cnn", "attention")
ELEMENT_TYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
PATCH_DIM, TOKENS, CLASSES = 16, 49, 10      # the attention model's fixed sizes (4x4 patches of 28x28)
_PLAUSIBLE = 1 << 24                         # a header field above this cannot be a real dimension
_MIN_AUTO_D = 8                              # narrower attention models are not guessed from a size


@dataclass
class Layout:
    """One file's structure: int32 header groups and named arrays, in file order."""

    kind: str
    dtype: np.dtype                                  # element type of the arrays
    segments: list                                   # [("<i4", (ints...)) | (name, shape)]
    dims: dict = field(default_factory=dict)         # the sizes, for messages and model building

    @property
    def nbytes(self) -> int:
        """Exact file size in bytes (Python ints: no overflow for absurd headers)."""
        total = 0
        for name, value in self.segments:
            total += 4 * len(value) if name == "<i4" else math.prod(value) * self.dtype.itemsize
        return total

    @property
    def element_type(self) -> str:
        return "float64" if self.dtype.itemsize == 8 else "float32"

    def describe(self) -> str:
        """E.g. ``original mlp file (784-512-10, float64)``."""
        d = self.dims
        if self.kind == "mlp":
            sizes = f"{d['n_in']}-{d['hidden']}-{d['n_out']}"
        elif self.kind == "cnn":
            sizes = (f"conv {d['out_ch']}x{d['in_ch']}x{d['k']}x{d['k']} on {d['in_ch']}x{d['H']}x{d['W']}, "
                     f"fc {d['fc_in']}-{d['fc_out']}")
        else:
            sizes = f"D={d['d_model']}, F={d['ff_dim']}"
        return f"original {self.kind} file ({sizes}, {self.element_type})"


def mlp_layout(n_in: int, hidden: int, n_out: int, element_type: str = "float64") -> Layout:
    return Layout("mlp", ELEMENT_TYPES[element_type],
                  [("<i4", (n_in, hidden, n_out)),
                   ("W1", (n_in, hidden)), ("b1", (hidden,)), ("W2", (hidden, n_out)), ("b2", (n_out,))],
                  {"n_in": n_in, "hidden": hidden, "n_out": n_out})


def cnn_layout(out_ch: int, in_ch: int, k: int, h: int, w: int, fc_in: int, fc_out: int) -> Layout:
    return Layout("cnn", ELEMENT_TYPES["float32"],
                  [("<i4", (out_ch, in_ch, k, h, w)),
                   ("conv_W", (out_ch, in_ch, k, k)), ("conv_b", (out_ch,)),
                   ("<i4", (fc_in, fc_out)),
                   ("fc_W", (fc_in, fc_out)), ("fc_b", (fc_out,))],
                  {"out_ch": out_ch, "in_ch": in_ch, "k": k, "H": h, "W": w, "fc_in": fc_in, "fc_out": fc_out})


def attention_layout(d: int, f: int) -> Layout:
    return Layout("attention", ELEMENT_TYPES["float32"],
                  [("W_patch", (PATCH_DIM, d)), ("b_patch", (d,)), ("pos", (TOKENS, d)),
                   ("W_q", (d, d)), ("b_q", (d,)), ("W_k", (d, d)), ("b_k", (d,)),
                   ("W_v", (d, d)), ("b_v", (d,)),
                   ("W_ff1", (d, f)), ("b_ff1", (f,)), ("W_ff2", (f, d)), ("b_ff2", (d,)),
                   ("W_cls", (d, CLASSES)), ("b_cls", (CLASSES,))],
                  {"d_model": d, "ff_dim": f})


def attention_values(d: int, f: int) -> int:
    return 3 * d * d + 2 * d * f + f + 80 * d + 10


# -- bytes <-> arrays --------------------------------------------------------
def pack(layout: Layout, tensors: dict[str, np.ndarray]) -> bytes:
    """The file's bytes: header ints and arrays in layout order, little-endian."""
    parts = []
    for name, value in layout.segments:
        if name == "<i4":
            parts.append(struct.pack(f"<{len(value)}i", *value))
        else:
            a = np.asarray(tensors[name])
            if a.shape != tuple(value):
                raise ValueError(f"{name}: shape {a.shape}, the layout needs {tuple(value)}")
            parts.append(np.ascontiguousarray(a, dtype=layout.dtype).tobytes())   # C order = row-major
    return b"".join(parts)


def unpack(layout: Layout, data: bytes) -> dict[str, np.ndarray]:
    """Named arrays (views into ``data``, dtype ``layout.dtype``) of a validated file."""
    out, off = {}, 0
    for name, value in layout.segments:
        if name == "<i4":
            off += 4 * len(value)
            continue
        n = math.prod(value)
        out[name] = np.frombuffer(data, dtype=layout.dtype, count=n, offset=off).reshape(value)
        off += n * layout.dtype.itemsize
    return out


# -- recognising a file from its header and size -----------------------------
@dataclass
class Mismatch:
    """Why a file is not of one layout; ``plausible`` when its header looked right."""

    reason: str
    plausible: bool = False


def _read_ints(f, n: int, at: int = 0) -> tuple[int, ...] | None:
    f.seek(at)
    b = f.read(4 * n)
    return struct.unpack(f"<{n}i", b) if len(b) == 4 * n else None


def _bad_field(kind: str, names, values) -> Mismatch | None:
    for name, v in zip(names, values):
        if not 0 < v <= _PLAUSIBLE:
            return Mismatch(f"the {kind} header says {name} = {v}, not a size")
    return None


def _short_or_long(size: int, need: int) -> str:
    return "truncated" if size < need else "extra bytes at the end"


def probe_mlp(f, size: int) -> Layout | Mismatch:
    """The MLP layout of the open file ``f`` of ``size`` bytes, or why it is not one."""
    dims = _read_ints(f, 3)
    if dims is None:
        return Mismatch(f"{size} B is too short for the 12-byte MLP header")
    bad = _bad_field("MLP", ("n_in", "n_hidden", "n_out"), dims)
    if bad:
        return bad
    f32, f64 = (mlp_layout(*dims, t) for t in ("float32", "float64"))
    for lay in (f32, f64):
        if lay.nbytes == size:
            return lay
    what = ("a truncated float64 file, or float32 with extra bytes" if f32.nbytes < size < f64.nbytes
            else _short_or_long(size, f32.nbytes))
    return Mismatch(f"the MLP header {dims[0]}-{dims[1]}-{dims[2]} needs {f32.nbytes:,d} B (float32) or "
                    f"{f64.nbytes:,d} B (float64), the file has {size:,d} B ({what})", plausible=True)


def probe_cnn(f, size: int) -> Layout | Mismatch:
    first = _read_ints(f, 5)
    if first is None:
        return Mismatch(f"{size} B is too short for the 20-byte CNN header")
    bad = _bad_field("CNN", ("out_channels", "in_channels", "kernel", "input_h", "input_w"), first)
    if bad:
        return bad
    oc, ic, k = first[:3]
    at = 20 + 4 * (oc * ic * k * k + oc)                    # offset of the (fc_in, fc_out) pair
    fc = _read_ints(f, 2, at) if at + 8 <= size else None
    if fc is None:
        return Mismatch(f"the CNN header {first} needs more than the file's {size:,d} B (truncated)",
                        plausible=True)
    bad = _bad_field("CNN fully connected", ("fc_in", "fc_out"), fc)
    if bad:
        return bad
    lay = cnn_layout(*first, *fc)
    if lay.nbytes != size:
        return Mismatch(f"the CNN header {first} + {fc} needs {lay.nbytes:,d} B, the file has {size:,d} B "
                        f"({_short_or_long(size, lay.nbytes)})", plausible=True)
    return lay


def attention_sizes(n_values: int) -> list[tuple[int, int]]:
    """Every (D, F) whose attention layout has exactly ``n_values`` values."""
    found, d = [], 1
    while attention_values(d, 1) <= n_values:
        rest = n_values - (3 * d * d + 80 * d + 10)         # = F (2D + 1)
        if rest > 0 and rest % (2 * d + 1) == 0:
            found.append((d, rest // (2 * d + 1)))
        d += 1
    return found


def probe_attention(size: int, d_model: int | None = None, ff_dim: int | None = None,
                    explicit: bool = False) -> Layout | Mismatch:
    """Attention layout from the size alone (there is no header).

    Without ``d_model``/``ff_dim`` only the original's ``F = 2D`` is
    accepted (and ``D >= 8`` unless ``explicit``, i.e. the caller says the
    file is an attention model): a damaged file of another kind often fits
    *some* (D, F), which would be a guess. One of the two widths is enough
    when it leaves a single candidate.
    """
    if size % 4:
        return Mismatch(f"{size:,d} B is not a whole number of float32 values")
    if d_model is not None and ff_dim is not None:
        want = attention_layout(d_model, ff_dim)
        if want.nbytes != size:
            return Mismatch(f"an attention model with D={d_model}, F={ff_dim} needs {want.nbytes:,d} B, the file "
                            f"has {size:,d} B ({_short_or_long(size, want.nbytes)})", plausible=True)
        return want
    cands = [c for c in attention_sizes(size // 4)
             if d_model in (None, c[0]) and ff_dim in (None, c[1])]
    doubled = [c for c in cands if c[1] == 2 * c[0] and (explicit or c[0] >= _MIN_AUTO_D)]
    if doubled:
        return attention_layout(*doubled[0])
    if (d_model or ff_dim) and len(cands) == 1:
        return attention_layout(*cands[0])
    if not cands:
        return Mismatch(f"{size:,d} B fits no attention model (the original's D=64, F=128 has 135,720 B)")
    shown = ", ".join(f"D={d} F={f}" for d, f in cands[:4]) + (" ..." if len(cands) > 4 else "")
    return Mismatch(f"{size:,d} B fits attention widths {shown}; say which with --d-model and --ff-dim",
                    plausible=explicit)


def detect(path, kind: str | None = None, d_model: int | None = None, ff_dim: int | None = None) -> Layout:
    """The layout of the original model file at ``path``, from its header and size.

    Reads only header fields. ``kind`` (mlp, cnn, attention) restricts the
    search; otherwise MLP and CNN, which have headers, are tried before the
    headerless attention layout.
    """
    path = Path(path)
    if kind is not None and kind not in KINDS:
        raise ModelFileError(f"unknown original model kind {kind!r}; choose one of {', '.join(KINDS)}")
    try:
        size = path.stat().st_size
        if size == 0:
            raise ModelFileError(f"{path}: empty file, not a model")
        with open(path, "rb") as f:
            found = {}
            if kind in (None, "mlp"):
                found["mlp"] = probe_mlp(f, size)
            if kind in (None, "cnn"):
                found["cnn"] = probe_cnn(f, size)
            if kind in (None, "attention"):
                found["attention"] = probe_attention(size, d_model, ff_dim, explicit=kind == "attention")
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read ({exc.strerror})") from None
    for r in found.values():
        if isinstance(r, Layout):
            return r
    if kind is not None:
        raise ModelFileError(f"{path}: not an original {kind} model file: {found[kind].reason}")
    # explain the format the file most looks like: one whose header was plausible
    likely = [k for k in ("cnn", "mlp", "attention") if found[k].plausible]   # CNN: 5 plausible ints
    if likely:
        raise ModelFileError(f"{path}: a damaged original {likely[0]} model file? {found[likely[0]].reason}")
    why = "; ".join(f"{k}: {r.reason}" for k, r in found.items())
    raise ModelFileError(f"{path}: not a model file numpynets reads (not safetensors, and not one of the "
                         f"original's .bin files: {why})")


def read_tensors(path, layout: Layout) -> dict[str, np.ndarray]:
    """The arrays of a file whose size ``detect`` has checked against ``layout``."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(layout.nbytes + 1)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) != layout.nbytes:                            # changed since detect() looked
        raise ModelFileError(f"{path}: {len(data):,d} B read, {layout.nbytes:,d} B expected; "
                             "is something still writing it?")
    return unpack(layout, data)


def looks_like_safetensors(path) -> bool:
    """True when the file starts like safetensors: a little-endian u64 header
    length that fits the file, then a JSON object."""
    try:
        size = Path(path).stat().st_size
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 1 < n <= size - 8 and head[8:9] == b"{"
