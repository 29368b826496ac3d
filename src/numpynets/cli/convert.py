"""numpynets convert IN OUT [--dtype float64|float32] [--kind mlp|cnn|attention]"""

from __future__ import annotations

import os
from pathlib import Path

from ..rundir import RunDir


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert between numpynets files and the original project's .bin files",
        description="Convert a model file. OUT ending in .safetensors gets our native file; any other OUT "
        "(mnist_model.bin, mnist_cnn_model_best.bin, ...) gets the original project's raw layout for the "
        "model (MLP, CNN or attention). IN can be either kind; the layout of an original file is found "
        "from its header and size.")
    p.add_argument("input", metavar="IN", help="model file (.safetensors, an original .bin, or a run folder)")
    p.add_argument("output", metavar="OUT", help="file to write (never IN itself)")
    p.add_argument("--dtype", choices=("float64", "float32"),
                   help="element type of an original MLP file: float64 (default; what the original's "
                   "digit_recognizer.py reads) or float32 (what its Rust trainer writes). CNN and attention "
                   "files are always float32")
    p.add_argument("--kind", choices=("mlp", "cnn", "attention"),
                   help="which original layout IN holds or OUT gets, when it cannot be told")
    p.add_argument("--d-model", type=int, metavar="D", help="reading an attention .bin: its width D")
    p.add_argument("--ff-dim", type=int, metavar="F", help="reading an attention .bin: its feed-forward width F")
    p.set_defaults(func=run)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def run(args) -> int:
    import numpy as np

    from ..errors import ConfigError, ModelFileError
    from ..io import load_model
    from ..io.native import save_model
    from ..io.original import looks_like_safetensors
    from ..io.original_models import read_original, write_original

    src, dst = Path(args.input), Path(args.output)
    if not src.exists():
        raise ModelFileError(f"{src}: no such model file")
    if _same_file(src, dst) or (src.is_dir() and _same_file(RunDir(src).model, dst)):
        raise ConfigError(f"{dst}: is the input file; choose another output path (convert never overwrites IN)")
    if dst.is_dir():
        raise ConfigError(f"{dst}: is a folder; give the output file's name")
    native_out = dst.suffix == ".safetensors"
    if native_out and args.dtype == "float64":
        raise ConfigError("--dtype float64: numpynets files hold float32; --dtype applies to original .bin files")
    original_in = src.is_file() and src.suffix != ".safetensors" and not looks_like_safetensors(src)
    if original_in:
        # an original-to-original conversion keeps every bit of a float64 file
        model, meta = read_original(src, kind=args.kind, dtype=np.float32 if native_out else np.float64,
                                    d_model=args.d_model, ff_dim=args.ff_dim)
        print(f"read {src}: {meta['description']}")
    else:
        if args.d_model is not None or args.ff_dim is not None:
            raise ConfigError("--d-model/--ff-dim describe an original attention .bin input; IN is a numpynets file")
        model, meta = load_model(src)
        print(f"read {src}: numpynets {model.name} ({model.num_parameters():,d} parameters)")
    if native_out:
        save_model(dst, model, meta.get("recipe") or {},
                   {**(meta.get("metrics") or {}), "converted_from": f"{src.name} ({meta.get('description', 'numpynets')})"})
        print(f"wrote {dst}: numpynets file ({model.num_parameters():,d} parameters)")
    else:
        kind = args.kind if not original_in else None
        layout = write_original(dst, model, kind=kind, element_type=args.dtype)
        print(f"wrote {dst}: {layout.describe()}, {layout.nbytes:,d} bytes")
        dataset = model.dataset
        if dataset != "mnist":                 # the original format has no place for it
            print(f"note: the original format does not record the data set; this model was trained on {dataset} "
                  "(converting it back gives an MNIST model file)")
    return 0
