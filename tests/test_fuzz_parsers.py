"""Issue 13, part 4: property-based fuzzing of every parser (hypothesis).

For each parser, from arbitrary bytes and from mutations of valid files:
the parser returns a valid object or raises the project's own error
(:class:`~numpynets.errors.NumpynetsError`). Nothing else escapes: no
MemoryError, RecursionError, OverflowError, TypeError, ValueError... A
hypothesis failure here is a crash found.

Memory is bounded: the whole module runs under ``RLIMIT_AS`` (the address
space in use when it starts plus :data:`HEADROOM`), so a parser that
allocates what a hostile header asks for fails with a MemoryError instead of
passing slowly.

Examples per test: ``$NUMPYNETS_FUZZ_EXAMPLES`` (default 60, the CI
setting: derandomized, so every CI run tries the same inputs; the whole
module stays under a minute on 2 cores). ``benchmarks/fuzz_long.py`` runs it
with thousands and random seeds. ``$NUMPYNETS_FUZZ_REPORT=FILE`` makes the
module write the number of examples each parser ran, as JSON.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import resource
import struct
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numpynets.data.idx import encode_idx, parse_idx, read_idx
from numpynets.errors import NumpynetsError

EXAMPLES = int(os.environ.get("NUMPYNETS_FUZZ_EXAMPLES", "60"))
LONG = "NUMPYNETS_FUZZ_EXAMPLES" in os.environ and EXAMPLES > 60
HEADROOM = 1536 << 20          # bytes of address space the parsers may use beyond the start

settings.register_profile(
    "numpynets-fuzz", max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
FUZZ = settings.get_profile("numpynets-fuzz")

RAN: Counter = Counter()        # examples run per parser (reported by benchmarks/fuzz_long.py)


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    """Run every example under an address-space limit, restored afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_bytes() + HEADROOM
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        report = os.environ.get("NUMPYNETS_FUZZ_REPORT")
        if report:
            Path(report).write_text(json.dumps(dict(RAN), indent=1, sort_keys=True))


def outcome(parser: str, fn):
    """Run ``fn``: its result, or ``None`` when it raised the project's own
    error; any other exception propagates (and fails the property)."""
    RAN[parser] += 1
    try:
        return fn()
    except NumpynetsError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and len(msg) < 2000, msg     # one line, not a dump
        return None


def scratch(data: bytes, name: str = "f") -> Path:
    d = Path(tempfile.mkdtemp(prefix="numpynets-fuzz-"))
    p = d / name
    p.write_bytes(data)
    return p


def cleanup(path: Path) -> None:
    for p in path.parent.iterdir():
        p.unlink()
    path.parent.rmdir()


# -- mutations of valid bytes --------------------------------------------------------

@st.composite
def mutated(draw, valid: bytes):
    """``valid`` with a few edits: bytes overwritten, a slice removed or
    duplicated, a truncation, a 4- or 8-byte field set to an extreme."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["set", "cut", "dup", "truncate", "field4", "field8", "append"]))
        n = len(data)
        if n == 0:
            data += draw(st.binary(max_size=16))
            continue
        i = draw(st.integers(0, n - 1))
        if kind == "set":
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[i:i + draw(st.integers(1, 64))]
        elif kind == "dup":
            data[i:i] = data[i:i + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[i:]
        elif kind == "field4":
            v = draw(st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**24 + 1, 784, 10]))
            data[i:i + 4] = struct.pack(draw(st.sampled_from([">I", "<I"])), v)
        elif kind == "field8":
            v = draw(st.sampled_from([0, 1, 2**63 - 1, 2**64 - 1, 2**32, n, n + 1, n - 9]))
            data[i:i + 8] = struct.pack("<Q", v % 2**64)
        else:
            data += draw(st.binary(max_size=64))
    return bytes(data)


# -- IDX, raw and gzipped ------------------------------------------------------------

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@st.composite
def valid_idx(draw) -> bytes:
    dtype = draw(st.sampled_from(IDX_DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=1, max_size=3)))
    arr = np.arange(math.prod(shape), dtype=np.int64).astype(dtype).reshape(shape)
    return encode_idx(arr)


def check_idx_result(arr):
    if arr is not None:
        assert isinstance(arr, np.ndarray) and arr.dtype.isnative


@FUZZ
@given(st.one_of(st.binary(max_size=300), valid_idx().flatmap(mutated)))
def test_idx_bytes(data):
    check_idx_result(outcome("idx raw", lambda: parse_idx(data, "fuzz")))


@FUZZ
@given(st.one_of(valid_idx().flatmap(mutated).map(lambda b: gzip.compress(b, mtime=0)),
                 valid_idx().map(lambda b: gzip.compress(b, mtime=0)).flatmap(mutated),
                 st.binary(max_size=200).map(lambda b: b"\x1f\x8b" + b)))
def test_idx_gzipped_files(data):
    path = scratch(data, "x.gz")
    try:
        check_idx_result(outcome("idx gzipped", lambda: read_idx(path)))
    finally:
        cleanup(path)


# -- native model files ----------------------------------------------------------------

def _model_bytes(arch: dict | None = None, meta_edit=None) -> bytes:
    from safetensors.numpy import save

    from numpynets.io.native import FORMAT, FORMAT_VERSION
    from numpynets.models.registry import build

    model = build(arch or {"input_shape": [6], "layers": [
        {"type": "linear", "in_features": 6, "out_features": 4}, {"type": "relu"},
        {"type": "linear", "in_features": 4, "out_features": 3}]}, seed=0)
    a = model.architecture()
    a.update(name="custom", dataset="mnist")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": json.dumps(a),
            "recipe": "{}", "metrics": "{}"}
    if meta_edit:
        meta_edit(meta)
    return save({n: np.ascontiguousarray(p) for n, p, _ in model.named_parameters()}, metadata=meta)


VALID_MODEL = _model_bytes()

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 64), st.integers(2**40, 2**70), st.just(10**400),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.sampled_from(["linear", "relu", "conv2d", "self_attention", "residual", "patchify", "layer_norm",
                     "position_embedding", "flatten", "maxpool2d", "mean_pool", "batchnorm", "dropout"]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def load_bytes_as_model(data: bytes):
    from numpynets.io import load_model

    path = scratch(data, "m.safetensors")
    try:
        got = outcome("native model file", lambda: load_model(path))
    finally:
        cleanup(path)
    if got is not None:
        model, meta = got
        assert model.num_parameters() >= 0 and isinstance(meta, dict)


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(VALID_MODEL),
                 st.integers(0, 2**64 - 1).map(lambda n: struct.pack("<Q", n) + VALID_MODEL[8:])))
def test_native_model_file_bytes_and_header_length(data):
    load_bytes_as_model(data)


def _header_json(data: bytes) -> str:
    n = int.from_bytes(data[:8], "little")
    return data[8:8 + n].decode()


@st.composite
def mutated_header_json(draw) -> bytes:
    """A valid file whose JSON header text has a number, a literal or a
    bracket replaced (the tensor offsets, shapes, dtypes are all in there)."""
    text = _header_json(VALID_MODEL)
    body = VALID_MODEL[8 + len(text.encode()):]
    i = draw(st.integers(0, len(text) - 1))
    j = min(len(text), i + draw(st.integers(0, 12)))
    repl = draw(st.sampled_from(["NaN", "Infinity", "-1", "1e400", "9" * 30, "[" * 3000, "null", '"F16"',
                                 '"I64"', "[999999999999,9]", "{}", "[]", "0", '"', "}", ","]))
    new = (text[:i] + repl + text[j:]).encode()
    return struct.pack("<Q", len(new)) + new + body


@FUZZ
@given(mutated_header_json())
def test_native_model_file_header_json(data):
    load_bytes_as_model(data)


@st.composite
def architectures(draw) -> dict:
    """Architecture-shaped JSON: mostly plausible layer lists with hostile
    field values, sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    layer = st.fixed_dictionaries({"type": JSON_SCALARS}, optional={
        k: JSON_VALUES for k in ("in_features", "out_features", "dim", "heads", "tokens", "patch", "eps",
                                  "kernel_size", "stride", "padding", "in_channels", "out_channels", "layers",
                                  "size", "p", "init", "bias")})
    arch = {"input_shape": draw(st.one_of(st.lists(st.one_of(st.integers(-2, 40), JSON_SCALARS), max_size=3),
                                          JSON_VALUES)),
            "layers": draw(st.one_of(st.lists(layer, max_size=4), JSON_VALUES))}
    for key in ("loss", "name", "dataset"):
        if draw(st.booleans()):
            arch[key] = draw(JSON_SCALARS)
    return arch


@FUZZ
@given(architectures())
def test_native_model_file_metadata_architecture(arch):
    def edit(meta):
        meta["architecture"] = json.dumps(arch)
    load_bytes_as_model(_model_bytes(meta_edit=edit))


# -- architecture and scheduler JSON files ---------------------------------------------------

@FUZZ
@given(st.one_of(architectures().map(json.dumps), st.text(max_size=200),
                 st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n),
                 st.sampled_from(['{"input_shape": [NaN], "layers": []}', '{"layers": [{"type": "linear", '
                                  '"in_features": Infinity, "out_features": 1}], "input_shape": [1]}'])))
def test_architecture_json(text):
    from numpynets.models.registry import build, load_architecture_file

    path = scratch(text.encode("utf-8", "surrogatepass"), "arch.json")
    try:
        arch = outcome("architecture JSON", lambda: load_architecture_file(path))
        if arch is not None:
            model = outcome("architecture JSON", lambda: build(arch, seed=0))
            if model is not None:
                assert model.num_parameters() >= 0
    finally:
        cleanup(path)


SCHEDULE_KEYS = ["scheduler_type", "kind", "step_size", "gamma", "decay_rate", "min_lr", "T_max", "t_max",
                 "warmup_epochs", "per", "activation_function"]


@st.composite
def schedules(draw):
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    d = draw(st.dictionaries(st.sampled_from(SCHEDULE_KEYS), JSON_SCALARS, max_size=5))
    if draw(st.booleans()):
        d["scheduler_type"] = draw(st.sampled_from(["step_decay", "exponential", "cosine_annealing",
                                                    "constant", "STEP", "nope"]))
    return d


@FUZZ
@given(st.one_of(schedules().map(json.dumps), st.text(max_size=120),
                 st.sampled_from(['{"scheduler_type": "constant", "warmup_epochs": Infinity}',
                                  '{"scheduler_type": "step_decay", "step_size": 1e-320}',
                                  '{"scheduler_type": "exponential", "decay_rate": 1' + "0" * 400 + "}"])),
       st.floats(0, 1e6), st.integers(1, 10**6))
def test_schedule_json(text, t, total):
    from numpynets.optim.schedules import load_schedule_config

    path = scratch(text.encode("utf-8", "surrogatepass"), "sched.json")
    try:
        sched = outcome("schedule JSON", lambda: load_schedule_config(path))
    finally:
        cleanup(path)
    if sched is not None:
        for per in ("epoch", "batch"):
            sched.per = per
            lr = sched.lr(0.1, min(t, total), total)
            assert lr >= 0 and not math.isnan(lr)


# -- the original project's .bin model files -------------------------------------------------

def _original_bytes(kind: str) -> bytes:
    from numpynets.io.original import attention_layout, cnn_layout, mlp_layout, pack

    layout = {"mlp": lambda: mlp_layout(5, 4, 3, "float32"),
              "cnn": lambda: cnn_layout(2, 1, 3, 6, 6, 18, 4),
              "attention": lambda: attention_layout(8, 16)}[kind]()
    tensors = {}
    for name, value in layout.segments:
        if name != "<i4":
            tensors[name] = np.linspace(-1, 1, math.prod(value), dtype=np.float32).reshape(value)
    return pack(layout, tensors)


VALID_BINS = [_original_bytes(k) for k in ("mlp", "cnn", "attention")]


@FUZZ
@given(st.one_of(st.binary(max_size=400), st.sampled_from(VALID_BINS).flatmap(mutated)),
       st.sampled_from([None, "mlp", "cnn", "attention"]))
def test_original_bin_files(data, kind):
    from numpynets.io.original_models import read_original

    path = scratch(data, "model.bin")
    try:
        got = outcome("original .bin", lambda: read_original(path, kind))
    finally:
        cleanup(path)
    if got is not None:
        assert got[0].num_parameters() > 0


# -- the original's log files (and ours) ----------------------------------------------------

VALID_LOGS = {
    "training_loss_adam.txt": "epoch,train_loss,train_time,val_loss,val_accuracy,learning_rate\n"
                              "1,0.5,1.2,0.4,90.1,0.001\n2,0.3,1.1,0.3,92.0,0.001\n",
    "training_loss_cnn.txt": "1,0.5,3.0,0.4,91.0,0.01\n2,0.4,3.1,0.35,92.0,0.01\n",
    "training_loss_attention.txt": "1,0.9,80.0,12.5\n2,0.6,85.0,12.1\n",
    "training_loss_c.txt": "1,0.5,10\n2,0.4,10\n",
    "log.csv": "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,epoch_seconds\n"
               "1,0.5,88,0.4,90,0.1,2.0\n",
}
LOG_NUMBERS = st.sampled_from(["1e308", "-1e308", "inf", "nan", "1e999", "0", "-1", "1.5", "9" * 400, "",
                               "0x10", "1_000", " 3 ", "1e-320"])


@st.composite
def mutated_log(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(VALID_LOGS)))
    text = VALID_LOGS[name]
    if draw(st.booleans()):                            # a number replaced by a hostile one
        fields = text.split(",")
        i = draw(st.integers(0, len(fields) - 1))
        line_end = "\n" if fields[i].endswith("\n") else ""
        fields[i] = draw(LOG_NUMBERS) + line_end
        data = ",".join(fields).encode()
    else:
        data = draw(mutated(text.encode()))
    return name, data


@FUZZ
@given(st.one_of(st.tuples(st.sampled_from(sorted(VALID_LOGS) + ["other.txt"]), st.binary(max_size=300)),
                 mutated_log()))
def test_log_files(named):
    from numpynets.apps.run_summary import format_seconds, load_run, summarize, summary_table

    name, data = named
    path = scratch(data, name)
    try:
        run = outcome("log file", lambda: load_run(path))
        if run is not None:                            # what plot does with it, short of drawing
            s = summarize(run)
            format_seconds(s["train_seconds"])
            summary_table([run])
    finally:
        cleanup(path)


# -- images --------------------------------------------------------------------------------

def _image_bytes(fmt: str, mode: str) -> bytes:
    from PIL import Image

    im = Image.new(mode, (9, 7))
    im.putpixel((3, 3), (255,) * len(mode) if mode in ("RGB", "RGBA") else 255)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


VALID_IMAGES = [_image_bytes(f, m) for f, m in
                [("PNG", "L"), ("PNG", "RGBA"), ("PNG", "P"), ("BMP", "RGB"), ("GIF", "L"), ("TIFF", "I;16"),
                 ("PNG", "1"), ("PPM", "RGB"), ("JPEG", "L")]]


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.sampled_from(VALID_IMAGES).flatmap(mutated)))
def test_images(data):
    from numpynets.data.images import load_image, mnist_like

    path = scratch(data, "digit.img")
    try:
        img = outcome("image", lambda: load_image(path))
    finally:
        cleanup(path)
    if img is not None:
        assert img.ndim == 2 and img.dtype == np.float32
        x = mnist_like(img)
        assert x is None or (x.shape == (28, 28) and np.isfinite(x).all())


# -- the strict JSON reader itself ---------------------------------------------------------

@FUZZ
@given(st.one_of(st.text(max_size=200), JSON_VALUES.map(json.dumps),
                 st.integers(1, 200_000).map(lambda n: "{\"a\":" * n + "1" + "}" * n)))
def test_strict_json(text):
    from numpynets.jsonfile import loads

    value = outcome("strict JSON", lambda: loads(text, "fuzz"))
    if value is not None:
        json.dumps(value, allow_nan=False)             # what it returns has no NaN or infinity
