"""``numpynets serve`` tested against the real program on localhost: the
page and its files, the JSON API (pixels, PNG data URLs, strokes prepared as
the Tk window prepares them), bad and hostile requests (each a 4xx JSON
error, never a traceback, the server still serving), a bounded load test,
model switching, and the command line's own errors and clean Ctrl-C."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from onnx_helpers import built
from PIL import Image
from web_helpers import ROOT, ServerProcess, request

from numpynets.apps.drawing import Drawing, strokes_from_image
from numpynets.apps.recognizer import Recognizer
from numpynets.apps.web_server import STATIC_DIR, make_server
from numpynets.data.images import load_image, mnist_like
from numpynets.io import save_model


def digits(n: int = 50) -> np.ndarray:
    """Real MNIST test digits when they are here (they are in CI), else a fixed pattern."""
    from conftest import mnist_dir

    folder = mnist_dir()
    if folder is not None:
        from numpynets.data.mnist import load_mnist_test

        return load_mnist_test(folder, log=lambda *a: None).x[:n]            # (n, 28, 28)
    if os.environ.get("CI"):
        pytest.fail("MNIST not found: CI needs ../shared/mnist or $NUMPYNETS_DATA")
    rng = np.random.default_rng(0)                                       # a local run without the data
    return rng.random((n, 28, 28), dtype=np.float32) * (rng.random((n, 28, 28)) > 0.8)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A working folder with runs/: a CNN (newest, with its test accuracy in
    config.json), an MLP and an XOR model; and the server started with no
    MODEL (so it picks the newest run)."""
    import time

    cwd = tmp_path_factory.mktemp("site")
    runs = cwd / "runs"
    paths = {}
    for i, (name, model) in enumerate([("xor-1", None), ("mlp-2", built("mlp")), ("cnn-3", built("cnn", seed=1))]):
        (runs / name).mkdir(parents=True)
        if model is None:
            from numpynets.models.registry import build
            from numpynets.models.xor import architecture

            model = build({"name": "xor", "dataset": "xor", **architecture()}, seed=0)
        path = runs / name / "model.safetensors"
        save_model(path, model, metrics={"test_accuracy": 90.0 + i})
        (runs / name / "config.json").write_text(json.dumps({"result": {"test_accuracy": 90.0 + i}}))
        t = time.time() - 100 + 10 * i                                   # cnn-3 is the newest
        os.utime(path, (t, t))
        paths[name] = path
    server = ServerProcess([], cwd)
    yield server, paths
    server.stop()


def post(site, body, path="/api/predict"):
    server, _ = site
    return request(server.port, "POST", path, body)


def raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are; return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def png_url(img: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# -- the page -------------------------------------------------------------------------

def test_the_page_and_its_files(site):
    server, _ = site
    status, html, headers = request(server.port, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    html = html.decode()
    for needle in ('<canvas id="pad"', 'id="prediction"', 'id="clear"', 'id="undo"', 'id="input"',
                   'id="models"', 'id="model-name"', 'id="model-accuracy"'):
        assert needle in html, needle
    js = request(server.port, "GET", "/app.js")[1].decode()
    assert "data-class" in js or "dataset.class" in js
    assert request(server.port, "GET", "/style.css")[0] == 200
    # works offline: no file the page is made of points anywhere but this server
    for f in STATIC_DIR.iterdir():
        text = f.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f.name
    assert "default-src 'self'" in headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/../pyproject.toml", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fsetup.py",
                                  "/apps/web/index.html", "/web_server.py", "/..", "/.%2e/", "/%5c..%5cx"])
def test_nothing_outside_the_page_folder(site, path):
    server, _ = site
    status, body, _ = request(server.port, "GET", path)
    assert status in (400, 404) and isinstance(body, dict) and "error" in body


def test_no_directory_listing_and_unknown_paths(site):
    server, _ = site
    for path in ("/static/", "/nope", "/api/nope", "/index.html/", "/web/"):
        status, body, _ = request(server.port, "GET", path)
        assert status == 404 and "error" in body, path


# -- the API ----------------------------------------------------------------------------

def test_models_list_and_current_model(site):
    server, paths = site
    status, listing, _ = request(server.port, "GET", "/api/models")
    assert status == 200
    ids = [m["id"] for m in listing["models"]]
    assert set(ids) == {str(p.relative_to(p.parents[2])) for p in paths.values()}
    assert listing["current"] == ids[0] and ids[0].endswith("cnn-3/model.safetensors")   # the newest run
    assert [m["current"] for m in listing["models"]].count(True) == 1
    status, info, _ = request(server.port, "GET", "/api/model")
    assert status == 200 and info["name"] == "cnn" and info["test_accuracy"] == 92.0


def reference(site, name="cnn-3") -> Recognizer:
    return Recognizer.load(site[1][name])


def test_predict_pixels_of_real_digits(site):
    rec = reference(site)
    for x in digits(5):
        status, r, _ = post(site, {"pixels": [float(v) for v in x.ravel()]})
        assert status == 200 and set(r) == {"prediction", "probabilities", "model", "input"}
        p = rec.probabilities(x[None])[0]                                # (10,)
        assert r["prediction"] == int(p.argmax())
        assert np.allclose(r["probabilities"], p, atol=1e-12, rtol=0)
        assert r["model"].endswith("cnn-3/model.safetensors")
        assert r["input"] == [float(v) for v in x.ravel()]              # pixels are used as they are


def test_predict_a_png_is_prepared_like_predict(site):
    rec = reference(site)
    big = np.kron(digits(1)[0], np.ones((7, 7), np.float32))[10:, 5:]   # off-centre, any size
    status, r, _ = post(site, {"image": png_url(big)})
    assert status == 200
    buf = io.BytesIO(base64.b64decode(png_url(big).split(",", 1)[1]))
    x = mnist_like(load_image(buf))                                      # numpynets predict's recipe
    assert np.array_equal(np.array(r["input"], np.float32).reshape(28, 28), x)
    assert np.allclose(r["probabilities"], rec.probabilities(x[None])[0], atol=1e-12, rtol=0)


def test_predict_strokes_gives_the_tk_windows_input(site):
    """The page sends strokes; the server paints them as numpynets draw does."""
    strokes = strokes_from_image(digits(1)[0])
    drawing = Drawing()
    for stroke in strokes:
        drawing.begin(*stroke[0])
        for p in stroke[1:]:
            drawing.extend(*p)
        drawing.end()
    want = reference(site).predict(drawing.array())                      # the Tk window's prediction
    status, r, _ = post(site, {"strokes": [[list(p) for p in s] for s in strokes]})
    assert status == 200
    assert np.array_equal(np.array(r["input"], np.float32).reshape(28, 28), want.x)
    assert r["prediction"] == want.digit
    assert np.allclose(r["probabilities"], want.probabilities, atol=1e-12, rtol=0)


def test_a_blank_drawing_predicts_nothing(site):
    for body in ({"strokes": []}, {"image": png_url(np.zeros((50, 50)))}):
        status, r, _ = post(site, body)
        assert status == 200 and r["prediction"] is None and r["probabilities"] is None


# -- bad and hostile requests ------------------------------------------------------------------

PIX = [0.0] * 784
TALL_PNG = Image.new("L", (5000, 1))


def _png_bytes(im):
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _bomb_png(side: int = 60000) -> bytes:
    """A tiny PNG whose header claims side x side pixels (a decompression bomb)."""
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    ihdr = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


BAD_BODIES = [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2, 3]", 400, "JSON object"),
    (b"\xff\xfe", 400, "UTF-8"),
    (b"", 400, "not valid JSON"),
    (json.dumps({"pixels": [0.5] * 783}).encode(), 400, "784"),
    (json.dumps({"pixels": [0.5] * 785}).encode(), 400, "784"),
    (json.dumps({"pixels": "0.5"}).encode(), 400, "list"),
    (json.dumps({"pixels": [True] * 784}).encode(), 400, "numbers"),
    (json.dumps({"pixels": ["0"] * 784}).encode(), 400, "numbers"),
    (json.dumps({"pixels": [2.0] * 784}).encode(), 400, "[0, 1]"),
    (json.dumps({"pixels": [-0.1] + PIX[1:]}).encode(), 400, "[0, 1]"),
    (b'{"pixels": [NaN' + b", 0" * 783 + b"]}", 400, "NaN"),
    (b'{"pixels": [1e999' + b", 0" * 783 + b"]}", 400, "[0, 1]"),
    (json.dumps({"pixels": PIX, "image": "x"}).encode(), 400, "exactly one"),
    (json.dumps({"pixel": PIX}).encode(), 400, "exactly one"),
    (json.dumps({}).encode(), 400, "exactly one"),
    (b"[" * 100000 + b"]" * 100000, 400, "JSON"),
    (json.dumps({"image": "data:image/jpeg;base64,AAAA"}).encode(), 400, "PNG data URL"),
    (json.dumps({"image": "data:image/png;base64,@@@"}).encode(), 400, "base64"),
    (json.dumps({"image": "data:image/png;base64," + base64.b64encode(b"GIF89a....").decode()}).encode(), 400, "PNG"),
    (json.dumps({"image": "data:image/png;base64," + base64.b64encode(_png_bytes(TALL_PNG)).decode()}).encode(),
     400, "at most 2048"),
    (json.dumps({"image": "data:image/png;base64," + base64.b64encode(_bomb_png()).decode()}).encode(), 400, "at most"),
    (json.dumps({"image": 7}).encode(), 400, "PNG data URL"),
    (json.dumps({"strokes": [[[1, 2, 3]]]}).encode(), 400, "[x, y]"),
    (json.dumps({"strokes": [[]]}).encode(), 400, "non-empty"),
    (json.dumps({"strokes": [[[0, 0]] * 20001]}).encode(), 400, "too many points"),
    (json.dumps({"strokes": "abc"}).encode(), 400, "list of strokes"),
    (b'{"strokes": [[[Infinity, 0]]]}', 400, "Infinity"),
]


@pytest.mark.parametrize("body,status,words", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_bad_predict_bodies_get_a_json_4xx(site, body, status, words):
    server, _ = site
    got, r, headers = request(server.port, "POST", "/api/predict", body, headers={"Content-Type": "application/json"})
    assert got == status and headers["Content-Type"] == "application/json"
    assert words in r["error"], r
    assert "Traceback" not in r["error"]


def test_a_body_over_one_megabyte_gets_413(site):
    server, _ = site
    body = json.dumps({"pixels": [0.123456789012345] * 784 * 100}).encode()   # ~1.4 MB, sent in full
    assert len(body) > 1 << 20
    status, r, _ = request(server.port, "POST", "/api/predict", body)
    assert status == 413 and "at most" in r["error"]
    # announced but never sent: answered at once, without waiting for the body
    reply = raw(server.port, b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413") and b'"error"' in reply
    reply = raw(server.port, b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n"
                             b"Expect: 100-continue\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413") and b"100 Continue" not in reply


@pytest.mark.parametrize("data,status", [
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\n\r\n", 411),
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411),
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n", 400),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"PUT /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
    (b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431),
])
def test_malformed_http_gets_a_json_error(site, data, status):
    server, _ = site
    reply = raw(server.port, data)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(status).encode(), reply[:200]
    assert b"Content-Type: application/json" in head
    assert "error" in json.loads(body) and b"Traceback" not in reply


def test_a_client_that_stalls_or_hangs_up_does_not_stop_the_server(site):
    server, _ = site
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"pix")  # then silence
    with socket.create_connection(("127.0.0.1", server.port)) as t:
        t.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    status, r, _ = post(site, {"pixels": PIX})                          # others are still served
    assert status == 200
    s.close()


def test_post_to_a_page_or_get_to_predict(site):
    server, _ = site
    assert request(server.port, "POST", "/", b"{}")[0] == 405
    assert request(server.port, "POST", "/api/models", b"{}")[0] == 405
    status, r, _ = request(server.port, "GET", "/api/predict")
    assert status == 404 and "POST /api/predict" in r["error"]


# -- switching models ------------------------------------------------------------------------------

def test_switching_models(site):
    server, paths = site
    mlp_id = next(m["id"] for m in request(server.port, "GET", "/api/models")[1]["models"] if "mlp-2" in m["id"])
    xor_id = mlp_id.replace("mlp-2", "xor-1")
    try:
        status, info, _ = post(site, {"id": mlp_id}, "/api/model")
        assert status == 200 and info["name"] == "mlp" and info["test_accuracy"] == 91.0
        x = digits(1)[0]
        status, r, _ = post(site, {"pixels": [float(v) for v in x.ravel()]})
        assert r["model"] == mlp_id
        assert np.allclose(r["probabilities"], reference(site, "mlp-2").probabilities(x[None])[0], atol=1e-12)
        status, r, _ = post(site, {"id": xor_id}, "/api/model")            # not a digit model
        assert status == 400 and "not an MNIST digit classifier" in r["error"]
        assert request(server.port, "GET", "/api/model")[1]["name"] == "mlp"   # unchanged
        for bad in ({"id": "/etc/passwd"}, {"id": "../pyproject.toml"}):   # only listed models, never a path
            assert post(site, bad, "/api/model")[0] == 404
        assert post(site, {"id": 3}, "/api/model")[0] == 400
        assert post(site, {"model": mlp_id}, "/api/model")[0] == 400
    finally:
        cnn_id = mlp_id.replace("mlp-2", "cnn-3")
        assert post(site, {"id": cnn_id}, "/api/model")[0] == 200


# -- load --------------------------------------------------------------------------------------------

def test_twenty_clients_times_twenty_five_requests(site):
    """20 parallel clients x 25 predictions of real digits: every answer
    right (the predictions run one at a time under a lock; a race would mix
    up inputs), and the server answers normally afterwards."""
    rec = reference(site)
    x = digits(50)                                                        # (50, 28, 28)
    want = rec.probabilities(x)                                           # (50, 10) in one batch
    bodies = [json.dumps({"pixels": [float(v) for v in img.ravel()]}).encode() for img in x]
    server, _ = site

    def client(c: int) -> list[tuple[int, int, list]]:
        out = []
        for i in range(25):
            k = (c * 25 + i) % 50
            status, r, _ = request(server.port, "POST", "/api/predict", bodies[k])
            out.append((k, status, r))
        return out

    with ThreadPoolExecutor(20) as pool:
        results = [r for rs in pool.map(client, range(20)) for r in rs]
    assert len(results) == 500
    for k, status, r in results:
        assert status == 200, r
        assert r["prediction"] == int(want[k].argmax())
        assert np.allclose(r["probabilities"], want[k], atol=1e-6, rtol=0)
    assert request(server.port, "GET", "/api/models")[0] == 200
    assert post(site, {"pixels": bodies and [float(v) for v in x[0].ravel()]})[1]["prediction"] == int(want[0].argmax())


# -- the command line -----------------------------------------------------------------------------------

def serve_cli(args, cwd, timeout=60):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "numpynets", "serve", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_ctrl_c_stops_cleanly(site, tmp_path):
    """Served from the original project's .bin file (any model file works), then Ctrl-C."""
    from numpynets.io.original_models import write_original

    _, paths = site
    write_original(tmp_path / "mnist_model.bin", Recognizer.load(paths["mlp-2"]).model)
    server = ServerProcess([tmp_path / "mnist_model.bin"], tmp_path)
    assert server.url.startswith("http://127.0.0.1:")
    info = request(server.port, "GET", "/api/model")[1]
    assert info["name"] == "mlp" and info["file"].endswith("mnist_model.bin")
    x = digits(1)[0]
    r = request(server.port, "POST", "/api/predict", {"pixels": [float(v) for v in x.ravel()]})[1]
    assert np.allclose(r["probabilities"], reference(site, "mlp-2").probabilities(x[None])[0], atol=1e-6)
    keepalive = socket.create_connection(("127.0.0.1", server.port))       # an idle client must not hold it up
    server.proc.send_signal(signal.SIGINT)
    out, err = server.proc.communicate(timeout=20)
    keepalive.close()
    assert server.proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_a_port_in_use_is_a_one_line_error(site, tmp_path):
    _, paths = site
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = serve_cli([paths["cnn-3"], "--port", port], tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"port {port} is in use" in r.stderr and "--port" in r.stderr and "Traceback" not in r.stderr


def test_an_unreadable_model_stops_before_the_server_starts(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_text("not a model")
    r = serve_cli([bad], tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and str(bad) in r.stderr, r.stderr
    assert "http://" not in r.stdout
    r = serve_cli([], tmp_path)                                          # no MODEL and no runs/
    assert r.returncode == 2 and "no trained model found" in r.stderr and "numpynets train" in r.stderr
    r = serve_cli([tmp_path / "bad.safetensors", "--port", "70000"], tmp_path)
    assert r.returncode == 2 and "--port" in r.stderr


def test_listens_on_localhost_unless_told(site):
    _, paths = site
    rec = Recognizer.load(paths["cnn-3"])
    server = make_server(rec, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
    server = make_server(rec, host="0.0.0.0", port=0)
    try:
        assert server.server_address[0] == "0.0.0.0"
    finally:
        server.server_close()


def test_random_bytes_never_bring_it_down(site):
    """Noise, half requests and random JSON: every reply is a 4xx JSON error
    (or nothing, for a request that never ends), and the server keeps serving."""
    server, _ = site
    rng = np.random.default_rng(7)
    blobs = [rng.bytes(int(rng.integers(1, 3000))) + b"\r\n\r\n" for _ in range(15)]
    blobs += [b"POST /api/predict HTTP/1.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(b) + b
              for b in (rng.bytes(200), b'{"pixels": {"a": 1}}', b'{"strokes": [[[1, 2]], 5]}', b'"x"', b"null",
                        b'{"image": "data:image/png;base64,' + base64.b64encode(rng.bytes(300)) + b'"}')]
    for blob in blobs:
        reply = raw(server.port, blob, timeout=25)
        if reply:
            status = int(reply.split(b" ", 2)[1])
            assert 400 <= status < 500 and b"Traceback" not in reply, reply[:300]
    assert post(site, {"pixels": PIX})[0] == 200
