"""``numpynets serve``: the digit recognizer as a web page, and its JSON API.

Routes::

    GET  /                 the page (static files from numpynets/apps/web/)
    GET  /<file>           its script and style sheet; nothing else, no listing
    POST /api/predict      {"pixels"|"image"|"strokes": ...} -> {"prediction", "probabilities", "model", "input"}
    GET  /api/models       the models the server can switch to, and the current one
    GET  /api/model        the current model: name, file, test accuracy
    POST /api/model        {"id": ...} switches to a listed model

The server is the standard library's :class:`http.server.ThreadingHTTPServer`:
no dependency to install, and this page needs nothing a framework adds (a
handful of fixed routes, small JSON bodies). One thread per connection keeps
a slow client from blocking the others; the model itself is not thread-safe
(its layers keep their last input for a backward pass, and the convolution
reuses buffers), so predictions run one at a time under a lock, while
request parsing and the MNIST preparation of drawings run in parallel.

Every request gets an answer: errors are JSON ``{"error": "..."}`` with a
4xx status (5xx only for a bug, still without a traceback), and the
server keeps serving.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from ..errors import NumpynetsError
from ..jsonfile import read_json
from .recognizer import Recognizer, describe_run_model, run_models
from .web_requests import MAX_BODY, BadRequest, parse_predict, parse_switch

STATIC_DIR = Path(__file__).resolve().parent / "web"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml",
                 ".ico": "image/x-icon"}
DRAIN_LIMIT = 8 << 20                             # bodies up to 8 MiB are read (and dropped) before a 413
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
# the page loads nothing from elsewhere (offline, no CDN); the browser enforces it too
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff",
                    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
                    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def static_files(folder: Path = STATIC_DIR) -> dict[str, Path]:
    """The files the server may send: the plain files directly in ``folder``
    with a known type, by name. Requests are looked up here, never joined
    onto a path, so nothing outside the folder can be reached."""
    if not folder.is_dir():
        return {}
    return {p.name: p for p in folder.iterdir()
            if p.is_file() and SAFE_NAME.match(p.name) and p.suffix in CONTENT_TYPES}


class ModelChoice:
    """The current model and the ones the page can switch to."""

    def __init__(self, recognizer: Recognizer, runs_root="runs"):
        self.runs_root = runs_root
        self.first = recognizer.path
        self.current = recognizer
        self.lock = threading.Lock()              # one forward pass at a time (see the module docstring)

    def candidates(self) -> dict[str, Path]:
        """id -> model file: the model the server started with, then the runs found (newest first)."""
        found = {}
        for path in [self.first, *run_models(self.runs_root)]:
            if path is not None:
                found.setdefault(str(path), Path(path))
        return found

    def listing(self) -> dict:
        current = str(self.current.path)
        models = [{"id": key, "name": describe_run_model(path) if path.name == "model.safetensors" else str(path),
                   "current": key == current}
                  for key, path in self.candidates().items()]
        return {"models": models, "current": current}

    def switch(self, key: str) -> Recognizer:
        path = self.candidates().get(key)
        if path is None:
            raise BadRequest(404, f"no model {key!r} here; GET /api/models lists the ids")
        try:
            recognizer = Recognizer.load(path)     # outside the lock: loading takes a while
        except NumpynetsError as exc:
            raise BadRequest(400, f"cannot use that model: {exc}") from None
        with self.lock:
            self.current = recognizer
        return recognizer

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, Recognizer]:
        """(28, 28) float32 -> (10,) float64 probabilities, and the model that gave them."""
        with self.lock:
            rec = self.current
            return rec.probabilities(x[None])[0], rec              # (10,)


def model_info(rec: Recognizer) -> dict:
    acc = (rec.meta.get("metrics") or {}).get("test_accuracy")
    if not isinstance(acc, (int, float)) and rec.path is not None:    # a run's config.json records it too
        try:
            acc = (read_json(rec.path.parent / "config.json", "run config").get("result") or {}).get("test_accuracy")
        except (NumpynetsError, AttributeError):                   # strict: no NaN, no deep nesting
            acc = None
    return {"id": str(rec.path), "name": rec.model.name,
            "file": str(rec.path), "run": rec.path.parent.name if rec.path else None,
            "description": rec.meta.get("description"),
            "test_accuracy": float(acc) if isinstance(acc, (int, float)) else None,
            "parameters": int(rec.model.num_parameters())}


class Handler(BaseHTTPRequestHandler):
    server_version = "numpynets"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 20                                   # seconds a client may stall mid-request
    choice: ModelChoice                            # set by make_server on a subclass
    files: dict[str, Path]
    verbose = False

    # -- answers ----------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in SECURITY_HEADERS.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def send_error(self, code, message=None, explain=None):
        """Also what http.server itself calls (bad request line, unknown
        method, header too long): a JSON error instead of its HTML page."""
        self.close_connection = True
        if code == HTTPStatus.NOT_IMPLEMENTED:                # the base class's answer to PUT, DELETE, ...:
            code, message = 405, f"method {self.command} not allowed; use GET or POST"   # the client's error
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":   # no usable request line:
            self.request_version = "HTTP/1.0"                           # still send a status and headers
        self.send_json(code, {"error": message or phrase})

    def handle_expect_100(self):
        """``Expect: 100-continue`` (curl sends it for big bodies): refuse an
        oversized body before the client sends it."""
        length = self.headers.get("Content-Length", "")
        if length.strip().isdigit() and int(length) > MAX_BODY:
            self.close_connection = True
            self.send_json(413, {"error": f"the body is {int(length)} bytes; at most {MAX_BODY} (1 MiB)"})
            return False
        return super().handle_expect_100()

    def log_message(self, format, *args):         # noqa: A002 - the base class's name
        if self.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    # -- routing ------------------------------------------------------------
    def _path(self) -> str:
        path = unquote(urlsplit(self.path).path)
        if ".." in path.split("/") or "\\" in path or "\x00" in path:
            raise BadRequest(400, "paths outside the page's folder are refused")
        return path

    def _guard(self, fn) -> None:
        try:
            fn()
        except BadRequest as exc:
            self.send_json(exc.status, {"error": exc.message})
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:                   # noqa: BLE001 - a bug: answer, log one line, keep serving
            sys.stderr.write(f"numpynets serve: internal error on {self.command} {self.path!r}: "
                             f"{type(exc).__name__}: {exc}\n")
            self.close_connection = True
            self.send_json(500, {"error": "internal error; the server log says more"})

    def do_GET(self):
        self._guard(self._get)

    def do_HEAD(self):
        self._guard(self._get)

    def do_POST(self):
        self._guard(self._post)

    def _get(self):
        path = self._path()
        if path == "/api/models":
            return self.send_json(200, self.choice.listing())
        if path == "/api/model":
            return self.send_json(200, model_info(self.choice.current))
        if path.startswith("/api/"):
            raise BadRequest(404, f"no API route {path}; see GET /api/models, POST /api/predict")
        name = "index.html" if path == "/" else path[1:]
        file = self.files.get(name)
        if file is None:
            raise BadRequest(404, f"no such page: {path}")
        self._send(200, file.read_bytes(), CONTENT_TYPES[file.suffix])

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise BadRequest(411, "send the body with a Content-Length, not chunked")
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise BadRequest(411, "a POST needs a Content-Length header")
        if not length.strip().isdigit():
            self.close_connection = True
            raise BadRequest(400, f"bad Content-Length {length!r}")
        n = int(length)
        if n > MAX_BODY:
            self.close_connection = True           # the unread body must not be taken for the next request
            if n <= DRAIN_LIMIT:                   # read and drop it, so a client still sending sees the 413
                while n > 0:
                    chunk = self.rfile.read(min(n, 1 << 16))
                    if not chunk:
                        break
                    n -= len(chunk)
            raise BadRequest(413, f"the body is {length.strip()} bytes; at most {MAX_BODY} (1 MiB)")
        body = self.rfile.read(n)
        if len(body) != n:
            self.close_connection = True
            raise BadRequest(400, "the body is shorter than its Content-Length")
        return body

    def _post(self):
        path = self._path()
        if path == "/api/predict":
            kind, x = parse_predict(self._body())
            if x is None:                          # a blank drawing: nothing to predict
                rec = self.choice.current
                return self.send_json(200, {"prediction": None, "probabilities": None, "model": str(rec.path),
                                            "input": None})
            probs, rec = self.choice.predict(x)    # (10,)
            return self.send_json(200, {"prediction": int(probs.argmax()),
                                        "probabilities": [float(p) for p in probs],
                                        "model": str(rec.path),
                                        "input": [float(v) for v in x.ravel()]})
        if path == "/api/model":
            rec = self.choice.switch(parse_switch(self._body()))
            return self.send_json(200, model_info(rec))
        if path in ("/api/models",) or not path.startswith("/api/"):
            self._body()                           # read it, so the connection stays usable
            raise BadRequest(405, f"{path} takes GET, not POST")
        raise BadRequest(404, f"no API route {path}; see GET /api/models, POST /api/predict")


class Server(ThreadingHTTPServer):
    daemon_threads = True                          # Ctrl-C does not wait for idle keep-alive clients
    request_queue_size = 128                       # connections waiting to be accepted (the default is 5)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        sys.stderr.write(f"numpynets serve: connection from {client_address[0]} failed: "
                         f"{type(exc).__name__}: {exc}\n")


def make_server(recognizer: Recognizer, host: str = "127.0.0.1", port: int = 8000, runs_root="runs",
                verbose: bool = False) -> Server:
    """A bound server (not yet serving); a port in use is a one-line error."""
    files = static_files()
    if "index.html" not in files:
        raise NumpynetsError(f"the page's files are missing from {STATIC_DIR}; reinstall numpynets")
    handler = type("BoundHandler", (Handler,), {"choice": ModelChoice(recognizer, runs_root),
                                                "files": files, "verbose": verbose})
    try:
        return Server((host, port), handler)
    except OSError as exc:
        if exc.errno in (98, 48, 10048):           # EADDRINUSE on Linux, macOS, Windows
            raise NumpynetsError(f"port {port} is in use on {host}; stop the other server or choose "
                                 "another port with --port") from None
        raise NumpynetsError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                             "choose another --host or --port") from None


def url_of(server: Server) -> str:
    host, port = server.server_address[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}/"


def serve(model_file=None, host: str = "127.0.0.1", port: int = 8000, runs_root="runs",
          verbose: bool = False) -> int:
    """Load the model (errors before anything listens), bind, print the URL,
    serve until Ctrl-C."""
    from .recognizer import default_model

    path = Path(model_file) if model_file else default_model(runs_root)
    recognizer = Recognizer.load(path)
    server = make_server(recognizer, host, port, runs_root, verbose)
    info = model_info(recognizer)
    acc = f", {info['test_accuracy']:.2f}% test" if info["test_accuracy"] is not None else ""
    where = "" if host in ("127.0.0.1", "localhost", "::1") else f", listening on {host} (other machines can connect)"
    print(f"numpynets serve: {info['name']}{acc} ({path}) at {url_of(server)}  (Ctrl-C stops{where})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("numpynets serve: stopped", flush=True)
    finally:
        server.server_close()
    return 0
