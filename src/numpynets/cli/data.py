"""numpynets data [--download] [--verify]"""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="find, verify or download MNIST",
                       description="Show where MNIST is found (--data-dir, $NUMPYNETS_DATA, ./data, "
                       "the user cache); --verify checks the SHA-256 of every file; --download fetches "
                       "missing files from the public mirrors.")
    p.add_argument("--data-dir", metavar="DIR", help="folder to look in (and to download into)")
    p.add_argument("--download", action="store_true", help="download the files if they are not found")
    p.add_argument("--verify", action="store_true", help="check the SHA-256 of each file's contents")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.idx import parse_idx, read_idx_bytes
    from ..data.mnist import FILES, check_bytes, download, find_file, find_mnist, search_dirs
    from ..errors import DataError

    folder = find_mnist(args.data_dir)
    if folder is None:
        if not args.download:
            dirs = ", ".join(str(d) for d in search_dirs(args.data_dir))
            fetch = "numpynets data --download" + (f" --data-dir {args.data_dir}" if args.data_dir else "")
            raise DataError(f"MNIST not found in {dirs}; run '{fetch}' or put the four files in one of them")
        folder = download(args.data_dir)
    print(f"MNIST found in {folder}")
    for name in FILES:
        path = find_file(folder, name)
        status = ""
        if args.verify:
            data, cut = read_idx_bytes(path, FILES[name][1])     # the standard size bounds the work
            arr = parse_idx(data, str(path), cut)
            check_bytes(data, name, path)
            status = f"  {arr.shape}  SHA-256 ok"
        print(f"  {path.name}{status}")
    return 0
