"""MNIST: find it, verify it, download it, load it.

Lookup order (the first folder holding all four files wins): ``--data-dir``,
``$NUMPYNETS_DATA``, ``./data``, then the user cache
(``$XDG_CACHE_HOME/numpynets`` or ``~/.cache/numpynets``); a ``--data-dir``
that is given is the only folder looked in (a folder the user names is never
silently replaced by another). Both file namings
are accepted (``train-images-idx3-ubyte`` and the original project's
``train-images.idx3-ubyte``), gzipped or not. Contents are checked against
the SHA-256 of the decompressed standard files. When nothing is found the
files are downloaded from the public mirrors into the cache, verified, and
written atomically (a temp file, then a rename); offline, the error says
where to put the files.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_bytes_atomically
from ..errors import ConfigError, DataError
from .idx import gunzip_idx, parse_idx, read_idx_bytes

# name -> (SHA-256 of the decompressed file, its size in bytes)
FILES = {
    "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
    "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
    "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
    "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "numpynets"


def search_dirs(data_dir=None) -> list[Path]:
    """The folders to look in, in order. An explicit ``data_dir`` is the only
    one: a folder the user names must not be silently replaced by another."""
    if data_dir:
        return [Path(data_dir)]
    dirs = []
    if os.environ.get("NUMPYNETS_DATA"):
        dirs.append(Path(os.environ["NUMPYNETS_DATA"]))
    return dirs + [Path("data"), cache_dir()]


def candidates(name: str) -> list[str]:
    """``train-images-idx3-ubyte`` -> that name and ``train-images.idx3-ubyte``, each with .gz."""
    stem, _, rest = name.partition("-idx")
    names = [name, f"{stem}.idx{rest}"]
    return [n + ext for n in names for ext in ("", ".gz")]


def find_file(folder: Path, name: str) -> Path | None:
    for cand in candidates(name):
        p = Path(folder) / cand
        if p.is_file():
            return p
    return None


def find_mnist(data_dir=None) -> Path | None:
    """The first folder in the lookup order that holds all four files."""
    for folder in search_dirs(data_dir):
        if all(find_file(folder, n) for n in FILES):
            return folder
    return None


def verify_bytes(data: bytes, name: str) -> bool:
    sha, size = FILES[name]
    return len(data) == size and hashlib.sha256(data).hexdigest() == sha


def check_bytes(data: bytes, name: str, where) -> None:
    """Raise unless ``data`` (decompressed) is the standard MNIST file ``name``."""
    if not verify_bytes(data, name):
        raise DataError(f"{where}: contents do not match the standard MNIST file {name} "
                        f"({len(data):,} bytes, SHA-256 mismatch); delete it and run "
                        "'numpynets data --download', or pass --no-verify for a custom data set")


def mirrors_from_env() -> list[str]:
    env = os.environ.get("NUMPYNETS_MIRRORS")
    return env.split() if env and env.strip() else list(MIRRORS)


def fetch(url: str, timeout: float, max_bytes: int) -> bytes:
    """The body of ``url``; refuses more than ``max_bytes`` and raises
    (``OSError``/``http.client.HTTPException``) when the body breaks off."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise ValueError(f"too large ({int(length):,} bytes)")
        body = bytearray()
        while True:
            chunk = resp.read(min(1 << 20, max_bytes + 1 - len(body)))
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise ValueError(f"too large (over {max_bytes:,} bytes)")
        if length is not None and length.isdigit() and len(body) != int(length):
            raise ConnectionError(f"connection closed after {len(body):,} of {int(length):,} bytes")
        return bytes(body)


def download(dest=None, mirrors=None, timeout: float = 30.0, log=print) -> Path:
    """Fetch the missing files into ``dest`` (default: the user cache), trying
    each mirror in turn (``$NUMPYNETS_MIRRORS``, space-separated, replaces the
    public ones). Each file is verified before it is renamed into place, so a
    broken download never leaves a file that looks complete."""
    dest = Path(dest) if dest else cache_dir()
    if mirrors is None:
        mirrors = mirrors_from_env()
    where = (f"Offline? Put the four MNIST files (gzipped or not) in {dest} or ./data, "
             "or point --data-dir / $NUMPYNETS_DATA at them")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest}: cannot create the data folder ({exc.strerror}); "
                        "choose another with --data-dir") from None
    for name in FILES:
        if find_file(dest, name):
            continue
        size = FILES[name][1]
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name + ".gz"
            log(f"downloading {url}")
            try:
                blob = fetch(url, timeout, max_bytes=size + size // 100 + 65536)
                data, _ = gunzip_idx(blob, url, max_size=size)
            except urllib.error.HTTPError as exc:
                errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
                continue
            except urllib.error.URLError as exc:
                errors.append(f"{url}: {exc.reason}")
                continue
            except (OSError, http.client.HTTPException, ValueError) as exc:
                errors.append(f"{url}: {exc.__class__.__name__} {exc}".strip())
                continue
            except DataError:
                errors.append(f"{url}: corrupt gzip data")
                continue
            if not verify_bytes(data, name):
                errors.append(f"{url}: contents do not match the standard file (SHA-256)")
                continue
            try:
                write_bytes_atomically(dest / (name + ".gz"), blob)
            except OSError as exc:
                raise DataError(f"{dest}: cannot write {name}.gz ({exc.strerror}); "
                                "choose another folder with --data-dir") from None
            break
        else:
            tried = "; ".join(errors) if errors else "no mirrors configured"
            raise DataError(f"could not download {name} ({tried}). {where}")
    return dest


@dataclass
class Split:
    x: np.ndarray      # (N, 28, 28) float32 in [0, 1]
    y: np.ndarray      # (N,) int64

    def __len__(self):
        return len(self.y)


@dataclass
class MNIST:
    train: Split
    val: Split
    test: Split
    folder: Path


def load_split(folder: Path, kind: str, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,)) of ``kind`` "train" or "t10k".

    Each file is first checked as IDX (magic, type code, dimensions, length:
    these errors say what exactly is wrong), then, when ``verify``, against
    the SHA-256 of the standard file; then the pair is checked together."""
    arrays = []
    for part in ("images", "labels"):
        name = next(n for n in FILES if n.startswith(f"{kind}-{part}"))
        path = find_file(folder, name)
        if path is None:
            raise DataError(f"{folder}: no {name} file; put the four MNIST files there "
                            "or run 'numpynets data --download'")
        # verified files must have the standard size: decompress no further
        data, cut = read_idx_bytes(path, FILES[name][1] if verify else None)
        arr = parse_idx(data, str(path), cut)
        if verify:
            check_bytes(data, name, path)
        arrays.append((arr, path))
    (images, ipath), (labels, lpath) = arrays
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(f"{ipath}: expected 28x28 uint8 images (N, 28, 28), got {images.dtype} {images.shape}; "
                        "put an MNIST-format images file there")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{lpath}: expected integer labels (N,), got {labels.dtype} {labels.shape}; "
                        "put an MNIST-format labels file there")
    if len(images) != len(labels):
        raise DataError(f"{ipath} holds {len(images):,} images but {lpath} holds {len(labels):,} labels; "
                        "the files do not belong together: put matching images and labels files there")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        bad = labels.max() if labels.max() > 9 else labels.min()
        raise DataError(f"{lpath}: label {bad} is not a digit 0-9; is it the right labels file?")
    return images, labels


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], once, at load (p / 255 in float32,
    as the original; ``uint8 / 255`` alone would give float64)."""
    return np.divide(images, np.float32(255), dtype=np.float32)   # (N, 28, 28)


def split_sizes(n: int, val_fraction: float) -> tuple[int, int]:
    """(train, val) sizes: the validation set is the last ``floor(n·f)``
    images (with a tolerance, so that 0.3·100 gives 30, not 29)."""
    n_val = min(n, math.floor(n * val_fraction + 1e-9))
    return n - n_val, n_val


def locate(data_dir=None, download_missing: bool = True, log=print) -> Path:
    """The MNIST folder in the lookup order, downloading into the user cache
    when none holds the files (and no ``data_dir`` was named)."""
    folder = find_mnist(data_dir)
    if folder is None:
        if data_dir:
            raise DataError(f"{data_dir}: MNIST files not found there (need {', '.join(FILES)}, "
                            "gzipped or not); fix --data-dir, or fetch them with "
                            f"'numpynets data --download --data-dir {data_dir}'")
        if not download_missing:
            raise DataError("MNIST not found in " + ", ".join(str(d) for d in search_dirs())
                            + "; run 'numpynets data --download' or pass --data-dir")
        folder = download(log=log)
    return Path(folder)


def load_mnist_test(data_dir=None, verify: bool = True, download_missing: bool = True, log=print) -> Split:
    """Only the 10,000 test images (for evaluate, predict-like tools): the
    47 MB training file is not read."""
    x, y = load_split(locate(data_dir, download_missing, log), "t10k", verify)
    return Split(to_float(x), y.astype(np.int64))


def load_mnist(data_dir=None, val_fraction: float = 0.1, limit: int | None = None,
               verify: bool = True, download_missing: bool = True, log=print) -> MNIST:
    """Load MNIST; the validation set is the *last* ``val_fraction`` of the
    training file (the original's split: 54,000 / 6,000). ``limit`` keeps the
    first ``limit`` images of the training file (split the same way); the
    test set is always whole. Pixels are float32 in [0, 1], labels int64.

    When no folder in the lookup order holds the files (and no ``data_dir``
    was named), they are downloaded into the user cache."""
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float, np.floating)) \
            or not 0 <= val_fraction < 1:
        raise ConfigError(f"validation split must be in [0, 1), got {val_fraction}; "
                          "e.g. --val-split 0.1 holds out the last 10% of the training file")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise ConfigError(f"--limit must be a whole number >= 1, got {limit}")
    folder = locate(data_dir, download_missing, log)
    xtr, ytr = load_split(folder, "train", verify)
    xte, yte = load_split(folder, "t10k", verify)
    if limit is not None:
        xtr, ytr = xtr[:limit], ytr[:limit]
    n_train, n_val = split_sizes(len(ytr), val_fraction)
    if n_train <= 0:
        raise ConfigError(f"no training images left after the validation split ({len(ytr)} images, "
                          f"split {val_fraction}); use a smaller --val-split or a larger --limit")
    x, xt = to_float(xtr), to_float(xte)                       # (N, 28, 28) float32
    y, yt = ytr.astype(np.int64), yte.astype(np.int64)         # (N,) int64
    return MNIST(train=Split(x[:n_train], y[:n_train]), val=Split(x[n_train:], y[n_train:]),
                 test=Split(xt, yt), folder=Path(folder))
