"""MNIST: find it, verify it, download it, load it.

Lookup order (the first folder holding all four files wins): ``--data-dir``,
``$NUMPYNETS_DATA``, ``./data``, then the user cache
(``$XDG_CACHE_HOME/numpynets`` or ``~/.cache/numpynets``). Both file namings
are accepted (``train-images-idx3-ubyte`` and the original project's
``train-images.idx3-ubyte``), gzipped or not. Contents are checked against
the SHA-256 of the decompressed standard files. When nothing is found the
files are downloaded from the public mirrors into the cache, verified, and
written atomically (a temp file, then a rename).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .idx import parse_idx, read_bytes

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
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    if os.environ.get("NUMPYNETS_DATA"):
        dirs.append(Path(os.environ["NUMPYNETS_DATA"]))
    dirs += [Path("data"), cache_dir()]
    return dirs


def candidates(name: str) -> list[str]:
    """``train-images-idx3-ubyte`` -> that name and ``train-images.idx3-ubyte``, each with .gz."""
    stem, _, rest = name.partition("-idx")
    names = [name, f"{stem}.idx{rest}"]
    return [n + ext for n in names for ext in ("", ".gz")]


def find_file(folder: Path, name: str) -> Path | None:
    for cand in candidates(name):
        p = folder / cand
        if p.is_file():
            return p
    return None


def find_mnist(data_dir=None) -> Path | None:
    """The first folder in the lookup order that holds all four files."""
    for folder in search_dirs(data_dir):
        if all(find_file(folder, n) for n in FILES):
            return folder
    return None


def check_bytes(data: bytes, name: str, where) -> None:
    sha, size = FILES[name]
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
        raise DataError(f"{where}: contents do not match the standard MNIST file {name} "
                        f"({len(data):,} bytes, SHA-256 mismatch); delete it and run "
                        "'numpynets data --download', or pass --no-verify for a custom data set")


def download(dest=None, mirrors=None, timeout: float = 30.0, log=print) -> Path:
    """Fetch the four files into ``dest`` (default: the user cache), trying
    each mirror in turn; each file is verified before it is renamed into
    place, so a broken download never leaves a file that looks complete."""
    dest = Path(dest) if dest else cache_dir()
    if mirrors is None:
        env = os.environ.get("NUMPYNETS_MIRRORS")
        mirrors = env.split() if env else MIRRORS
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest}: cannot create the data folder ({exc.strerror}); "
                        "choose another with --data-dir") from None
    for name in FILES:
        if find_file(dest, name):
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name + ".gz"
            try:
                log(f"downloading {url}")
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    blob = resp.read()
                check_bytes(gzip.decompress(blob), name, url)
            except (urllib.error.URLError, OSError, EOFError, ValueError, DataError) as exc:
                reason = getattr(exc, "reason", None) or exc
                errors.append(f"{url}: {reason}")
                continue
            atomic_write(dest / (name + ".gz"), blob)
            break
        else:
            raise DataError(
                f"could not download {name} ({'; '.join(str(e) for e in errors)}). "
                f"Offline? Put the four MNIST files (gzipped or not) in {dest} or ./data, "
                "or point --data-dir / $NUMPYNETS_DATA at them")
    return dest


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    arrays = []
    for part in ("images", "labels"):
        name = next(n for n in FILES if n.startswith(f"{kind}-{part}"))
        path = find_file(folder, name)
        if path is None:
            raise DataError(f"{folder}: no {name} file; put the four MNIST files there "
                            "or run 'numpynets data --download'")
        data = read_bytes(path)
        if verify:
            check_bytes(data, name, path)
        arrays.append((parse_idx(data, str(path)), path))
    (images, ipath), (labels, lpath) = arrays
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{ipath}: expected images (N, H, W) and labels (N,), got {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{ipath}: {len(images)} images but {lpath} has {len(labels)} labels; "
                        "the files do not belong together")
    if labels.size and labels.max() > 9:
        raise DataError(f"{lpath}: label {labels.max()} is not a digit 0-9")
    return images, labels


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], once, at load (p / 255 in float32,
    as the original; ``uint8 / 255`` alone would give float64)."""
    return np.divide(images, np.float32(255), dtype=np.float32)


def load_mnist(data_dir=None, val_fraction: float = 0.1, limit: int | None = None,
               verify: bool = True, download_missing: bool = True, log=print) -> MNIST:
    """Load MNIST; the validation set is the *last* ``val_fraction`` of the
    training file (the original's split: 54,000 / 6,000). ``limit`` keeps the
    first ``limit`` images of the training file (split the same way); the
    test set is always whole."""
    if not 0 <= val_fraction < 1:
        raise DataError(f"validation split must be in [0, 1), got {val_fraction}")
    folder = find_mnist(data_dir)
    if folder is None:
        if data_dir:
            raise DataError(f"{data_dir}: MNIST files not found there (need {', '.join(FILES)}, "
                            "gzipped or not); fix --data-dir or run 'numpynets data --download'")
        if not download_missing:
            raise DataError("MNIST not found in " + ", ".join(str(d) for d in search_dirs())
                            + "; run 'numpynets data --download' or pass --data-dir")
        folder = download(log=log)
    xtr, ytr = load_split(folder, "train", verify)
    xte, yte = load_split(folder, "t10k", verify)
    if limit is not None:
        xtr, ytr = xtr[:limit], ytr[:limit]
    n_val = int(len(ytr) * val_fraction)
    n_train = len(ytr) - n_val
    if n_train <= 0:
        raise DataError(f"no training images left after the validation split ({len(ytr)} images)")
    x, xt = to_float(xtr), to_float(xte)
    y, yt = ytr.astype(np.int64), yte.astype(np.int64)
    return MNIST(train=Split(x[:n_train], y[:n_train]), val=Split(x[n_train:], y[n_train:]),
                 test=Split(xt, yt), folder=folder)
