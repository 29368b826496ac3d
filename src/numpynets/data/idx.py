"""IDX files (the MNIST container), raw or gzipped.

Layout: two zero bytes, a type code byte, the number of dimensions ``ndim``,
then ``ndim`` big-endian uint32 sizes, then the data, big-endian, row-major.
The reader checks every part and names the file and the fix when one is
wrong; it never trusts the header to size an allocation beyond the bytes that
are actually there.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from ..errors import DataError

# type code -> big-endian dtype
DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CODES = {np.dtype(v).newbyteorder("=").str: k for k, v in DTYPES.items()}


def read_bytes(path) -> bytes:
    """The file's decompressed bytes (gzip is detected by its magic number,
    not by the file name)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip data ({exc}); "
                            "delete it and download again (numpynets data --download)") from None
    return raw


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    hint = "delete it and download again (numpynets data --download)"
    if len(data) < 4:
        raise DataError(f"{name}: not an IDX file (only {len(data)} bytes); {hint}")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic number {data[:4].hex()}); {hint}")
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        raise DataError(f"{name}: unknown IDX type code 0x{code:02x}; {hint}")
    if ndim == 0:
        raise DataError(f"{name}: IDX file with no dimensions; {hint}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header; {hint}")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = np.dtype(DTYPES[code])
    expected = header + math.prod(dims) * dtype.itemsize    # Python ints: no overflow
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{name}: {what}: header says {dims} ({expected:,} bytes), "
                        f"file has {len(data):,} bytes; {hint}")
    arr = np.frombuffer(data, dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))            # native byte order, writable copy


def read_idx(path) -> np.ndarray:
    return parse_idx(read_bytes(path), os.fspath(path))


def encode_idx(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr)
    key = arr.dtype.newbyteorder("=").str
    if key not in CODES:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}")
    code = CODES[key]
    head = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    return head + arr.astype(DTYPES[code]).tobytes()


def write_idx(path, arr: np.ndarray, compress: bool | None = None) -> None:
    """Write ``arr`` as IDX; gzipped when ``compress`` or the name ends in .gz."""
    data = encode_idx(arr)
    if compress or (compress is None and os.fspath(path).endswith(".gz")):
        data = gzip.compress(data, mtime=0)
    with open(path, "wb") as f:
        f.write(data)
