"""numpynets data [--dataset NAME] [--download] [--verify] [--show-augment -o aug.png]"""

from __future__ import annotations


def add_parser(sub) -> None:
    from ..data.datasets import DATASETS

    p = sub.add_parser("data", help="find, verify or download the data sets; show the augmentation",
                       description="Show where a data set is found (--data-dir, $NUMPYNETS_DATA, ./data, "
                       "the user cache; each data set in its own subfolder, MNIST also where it always was); "
                       "--verify checks every known data set (or the one --dataset names): found or not, "
                       "where, and each file's checksum; --download fetches missing files from the public "
                       "mirrors; --show-augment draws training images beside augmented versions.")
    p.add_argument("--dataset", metavar="NAME", help=f"one of {', '.join(DATASETS)} (default: mnist; "
                   "with --verify alone: all of them)")
    p.add_argument("--data-dir", metavar="DIR", help="folder to look in (and to download into)")
    p.add_argument("--download", action="store_true", help="download the files if they are not found")
    p.add_argument("--verify", action="store_true", help="check each file's contents against the published "
                   "checksums (SHA-256 of the contents, or the makers' MD5 of the .gz)")
    a = p.add_argument_group("augmentation preview")
    a.add_argument("--show-augment", action="store_true",
                   help="draw training images (left column) beside augmented versions of them")
    a.add_argument("-o", "--output", metavar="FILE", help="where --show-augment writes (default aug.png)")
    a.add_argument("--images", type=int, default=8, metavar="N", help="--show-augment: rows (default 8)")
    a.add_argument("--versions", type=int, default=6, metavar="K", help="--show-augment: augmented versions "
                   "per image (default 6)")
    a.add_argument("--seed", type=int, default=0, help="--show-augment: the augmentation's seed (default 0)")
    from .train import AUGMENT_FLAGS

    for flag, key, metavar, help_ in AUGMENT_FLAGS:
        a.add_argument(flag, dest=f"augment_{key}", type=float, metavar=metavar, help=help_)
    p.add_argument("--no-verify", dest="no_verify", action="store_true",
                   help="--show-augment: skip the checksum check (your own IDX data of the same shape)")
    p.set_defaults(func=run)


def describe_state(f, data: bytes, state: str) -> str:
    """What was checked: the SHA-256 of the contents, the makers' MD5 of the .gz, or only the size."""
    import hashlib

    if state == "unverified":
        return "no published checksum of these contents (only of the makers' .gz): size and shape ok"
    return "SHA-256 ok" if f.sha256 and hashlib.sha256(data).hexdigest() == f.sha256 else "MD5 of the .gz ok"


def verify_folder(ds, folder) -> list[str]:
    """One line per file: name, shape, checksum state; raises DataError on the first bad file."""
    from ..data.idx import parse_idx, read_idx_bytes
    from ..data.mnist import check_bytes, find_file, gz_blob_of, load_split

    lines = []
    for f in ds.files.values():
        path = find_file(folder, f.name)
        data, cut = read_idx_bytes(path, f.size)                # the standard size bounds the work
        arr = parse_idx(data, str(path), cut)
        blob = gz_blob_of(path) if f.gz_md5 else None
        state = check_bytes(data, f.name, path, ds, gz_blob=blob)
        lines.append(f"  {path.name}  {arr.shape}  {describe_state(f, data, state)}")
    for kind in ("train", "t10k"):                      # shapes, label range, pairs
        load_split(folder, kind, verify=False, dataset=ds)
    return lines


def run(args) -> int:
    from ..data.datasets import get_dataset
    from ..data.mnist import dataset_folders, download, find_dataset, find_file
    from ..errors import DataError

    if args.show_augment:
        return show_augment(args)
    if args.verify and args.dataset is None and not args.download:
        return verify_all(args)
    ds = get_dataset(args.dataset or "mnist")
    flag = "" if ds.name == "mnist" else f" --dataset {ds.name}"
    folder = find_dataset(ds, args.data_dir)
    if folder is None:
        if not args.download:
            dirs = ", ".join(str(d) for d in dataset_folders(ds, args.data_dir))
            fetch = f"numpynets data --download{flag}" + (f" --data-dir {args.data_dir}" if args.data_dir else "")
            raise DataError(f"{ds.title} not found in {dirs}; run '{fetch}' or put the four files in one of them")
        folder = download(args.data_dir, dataset=ds)
    print(f"{ds.title} found in {folder}")
    if args.verify:
        for line in verify_folder(ds, folder):
            print(line)
    else:
        for f in ds.files.values():
            print(f"  {find_file(folder, f.name).name}")
    return 0


def verify_all(args) -> int:
    """Every known data set: found or not, where, each file's checksum state.
    Exit status 2 (one line on stderr) when a found data set has a bad file."""
    from ..data.datasets import DATASETS
    from ..data.mnist import dataset_folders, find_file
    from ..errors import DataError

    bad = []
    for ds in DATASETS.values():
        # each data set in its own subfolder (MNIST also in the folders themselves): a --data-dir
        # holding MNIST's files is not taken for every other data set too
        places = [d for d in dataset_folders(ds, args.data_dir) if ds.legacy_folders or d.name == ds.subfolder]
        folder = next((d for d in places if all(find_file(d, f.name) for f in ds.files.values())), None)
        if folder is None:
            flag = "" if ds.name == "mnist" else f" --dataset {ds.name}"
            print(f"{ds.title} ({ds.name}): not found (looked in {', '.join(str(d) for d in places)}); "
                  f"get it with 'numpynets data --download{flag}'")
            continue
        print(f"{ds.title} ({ds.name}) found in {folder}")
        try:
            for line in verify_folder(ds, folder):
                print(line)
        except DataError as exc:
            print(f"  FAILED: {exc}")
            bad.append(str(exc))
    if bad:
        raise DataError(bad[0] if len(bad) == 1 else f"{len(bad)} data sets failed verification; first: {bad[0]}")
    return 0


def show_augment(args) -> int:
    from ..apps.plots import require_matplotlib, save_figure
    from ..data.augment import AugmentConfig, Augmenter
    from ..data.datasets import get_dataset
    from ..data.mnist import load_test
    from ..errors import ConfigError
    from .train import AUGMENT_FLAGS

    require_matplotlib()
    if not 1 <= args.images <= 64 or not 1 <= args.versions <= 16:
        raise ConfigError(f"--images must be 1-64 and --versions 1-16, got {args.images} and {args.versions}")
    strengths = {key: getattr(args, f"augment_{key}") for _, key, _, _ in AUGMENT_FLAGS
                 if getattr(args, f"augment_{key}") is not None}
    cfg = AugmentConfig(**{**AugmentConfig().to_dict(), **strengths})          # absurd strengths: exit 2
    ds = get_dataset(args.dataset or "mnist")
    out = args.output or "aug.png"
    test = load_test(ds, args.data_dir, verify=not args.no_verify)             # small: 10,000 images
    x = test.x[:args.images]                                                    # (R, 28, 28)
    aug = Augmenter(cfg, args.seed)
    versions = [aug(x) for _ in range(args.versions)]                           # K x (R, 28, 28)
    fig = augment_figure(x, versions, [ds.class_name(int(c)) for c in test.y[:args.images]], cfg, ds.title)
    save_figure(fig, out)
    print(f"wrote {out}: {len(x)} {ds.title} test images, each with {args.versions} augmented versions "
          f"(shift {cfg.shift:g} px, rotate {cfg.rotate:g} deg, scale {cfg.scale:g}, shear {cfg.shear:g} deg, "
          f"elastic {cfg.elastic:g} px, seed {args.seed})")
    return 0


def augment_figure(x, versions, labels, cfg, title):
    from matplotlib.figure import Figure

    rows, cols = len(x), 1 + len(versions)
    fig = Figure(figsize=(1.1 * cols + 0.4, 1.1 * rows + 0.7), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.imshow(x[r] if c == 0 else versions[c - 1][r], cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(labels[r], fontsize=8)
                for side in ax.spines.values():
                    side.set_color("firebrick")
                    side.set_linewidth(2)
        if r == 0:
            axes[0][0].set_title("original", fontsize=8)
            for c in range(1, cols):
                axes[0][c].set_title(f"augmented {c}", fontsize=8)
    fig.suptitle(f"{title}: shift {cfg.shift:g} px, rotate {cfg.rotate:g} deg, scale {cfg.scale:g}, "
                 f"shear {cfg.shear:g} deg, elastic {cfg.elastic:g} px", fontsize=9)
    return fig
