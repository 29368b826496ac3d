"""IDX files (the MNIST container), raw or gzipped.

Layout: two zero bytes, a type code byte, the number of dimensions ``ndim``,
then ``ndim`` big-endian uint32 sizes, then the data, big-endian, row-major.
The file holds exactly ``4 + 4·ndim + prod(sizes)·itemsize`` bytes.

The reader checks every part and names the file and the fix when one is
wrong. It never trusts the header to size an allocation: the expected length
is computed with Python integers (no overflow) and compared with the bytes
that are actually there, and a gzipped file is decompressed in chunks that
stop one byte past the length the header declares. The declared length is
itself bounded before decompressing, by what the compressed bytes could
honestly hold (deflate's 1032:1 limit) and by an absolute cap
(:data:`MAX_IDX_BYTES`, or the known size of a standard file), so neither
absurd dimensions nor a gzip bomb can make it allocate more than the file
really holds (plus one chunk).
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib

import numpy as np

from ..atomic import write_bytes_atomically
from ..errors import DataError

# type code -> big-endian dtype
DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CODES = {np.dtype(v).newbyteorder("=").str: k for k, v in DTYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20
HINT = "delete it and download again (numpynets data --download)"


def expected_size(head: bytes) -> int | None:
    """Total IDX file size declared by a header prefix, or ``None`` when the
    prefix is too short or not an IDX header (the parser says why)."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in DTYPES or head[3] == 0:
        return None
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        return None
    dims = [int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return 4 + 4 * ndim + math.prod(dims) * np.dtype(DTYPES[head[2]]).itemsize


# Deflate cannot compress by more than 1032:1 (a 258-byte match per 2 bits at
# best), so a gzip file of n bytes honestly holds at most ~1032 n bytes.
DEFLATE_RATIO = 1032
# No IDX data set numpynets knows comes near this (MNIST's largest file is
# 47 MB); a header claiming more is damage, or a bomb, and is refused unread.
MAX_IDX_BYTES = 1 << 30


def size_limit(compressed: int | None, max_size: int | None) -> int:
    """The most bytes an IDX file may decompress to: what ``compressed``
    bytes of gzip could honestly hold, and never more than ``max_size``
    (:data:`MAX_IDX_BYTES` unless the caller knows the exact size)."""
    cap = MAX_IDX_BYTES if max_size is None else min(max_size, MAX_IDX_BYTES)
    if compressed is not None:
        cap = min(cap, DEFLATE_RATIO * compressed + 1024)
    return cap


def gunzip_idx(raw: bytes, name, max_size: int | None = None) -> tuple[bytes, bool]:
    """Decompress gzipped IDX bytes, stopping one byte past the size the
    header declares. Returns (bytes, cut): ``cut`` is True when the data went
    on beyond that size (so the length check reports "at least").

    The header is not trusted to bound the work: a declared size beyond what
    ``len(raw)`` bytes of gzip can hold (:func:`size_limit`) or beyond
    ``max_size`` is refused before anything past the header is decompressed,
    so a header claiming 2^32 items in front of gigabytes of zeros costs a
    few kilobytes, never a ``MemoryError``."""
    f = gzip.GzipFile(fileobj=io.BytesIO(raw))
    try:
        out = bytearray(f.read(4))
        if len(out) == 4 and out[:2] == b"\0\0":
            out += f.read(4 * out[3])                            # the dimensions
        limit = expected_size(bytes(out))
        if limit is None:                                        # not IDX: the parser says why
            return bytes(out), False
        bound = size_limit(len(raw), max_size)
        if limit > bound:
            why = (f"{len(raw):,} bytes of gzip can hold at most {DEFLATE_RATIO * len(raw) + 1024:,}"
                   if bound < min(MAX_IDX_BYTES, max_size or MAX_IDX_BYTES)
                   else f"more than the {bound:,} bytes numpynets accepts for this file")
            raise DataError(f"{name}: truncated or a decompression bomb: the IDX header declares "
                            f"{limit:,} bytes, {why}; {HINT}")
        while len(out) <= limit:
            chunk = f.read(min(CHUNK, limit + 1 - len(out)))
            if not chunk:
                break
            out += chunk
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{name}: corrupt or truncated gzip data ({exc}); {HINT}") from None
    except MemoryError:
        raise DataError(f"{name}: not enough memory to decompress it; {HINT}") from None
    return bytes(out), len(out) > limit


def read_bytes(path) -> bytes:
    """The file's contents, decompressed when gzipped (detected by the gzip
    magic number, not by the file name). Gzipped data is read no further than
    one byte past the size its IDX header declares."""
    return read_idx_bytes(path)[0]


def read_idx_bytes(path, max_size: int | None = None) -> tuple[bytes, bool]:
    """(contents, cut) of an IDX file, decompressed when gzipped; ``cut``
    says that gzipped data went on past the declared size and was not read
    further (pass it to :func:`parse_idx` for an exact message).
    ``max_size``: the decompressed size the file must not exceed (the known
    size of a standard file); at most :data:`MAX_IDX_BYTES` in any case."""
    cap = size_limit(None, max_size)
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > cap + cap // 100 + 65536:   # refused unread (gzip may add ~1%)
                raise DataError(f"{path}: more than {cap:,} bytes, larger than any IDX file numpynets "
                                f"reads here; {HINT}")
            raw = f.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}); check the path and its permissions") from None
    except MemoryError:
        raise DataError(f"{path}: not enough memory to read it; {HINT}") from None
    if raw[:2] == GZIP_MAGIC:
        return gunzip_idx(raw, path, max_size)
    return raw, False


def parse_idx(data: bytes, name: str = "<bytes>", cut: bool = False) -> np.ndarray:
    """Validate IDX bytes and return the array in native byte order (a
    writable copy). ``cut``: ``data`` was cut short after the declared size."""
    if len(data) < 4:
        raise DataError(f"{name}: not an IDX file (only {len(data)} bytes); {HINT}")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic number 0x{data[:4].hex()}, "
                        f"expected 0x0000TTNN); {HINT}")
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        raise DataError(f"{name}: unknown IDX type code 0x{code:02x} (known: "
                        f"{', '.join(f'0x{c:02x}' for c in DTYPES)}); {HINT}")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares no dimensions; {HINT}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header ({len(data)} of {header} bytes); {HINT}")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(DTYPES[code])
    expected = header + math.prod(dims) * dtype.itemsize    # Python ints: no overflow
    if len(data) != expected:
        if len(data) < expected:
            what, have = "truncated", f"{len(data):,}"
        else:
            what, have = "too long", f"{'more than ' if cut else ''}{len(data):,}"
        raise DataError(f"{name}: {what}: header says shape {dims} ({expected:,} bytes), "
                        f"file has {have} bytes; {HINT}")
    arr = np.frombuffer(data, dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))            # native byte order, writable copy


def read_idx(path) -> np.ndarray:
    """Read and validate an IDX file (raw or gzipped)."""
    data, cut = read_idx_bytes(path)
    return parse_idx(data, os.fspath(path), cut)


def encode_idx(arr: np.ndarray) -> bytes:
    """The IDX bytes of ``arr`` (uint8, int8, int16, int32, float32 or float64)."""
    arr = np.asarray(arr)
    key = arr.dtype.newbyteorder("=").str
    if key not in CODES:
        raise ValueError(f"IDX cannot store dtype {arr.dtype} "
                         "(only uint8, int8, int16, int32, float32, float64)")
    if not 1 <= arr.ndim <= 255 or any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"IDX cannot store an array of shape {arr.shape} (1 to 255 dimensions, each < 2**32)")
    code = CODES[key]
    head = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    return head + np.ascontiguousarray(arr, DTYPES[code]).tobytes()


def write_idx(path, arr: np.ndarray, compress: bool | None = None) -> None:
    """Write ``arr`` as IDX, atomically (temp file, then rename); gzipped when
    ``compress`` is true, or when it is ``None`` and the name ends in .gz."""
    data = encode_idx(arr)
    path = os.fspath(path)
    if compress or (compress is None and path.endswith(".gz")):
        data = gzip.compress(data, mtime=0)
    write_bytes_atomically(path, data)
