"""MNIST and the other registered image data sets (:mod:`.datasets`):
find them, verify them, download them, load them.

Every data set has its own subfolder of each search folder
(``data/fashion-mnist``); MNIST is also found where it always was, in the
search folders themselves.

Lookup order (the first folder holding all four files wins): ``--data-dir``,
``$NUMPYNETS_DATA``, ``./data``, then the user cache
(``$XDG_CACHE_HOME/numpynets`` or ``~/.cache/numpynets``); a ``--data-dir``
that is given is the only folder looked in (a folder the user names is never
silently replaced by another). Both file namings
are accepted (``train-images-idx3-ubyte`` and the original project's
``train-images.idx3-ubyte``), gzipped or not. Contents are checked against
the published checksums the registry holds: the SHA-256 of the decompressed
standard files where known (MNIST), else the makers' MD5 of their ``.gz``
files (a decompressed copy of those can be checked only by size and shape). When nothing is found the
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
from .datasets import DATASETS, Dataset, get_dataset
from .idx import gunzip_idx, parse_idx, read_idx_bytes


def file_table(ds: Dataset) -> dict:
    """name -> (SHA-256 of the decompressed file or None, its size in bytes)."""
    return {f.name: (f.sha256, f.size) for f in ds.files.values()}


# MNIST's table and mirrors, as before the registry (read-only aliases of its entry)
FILES = file_table(DATASETS["mnist"])
MIRRORS = DATASETS["mnist"].mirrors


def _ds(dataset) -> Dataset:
    return dataset if isinstance(dataset, Dataset) else get_dataset(dataset or "mnist")


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


def dataset_folders(dataset="mnist", data_dir=None) -> list[Path]:
    """Where a data set may live, in order: each search folder's subfolder
    named after it (``data/fashion-mnist``), then, for MNIST (its places
    before there were other data sets) or a folder named with ``--data-dir``,
    the search folder itself."""
    ds = _ds(dataset)
    out = []
    for base in search_dirs(data_dir):
        out.append(base / ds.subfolder)
        if ds.legacy_folders or data_dir:
            out.append(base)
    return out


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


def find_dataset(dataset="mnist", data_dir=None) -> Path | None:
    """The first folder in the lookup order that holds all four files."""
    ds = _ds(dataset)
    for folder in dataset_folders(ds, data_dir):
        if all(find_file(folder, f.name) for f in ds.files.values()):
            return folder
    return None


def find_mnist(data_dir=None) -> Path | None:
    """The first folder in the lookup order that holds the four MNIST files."""
    return find_dataset("mnist", data_dir)


def _idx_file(ds: Dataset, name: str):
    return next(f for f in ds.files.values() if f.name == name)


def file_state(data: bytes, name: str, dataset="mnist", gz_blob: bytes | None = None) -> str:
    """"ok" (a published checksum matches), "unverified" (none applies: a
    decompressed file of a data set whose makers publish only the MD5 of
    their .gz files; its size is right) or "mismatch". ``gz_blob``: the
    file's own bytes when it is gzipped."""
    f = _idx_file(_ds(dataset), name)
    if len(data) != f.size:
        return "mismatch"
    if gz_blob is not None and f.gz_md5 and hashlib.md5(gz_blob).hexdigest() == f.gz_md5:
        return "ok"
    if f.sha256 is None:
        if gz_blob is not None and f.gz_md5:         # a .gz, but not the published one
            return "mismatch"
        return "mismatch" if identify(data) else "unverified"   # unless the registry knows it as another's
    return "ok" if hashlib.sha256(data).hexdigest() == f.sha256 else "mismatch"


def verify_bytes(data: bytes, name: str, dataset="mnist", gz_blob: bytes | None = None) -> bool:
    return file_state(data, name, dataset, gz_blob) != "mismatch"


def identify(data: bytes) -> str | None:
    """"MNIST's t10k-images-idx3-ubyte" when ``data`` is a file the registry
    knows by its SHA-256, else None (to say what a wrong file really is)."""
    sha = hashlib.sha256(data).hexdigest()
    for ds in DATASETS.values():
        for f in ds.files.values():
            if f.sha256 == sha:
                return f"{ds.title}'s {f.name}"
    return None


def check_bytes(data: bytes, name: str, where, dataset="mnist", gz_blob: bytes | None = None) -> str:
    """Raise unless ``data`` (decompressed) can be the file ``name`` of the
    data set; returns its state ("ok" or "unverified")."""
    ds = _ds(dataset)
    state = file_state(data, name, ds, gz_blob)
    if state == "mismatch":
        f = _idx_file(ds, name)
        other = identify(data)
        found = (f"{len(data):,} bytes" + (f" where {f.size:,} are expected" if len(data) != f.size else "")
                 + (", SHA-256 mismatch" if f.sha256 else ", MD5 of the .gz is not the published one"
                    if gz_blob is not None else "") + (f": it is {other}" if other else ""))
        raise DataError(f"{where}: contents do not match the standard {ds.title} file {name} ({found}); "
                        f"delete it and run 'numpynets data --download --dataset {ds.name}', "
                        "or pass --no-verify for a custom data set of the same shape")
    return state


def gz_blob_of(path) -> bytes | None:
    """The raw bytes of a gzipped file (for the published .gz MD5), else None."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return raw if raw[:2] == b"\x1f\x8b" else None


def mirrors_from_env(dataset="mnist") -> list[str]:
    env = os.environ.get("NUMPYNETS_MIRRORS")
    return env.split() if env and env.strip() else list(_ds(dataset).mirrors)


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


def default_download_dir(dataset="mnist") -> Path:
    """The user cache's subfolder for the data set (MNIST: the cache itself, where it always went)."""
    ds = _ds(dataset)
    return cache_dir() if ds.legacy_folders else cache_dir() / ds.subfolder


def download(dest=None, mirrors=None, timeout: float = 30.0, log=print, dataset="mnist") -> Path:
    """Fetch the missing files into ``dest`` (default: the user cache's
    folder for the data set), trying each mirror in turn
    (``$NUMPYNETS_MIRRORS``, space-separated, replaces the public ones). Each
    file is verified (the published MD5 of the .gz, or the SHA-256 of its
    contents) before it is renamed into place, so a broken download never
    leaves a file that looks complete."""
    ds = _ds(dataset)
    dest = Path(dest) if dest else default_download_dir(ds)
    if mirrors is None:
        mirrors = mirrors_from_env(ds)
    local = "./data" if ds.legacy_folders else f"./data/{ds.subfolder}"
    where = (f"Offline? Put the four {ds.title} files (gzipped or not) in {dest} or {local}, "
             "or point --data-dir / $NUMPYNETS_DATA at them")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest}: cannot create the data folder ({exc.strerror}); "
                        "choose another with --data-dir") from None
    for f in ds.files.values():
        name = f.name
        if find_file(dest, name):
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name + ".gz"
            log(f"downloading {url}")
            try:
                blob = fetch(url, timeout, max_bytes=f.size + f.size // 100 + 65536)
                data, _ = gunzip_idx(blob, url, max_size=f.size)
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
            if file_state(data, name, ds, gz_blob=blob) != "ok":
                what = "MD5 of the .gz" if f.sha256 is None else "SHA-256"
                errors.append(f"{url}: contents do not match the standard {ds.title} file ({what})")
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
    dataset: str = "mnist"


def load_split(folder: Path, kind: str, verify: bool, dataset="mnist") -> tuple[np.ndarray, np.ndarray]:
    """(images (N, H, W) uint8, labels (N,)) of ``kind`` "train" or "t10k".

    Each file is first checked as IDX (magic, type code, dimensions, length:
    these errors say what exactly is wrong), then, when ``verify``, against
    the data set's published checksums; then the pair is checked together,
    and against the data set's sample shape and number of classes."""
    ds = _ds(dataset)
    roles = ("train_images", "train_labels") if kind == "train" else ("test_images", "test_labels")
    arrays = []
    for role in roles:
        name = ds.file(role).name
        path = find_file(folder, name)
        if path is None:
            raise DataError(f"{folder}: no {name} file; put the four {ds.title} files there "
                            f"or run 'numpynets data --download --dataset {ds.name}'")
        # verified files must have the standard size: decompress no further
        data, cut = read_idx_bytes(path, ds.file(role).size if verify else None)
        arr = parse_idx(data, str(path), cut)
        if verify:
            check_bytes(data, name, path, ds, gz_blob=gz_blob_of(path) if ds.file(role).gz_md5 else None)
        arrays.append((arr, path))
    (images, ipath), (labels, lpath) = arrays
    H, W = ds.sample_shape
    if images.ndim != 3 or images.shape[1:] != (H, W) or images.dtype != np.uint8:
        raise DataError(f"{ipath}: expected {H}x{W} uint8 images (N, {H}, {W}) for {ds.title}, got "
                        f"{images.dtype} {images.shape}; put a {ds.title}-format images file there")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{lpath}: expected integer labels (N,), got {labels.dtype} {labels.shape}; "
                        f"put a {ds.title}-format labels file there")
    if len(images) != len(labels):
        raise DataError(f"{ipath} holds {len(images):,} images but {lpath} holds {len(labels):,} labels; "
                        "the files do not belong together: put matching images and labels files there")
    k = len(ds.classes)
    if labels.size and (labels.min() < 0 or labels.max() > k - 1):
        bad = labels.max() if labels.max() > k - 1 else labels.min()
        kind_ = "a digit 0-9" if ds.digits else f"a {ds.title} class 0-{k - 1}"
        raise DataError(f"{lpath}: label {bad} is not {kind_}; is it the right labels file?")
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


def locate(data_dir=None, download_missing: bool = True, log=print, dataset="mnist") -> Path:
    """The data set's folder in the lookup order, downloading into the user
    cache when none holds the files (and no ``data_dir`` was named)."""
    ds = _ds(dataset)
    folder = find_dataset(ds, data_dir)
    flag = "" if ds.name == "mnist" else f" --dataset {ds.name}"
    if folder is None:
        if data_dir:
            inside = "" if ds.legacy_folders else f" or in {Path(data_dir) / ds.subfolder}"
            raise DataError(f"{data_dir}: {ds.title} files not found there{inside} (need "
                            f"{', '.join(f.name for f in ds.files.values())}, gzipped or not); fix --data-dir, "
                            f"or fetch them with 'numpynets data --download{flag} --data-dir {data_dir}'")
        if not download_missing:
            raise DataError(f"{ds.title} not found in " + ", ".join(str(d) for d in dataset_folders(ds))
                            + f"; run 'numpynets data --download{flag}' or pass --data-dir")
        folder = download(log=log, dataset=ds)
    return Path(folder)


def load_test(dataset="mnist", data_dir=None, verify: bool = True, download_missing: bool = True,
              log=print) -> Split:
    """Only the test images (for evaluate, predict-like tools): the 47 MB
    training file is not read."""
    x, y = load_split(locate(data_dir, download_missing, log, dataset), "t10k", verify, dataset)
    return Split(to_float(x), y.astype(np.int64))


def load_mnist_test(data_dir=None, verify: bool = True, download_missing: bool = True, log=print) -> Split:
    """:func:`load_test` of MNIST."""
    return load_test("mnist", data_dir, verify, download_missing, log)


def load_dataset(dataset="mnist", data_dir=None, val_fraction: float = 0.1, limit: int | None = None,
                 verify: bool = True, download_missing: bool = True, log=print) -> MNIST:
    """Load a registered image data set; the validation set is the *last*
    ``val_fraction`` of the training file (the original's split: 54,000 /
    6,000). ``limit`` keeps the first ``limit`` images of the training file
    (split the same way); the test set is always whole. Pixels are float32
    in [0, 1], labels int64.

    When no folder in the lookup order holds the files (and no ``data_dir``
    was named), they are downloaded into the user cache."""
    ds = _ds(dataset)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float, np.floating)) \
            or not 0 <= val_fraction < 1:
        raise ConfigError(f"validation split must be in [0, 1), got {val_fraction}; "
                          "e.g. --val-split 0.1 holds out the last 10% of the training file")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise ConfigError(f"--limit must be a whole number >= 1, got {limit}")
    folder = locate(data_dir, download_missing, log, ds)
    xtr, ytr = load_split(folder, "train", verify, ds)
    xte, yte = load_split(folder, "t10k", verify, ds)
    if limit is not None:
        xtr, ytr = xtr[:limit], ytr[:limit]
    n_train, n_val = split_sizes(len(ytr), val_fraction)
    if n_train <= 0:
        raise ConfigError(f"no training images left after the validation split ({len(ytr)} images, "
                          f"split {val_fraction}); use a smaller --val-split or a larger --limit")
    x, xt = to_float(xtr), to_float(xte)                       # (N, 28, 28) float32
    y, yt = ytr.astype(np.int64), yte.astype(np.int64)         # (N,) int64
    return MNIST(train=Split(x[:n_train], y[:n_train]), val=Split(x[n_train:], y[n_train:]),
                 test=Split(xt, yt), folder=Path(folder), dataset=ds.name)


def load_mnist(data_dir=None, val_fraction: float = 0.1, limit: int | None = None,
               verify: bool = True, download_missing: bool = True, log=print) -> MNIST:
    """:func:`load_dataset` of MNIST."""
    return load_dataset("mnist", data_dir, val_fraction, limit, verify, download_missing, log)
