"""A ``numpynets serve`` subprocess on a free localhost port, and small HTTP
helpers, for the server and browser tests."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
URL_LINE = re.compile(r"at (http://[\d.]+:(\d+)/)")


class ServerProcess:
    """``python -m numpynets serve ... --port 0`` in ``cwd``; ``url``/``port``
    are read from the line it prints."""

    def __init__(self, args, cwd, timeout: float = 60.0):
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "numpynets", "serve", *map(str, args), "--port", "0"],
                                     cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        self.first_line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.first_line = line
            m = URL_LINE.search(line)
            if m:
                self.url, self.port = m.group(1), int(m.group(2))
                return
        self.proc.kill()
        out, err = self.proc.communicate()
        raise AssertionError(f"the server did not start: {self.first_line!r} {out!r} {err!r}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


def request(port: int, method: str, path: str, body=None, headers=None, timeout: float = 30.0):
    """(status, parsed JSON or raw bytes, headers) of one request on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers or ({"Content-Type": "application/json"} if data else {}))
        r = conn.getresponse()
        raw = r.read()
        kind = r.getheader("Content-Type", "")
        return r.status, (json.loads(raw) if kind.startswith("application/json") else raw), dict(r.getheaders())
    finally:
        conn.close()
