"""The MNIST downloader against a local HTTP server (127.0.0.1, a random
port) serving small gzipped IDX files: success, a corrupt mirror, a mirror
whose response breaks off, every mirror failing; the ``numpynets data
--download`` command; and ``numpynets train`` with no data and no network."""

from __future__ import annotations

import gzip
import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fake_mnist import fake_files

import numpynets.data.mnist as mnist_mod
from numpynets.data.mnist import download, load_mnist
from numpynets.errors import DataError

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
TIMEOUT = 5.0


class Handler(http.server.BaseHTTPRequestHandler):
    """GET /MIRROR/NAME.gz -> the server's route for it: ("ok", body),
    ("cut", body): Content-Length of the whole body, half of it sent, then
    the connection closed; ("huge", None): claims a gigabyte. Else 404."""
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        self.server.requests.append(self.path)
        kind, body = self.server.routes.get(self.path, ("missing", None))
        if kind == "missing":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(10**9 if kind == "huge" else len(body)))
        self.end_headers()
        if kind == "ok":
            self.wfile.write(body)
        elif kind == "cut":
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.routes, srv.requests = {}, []
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(TIMEOUT)


@pytest.fixture
def fakes(monkeypatch):
    """Gzipped fake files, with the registry's MNIST entry patched to their
    SHA-256 and sizes (and no .gz MD5)."""
    blobs, table = fake_files()
    patch_registry(monkeypatch, "mnist", table)
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return blobs


def patch_registry(monkeypatch, name, table):
    """Give registry entry ``name`` the fake files' SHA-256 and sizes."""
    from dataclasses import replace

    from numpynets.data.datasets import DATASETS, IdxFile

    ds = DATASETS[name]
    files = {role: IdxFile(f.name, table[f.name][1], table[f.name][0], None) for role, f in ds.files.items()}
    monkeypatch.setitem(DATASETS, name, replace(ds, files=files))


def serve(srv, mirror, blobs, kind="ok", names=None):
    for name, blob in blobs.items():
        if names is None or name in names:
            srv.routes[f"/{mirror}/{name}.gz"] = (kind, blob)
    return f"{srv.base}/{mirror}/"


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def assert_complete(dest: Path, blobs):
    assert sorted(p.name for p in dest.iterdir()) == sorted(n + ".gz" for n in blobs)   # no .part files
    for name, blob in blobs.items():
        assert gzip.decompress((dest / (name + ".gz")).read_bytes()) == gzip.decompress(blob)


def test_success_files_verified_and_written(server, fakes, tmp_path):
    good = serve(server, "good", fakes)
    dest = tmp_path / "new" / "mnist"                            # created
    logs = []
    assert download(dest, mirrors=[good], timeout=TIMEOUT, log=logs.append) == dest
    assert_complete(dest, fakes)
    mask = os.umask(0)
    os.umask(mask)
    assert all((dest / (n + ".gz")).stat().st_mode & 0o777 == 0o666 & ~mask for n in fakes)   # not mkstemp's 0600
    assert len(logs) == 4 and all(line.startswith("downloading http://127.0.0.1:") for line in logs)
    mn = load_mnist(dest, val_fraction=0.1)                      # verifies against the patched table
    assert (len(mn.train), len(mn.val), len(mn.test)) == (54, 6, 20)
    # a second call finds everything and fetches nothing
    server.requests.clear()
    download(dest, mirrors=[good], timeout=TIMEOUT, log=logs.append)
    assert server.requests == []


def test_only_missing_files_are_fetched(server, fakes, tmp_path):
    good = serve(server, "good", fakes)
    dest = tmp_path / "d"
    dest.mkdir()
    have = "train-labels-idx1-ubyte"
    (dest / (have + ".gz")).write_bytes(fakes[have])
    download(dest, mirrors=[good], timeout=TIMEOUT, log=lambda s: None)
    assert sorted(server.requests) == sorted(f"/good/{n}.gz" for n in fakes if n != have)
    assert_complete(dest, fakes)


def test_corrupt_mirror_falls_through_to_the_next(server, fakes, tmp_path):
    bad_blobs, _ = fake_files(seed=99)                           # valid gzip + IDX, wrong contents
    bad = serve(server, "bad", bad_blobs)
    html = f"{server.base}/html/"
    for name in fakes:
        server.routes[f"/html/{name}.gz"] = ("ok", b"<html>Moved</html>")
    good = serve(server, "good", fakes)
    logs = []
    download(tmp_path, mirrors=[bad, html, good], timeout=TIMEOUT, log=logs.append)
    assert_complete(tmp_path, fakes)
    assert len(logs) == 12                                       # three mirrors tried for each file
    assert server.requests[:3] == [f"/{m}/train-images-idx3-ubyte.gz" for m in ("bad", "html", "good")]


def test_broken_off_response_leaves_no_partial_file(server, fakes, tmp_path):
    cut = serve(server, "cut", fakes, kind="cut")
    good = serve(server, "good", fakes)
    download(tmp_path / "a", mirrors=[cut, good], timeout=TIMEOUT, log=lambda s: None)
    assert_complete(tmp_path / "a", fakes)
    assert server.requests[:2] == ["/cut/train-images-idx3-ubyte.gz", "/good/train-images-idx3-ubyte.gz"]
    # only the breaking mirror: an error, and nothing that looks like a file
    dest = tmp_path / "b"
    with pytest.raises(DataError) as e:
        download(dest, mirrors=[cut], timeout=TIMEOUT, log=lambda s: None)
    assert "connection closed after" in str(e.value)
    assert list(dest.iterdir()) == []


def test_oversized_response_refused(server, fakes, tmp_path):
    huge = serve(server, "huge", fakes, kind="huge")
    good = serve(server, "good", fakes)
    download(tmp_path, mirrors=[huge, good], timeout=TIMEOUT, log=lambda s: None)
    assert_complete(tmp_path, fakes)
    with pytest.raises(DataError, match="too large"):
        download(tmp_path / "x", mirrors=[huge], timeout=TIMEOUT, log=lambda s: None)


def test_all_mirrors_failing_says_where_to_put_the_files(server, fakes, tmp_path):
    # the first file is fine everywhere; the second fails on every mirror
    first = ["train-images-idx3-ubyte"]
    mirrors = [serve(server, "m404", fakes, names=first),
               f"http://127.0.0.1:{closed_port()}/",
               serve(server, "cut", {**{n: fakes[n] for n in first},
                                     "train-labels-idx1-ubyte": fakes["train-labels-idx1-ubyte"]}),
               serve(server, "bad", fake_files(seed=5)[0])]
    server.routes["/cut/train-labels-idx1-ubyte.gz"] = ("cut", fakes["train-labels-idx1-ubyte"])
    dest = tmp_path / "cache"
    with pytest.raises(DataError) as e:
        download(dest, mirrors=mirrors, timeout=TIMEOUT, log=lambda s: None)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("could not download train-labels-idx1-ubyte (")
    assert "HTTP 404" in msg and "Connection refused" in msg and "connection closed after" in msg
    assert "SHA-256" in msg
    assert f"Put the four MNIST files (gzipped or not) in {dest} or ./data" in msg
    assert "--data-dir" in msg and "$NUMPYNETS_DATA" in msg
    # the file that did download is complete and verified; nothing else is there
    assert sorted(p.name for p in dest.iterdir()) == ["train-images-idx3-ubyte.gz"]


def test_failed_rename_leaves_nothing(server, fakes, tmp_path, monkeypatch):
    good = serve(server, "good", fakes)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mnist_mod.os, "replace", broken_replace)
    with pytest.raises(DataError, match="cannot write train-images-idx3-ubyte.gz"):
        download(tmp_path, mirrors=[good], timeout=TIMEOUT, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []


def test_mirrors_from_environment(monkeypatch):
    monkeypatch.setenv("NUMPYNETS_MIRRORS", "http://a/  http://b/x/")
    assert mnist_mod.mirrors_from_env() == ["http://a/", "http://b/x/"]
    monkeypatch.setenv("NUMPYNETS_MIRRORS", "  ")
    assert mnist_mod.mirrors_from_env() == list(mnist_mod.MIRRORS)
    assert [m.split("/")[2] for m in mnist_mod.MIRRORS] == [
        "ossci-datasets.s3.amazonaws.com", "storage.googleapis.com", "yann.lecun.com"]


def test_cli_data_download(server, fakes, tmp_path, monkeypatch, capsys):
    from numpynets.cli import main

    monkeypatch.setenv("NUMPYNETS_MIRRORS", f"{server.base}/nothing/ " + serve(server, "good", fakes))
    dest = tmp_path / "D"
    assert main(["data", "--data-dir", str(dest)]) == 2           # not there, no --download
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"numpynets data --download --data-dir {dest}" in err
    assert main(["data", "--download", "--data-dir", str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"MNIST found in {dest}" in out and "downloading" in out
    assert_complete(dest, fakes)
    assert main(["data", "--verify", "--data-dir", str(dest)]) == 0
    assert capsys.readouterr().out.count("SHA-256 ok") == 4


def test_train_offline_with_no_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS and k != "NUMPYNETS_DATA"}
    env.update(NUMPYNETS_MIRRORS=f"http://127.0.0.1:{closed_port()}/", HOME=str(tmp_path / "home"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), no_proxy="127.0.0.1")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    r = subprocess.run([sys.executable, "-m", "numpynets", "train", "mlp", "--threads", "1", "--no-progress"],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    cache = tmp_path / "cache" / "numpynets"
    assert lines[0].startswith("numpynets: error: could not download train-images-idx3-ubyte")
    assert "Connection refused" in lines[0]
    assert f"Put the four MNIST files (gzipped or not) in {cache} or ./data" in lines[0]
    assert list(cwd.iterdir()) == []                             # no run folder
    assert list(cache.iterdir()) == []                           # no partial download
