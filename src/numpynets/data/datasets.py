"""The data sets numpynets knows: one registry, one entry per data set.

Each entry holds what every command needs to find, check and explain a
data set: its name (``--dataset``), the four IDX files (both namings are
accepted: ``train-images-idx3-ubyte`` and the original project's
``train-images.idx3-ubyte``, gzipped or not), the SHA-256 and size of each
file's decompressed contents where they are known, the MD5 of each
published ``.gz`` file as its makers publish it, the mirrors in the order
they are tried, the shape of one sample, the class names and a line of
description.

Checksums, and where they come from:

* MNIST: SHA-256 of the decompressed files, computed from the real files
  (``../shared/mnist``); the MD5s of the ``.gz`` files are the ones
  torchvision and others publish (our own copies are re-compressed, so
  only the decompressed SHA-256 can check them).
* Fashion-MNIST: zalando-research publishes the MD5 of each ``.gz`` file
  (github.com/zalandoresearch/fashion-mnist, README "Get the Data"); no
  checksum of the decompressed contents is published, so a download and a
  ``.gz`` file are checked by that MD5, and decompressed (or re-compressed)
  files only by size and shape.
* KMNIST: the same for ROIS-CODH's IDX files (github.com/rois-codh/kmnist,
  the MD5s torchvision uses).

Adding a data set of 28x28 images is one entry here (and its test); every
command reads the rest from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

ROLES = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class IdxFile:
    name: str                  # standard name, without .gz: "train-images-idx3-ubyte"
    size: int                  # bytes, decompressed
    sha256: str | None         # of the decompressed contents; None: not published
    gz_md5: str | None = None  # of the published .gz file, as its makers publish it


@dataclass(frozen=True)
class Dataset:
    name: str                            # what --dataset takes
    title: str                           # for people: "Fashion-MNIST"
    description: str
    files: dict                          # role (ROLES) -> IdxFile
    mirrors: tuple                       # base URLs, tried in order
    classes: tuple                       # class names, by label
    sample_shape: tuple = (28, 28)       # one image, (H, W)
    legacy_folders: bool = False         # also look in the search folders themselves (MNIST's old places)

    @property
    def subfolder(self) -> str:
        return self.name

    def file(self, role: str) -> IdxFile:
        return self.files[role]

    def class_name(self, label: int) -> str:
        return self.classes[label] if 0 <= label < len(self.classes) else str(label)

    @property
    def digits(self) -> bool:
        """Class names are the labels themselves (MNIST): nothing to add to "3"."""
        return all(name == str(i) for i, name in enumerate(self.classes))


def _files(sizes_and_sums: list[tuple]) -> dict:
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return {role: IdxFile(name, *entry) for role, name, entry in zip(ROLES, names, sizes_and_sums)}


# the sizes of a 60,000 / 10,000 split of 28x28 uint8 images (header + pixels) and labels
_SIZES = (47040016, 60008, 7840016, 10008)

DATASETS: dict[str, Dataset] = {}


def register_dataset(ds: Dataset) -> None:
    if set(ds.files) != set(ROLES):
        raise ValueError(f"data set {ds.name}: needs the files {ROLES}")
    DATASETS[ds.name] = ds


register_dataset(Dataset(
    name="mnist", title="MNIST",
    description="handwritten digits 0-9 (LeCun, Cortes, Burges), 60,000 training and 10,000 test images",
    files=_files([
        (_SIZES[0], "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        (_SIZES[1], "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", "d53e105ee54ea40749a09fcbcd1e9432"),
        (_SIZES[2], "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", "9fb629c4189551a2d022fa330f9573f3"),
        (_SIZES[3], "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/",
             "http://yann.lecun.com/exdb/mnist/"),
    classes=tuple(str(d) for d in range(10)),
    legacy_folders=True,
))

register_dataset(Dataset(
    name="fashion-mnist", title="Fashion-MNIST",
    description="Zalando's article images in 10 classes (Xiao, Rasul, Vollgraf 2017), a drop-in replacement for MNIST",
    files=_files([
        (_SIZES[0], None, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        (_SIZES[1], None, "25c81989df183df01b3e8a0aad5dffbe"),
        (_SIZES[2], None, "bef4ecab320f06d8554ea6380940ec79"),
        (_SIZES[3], None, "bb300cfdad3c16e7a12a480ee83cd310"),
    ]),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
             "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot"),
))

register_dataset(Dataset(
    name="kmnist", title="Kuzushiji-MNIST",
    description="cursive Japanese (Kuzushiji) hiragana, one per row of the syllabary, 10 classes "
                "(ROIS-CODH, Clanuwat et al. 2018)",
    files=_files([
        (_SIZES[0], None, "bdb82020997e1d708af4cf47b453dcf7"),
        (_SIZES[1], None, "e144d726b3acfaa3e44228e80efcd344"),
        (_SIZES[2], None, "5c965bf0a639b31b8f53240b1b52f4d7"),
        (_SIZES[3], None, "7320c461ea6c1c855c0b718fb2a4b134"),
    ]),
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
             "https://storage.googleapis.com/kuzushiji-mnist/"),
    # the hiragana お き す つ な は ま や れ を, romanised (fonts for the window and the plots need no kana)
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
))


def get_dataset(name: str) -> Dataset:
    """The registry entry, or a one-line error listing the known names."""
    if name not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def class_names(dataset: str | None, n: int) -> list[str]:
    """Names of ``n`` classes of ``dataset`` (labels as text when it is not a known image data set)."""
    ds = DATASETS.get(dataset or "")
    if ds is None or len(ds.classes) != n:
        return [str(i) for i in range(n)]
    return list(ds.classes)
