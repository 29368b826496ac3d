"""The long fuzz run and the hostile-file memory figures (issue 13, part 4).

    PYTHONPATH=src python benchmarks/fuzz_long.py [--examples 3000] [--skip-fuzz] [--skip-memory]

1. Runs ``tests/test_fuzz_parsers.py`` with ``--examples`` examples per
   property and random (not derandomized) inputs, and prints how many
   examples each parser ran and whether anything escaped. CI runs the same
   module with 60 derandomized examples per property.
2. Writes one hostile file per parser and loads each in a fresh subprocess,
   printing the peak resident memory (``ru_maxrss``) of the load beyond the
   interpreter with numpynets imported, and the error it gave.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_fuzz(examples: int) -> int:
    report = Path(tempfile.mkdtemp()) / "ran.json"
    env = dict(os.environ, NUMPYNETS_FUZZ_EXAMPLES=str(examples), NUMPYNETS_FUZZ_REPORT=str(report),
               PYTHONPATH=str(ROOT / "src"))
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(ROOT / "tests" / "test_fuzz_parsers.py")], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    seconds = time.perf_counter() - t
    print(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-2000:])
    if r.returncode:
        print(r.stdout[-6000:])
    ran = json.loads(report.read_text()) if report.exists() else {}
    print(f"\nfuzz: {examples} examples per property, random inputs, {seconds:.0f} s")
    print(f"  {'parser':<22s} {'examples':>9s}")
    for name, n in sorted(ran.items()):
        print(f"  {name:<22s} {n:>9,d}")
    return r.returncode


# -- hostile files ------------------------------------------------------------------

def _model_file(path: Path, arch_edit=None, meta_edit=None) -> None:
    """The tests' real-but-edited model file (tests/test_hostile_inputs.py)."""
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
    from test_hostile_inputs import tiny_model_file

    tiny_model_file(path, arch_edit, meta_edit)


def hostile_files(d: Path) -> list[tuple[str, Path, str]]:
    """(description, file, Python expression loading ``path``)."""
    out = []
    bomb = d / "bomb-idx1-ubyte.gz"
    head = gzip.compress(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 2**32 - 1), mtime=0)
    bomb.write_bytes(head + gzip.compress(bytes(1 << 20), 9, mtime=0) * 2048)    # 2 GiB of zeros
    out.append(("gzip IDX: 2^32-1 items claimed, 2 GiB of zeros", bomb,
                "from numpynets.data.idx import read_idx; read_idx(path)"))

    def huge(arch):
        arch["layers"][0]["out_features"] = arch["layers"][2]["in_features"] = 1_270_000   # ~10^9 weights
    _model_file(d / "huge.safetensors", huge)
    out.append(("model file: 10^9 parameters described, 12 KB present", d / "huge.safetensors",
                "from numpynets.io import load_model; load_model(path)"))
    hl = d / "header-length.safetensors"
    hl.write_bytes(struct.pack("<Q", 2**63) + b"{}" * 10)
    out.append(("model file: header length 2^63", hl, "from numpynets.io import load_model; load_model(path)"))
    _model_file(d / "deep-meta.safetensors", meta_edit=lambda m: m.update(architecture="[" * 100_000 + "]" * 100_000))
    out.append(("model file: metadata architecture nested 100,000 deep", d / "deep-meta.safetensors",
                "from numpynets.io import load_model; load_model(path)"))
    deep = d / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    out.append(("architecture JSON nested 100,000 deep", deep,
                "from numpynets.models.registry import load_architecture_file; load_architecture_file(path)"))
    sched = d / "sched.json"
    sched.write_text('{"scheduler_type": "exponential", "decay_rate": 1' + "0" * 400 + "}")
    out.append(("schedule JSON: 400-digit decay_rate", sched,
                "from numpynets.optim.schedules import load_schedule_config; load_schedule_config(path)"))
    binf = d / "mnist_model.bin"
    binf.write_bytes(struct.pack("<3i", 2**24, 2**24, 2**24) + bytes(1000))
    out.append((".bin MLP header 2^24-2^24-2^24 (10^15 values)", binf,
                "from numpynets.io import load_model; load_model(path)"))
    log = d / "training_loss_c.txt"
    log.write_text("1,0.5,10\n1e308,0.4,10\n")
    out.append(("original log: epoch 1e308", log,
                "from numpynets.apps.run_summary import load_run; load_run(path)"))
    from PIL import Image

    png = d / "big.png"
    Image.new("1", (10_000, 10_000), 0).save(png)
    out.append(("PNG of 100 M pixels (Pillow only warns)", png,
                "from numpynets.data.images import load_image; load_image(path)"))
    import numpy as np

    from numpynets.data.idx import write_idx

    control = d / "control-idx3-ubyte"
    write_idx(control, np.zeros((25_000, 28, 28), np.uint8))
    out.append(("control: a valid 19.6 MB IDX file (it must show)", control,
                "from numpynets.data.idx import read_idx; read_idx(path)"))
    return out


def _limit(mb: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (mb << 20, resource.getrlimit(resource.RLIMIT_AS)[1]))


PROBE = r"""
import resource, sys, json
from pathlib import Path
import numpynets, numpynets.io, numpynets.data.idx, numpynets.models.registry, numpynets.apps.run_summary
import numpynets.data.images, numpynets.optim.schedules, PIL.Image
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
path = Path(sys.argv[1])
err = None
try:
    exec(sys.argv[2])
except numpynets.errors.NumpynetsError as exc:
    err = f"{type(exc).__name__}: {exc}"
except BaseException as exc:
    err = f"ESCAPED {type(exc).__name__}: {exc}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kb": base, "peak_kb": peak, "error": err}))
"""


def run_memory(src: Path, limit_mb: int) -> None:
    d = Path(tempfile.mkdtemp(prefix="numpynets-hostile-"))
    print("\nhostile files: peak resident memory of the load (ru_maxrss, beyond numpynets imported)")
    for what, path, code in hostile_files(d):
        env = dict(os.environ, PYTHONPATH=str(src))
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", PROBE, str(path), code], env=env, capture_output=True,
                           text=True, timeout=600, preexec_fn=lambda: _limit(limit_mb))
        seconds = time.perf_counter() - t
        try:
            got = json.loads(r.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            print(f"  {what}: probe failed: {r.stderr[-400:]}")
            continue
        extra = (got["peak_kb"] - got["base_kb"]) / 1024
        size = path.stat().st_size
        err = (got["error"] or "loaded")
        err = err.replace(str(path), path.name)[:110]
        print(f"  {what:<55s} file {size / 1024:>9,.0f} KB  +{extra:6.1f} MB  {seconds:5.1f} s  {err}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=3000)
    ap.add_argument("--skip-fuzz", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--src", type=Path, default=ROOT / "src",
                    help="the source tree whose loaders are measured (an older checkout, for a before/after)")
    ap.add_argument("--limit-mb", type=int, default=6144, help="address-space limit of each probe (RLIMIT_AS)")
    args = ap.parse_args()
    rc = 0
    if not args.skip_fuzz:
        rc = run_fuzz(args.examples)
    if not args.skip_memory:
        run_memory(args.src, args.limit_mb)
    return rc


if __name__ == "__main__":
    sys.exit(main())
