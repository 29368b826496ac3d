"""numpynets serve under the load test's shape: 20 parallel clients x 25
requests each, every request a prediction of a real MNIST test digit, on a
fresh connection. Reports requests per second and the p50/p99 latency, for
the two kinds of body the server takes most: "pixels" (the 28x28 input, as
scripts send it) and "strokes" (what the page sends while you draw: painted
and prepared the MNIST way on the server). Every answer is checked.

    NUMPYNETS_DATA=../shared/mnist python benchmarks/bench_serve.py runs/mlp-default/model.safetensors
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def start(model: str) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "numpynets", "serve", model, "--port", "0"], env=env,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"http://[\d.]+:(\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, int(m.group(1))


def one(port: int, body: bytes) -> tuple[float, dict]:
    t = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/api/predict", body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = json.loads(r.read())
    conn.close()
    if r.status != 200:
        raise SystemExit(f"HTTP {r.status}: {data}")
    return time.perf_counter() - t, data


def load(port: int, bodies: list[bytes], want: list[int], clients: int, per_client: int) -> dict:
    def client(c):
        out = []
        for i in range(per_client):
            k = (c * per_client + i) % len(bodies)
            dt, data = one(port, bodies[k])
            if data["prediction"] != want[k]:
                raise SystemExit(f"wrong answer for body {k}: {data['prediction']} != {want[k]}")
            out.append(dt)
        return out

    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        lat = np.array([d for ds in pool.map(client, range(clients)) for d in ds])
    wall = time.perf_counter() - t
    return {"requests": len(lat), "seconds": wall, "requests_per_s": len(lat) / wall,
            "p50_ms": 1000 * float(np.percentile(lat, 50)), "p99_ms": 1000 * float(np.percentile(lat, 99))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=25, help="per client")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from numpynets.apps.drawing import strokes_from_image
    from numpynets.apps.recognizer import Recognizer
    from numpynets.data.mnist import load_mnist_test

    x = load_mnist_test(log=lambda *a: None).x[:100]                             # (100, 28, 28)
    rec = Recognizer.load(args.model)
    pixels = [json.dumps({"pixels": [float(v) for v in img.ravel()]}).encode() for img in x]
    strokes = [json.dumps({"strokes": [[list(p) for p in s] for s in strokes_from_image(img)]}).encode() for img in x]
    proc, port = start(args.model)
    try:
        want_pixels = [int(p.argmax()) for p in rec.probabilities(x)]
        want_strokes = [one(port, b)[1]["prediction"] for b in strokes]             # checked for stability below
        print(f"| body | requests | requests/s | p50 | p99 |   ({args.clients} clients x {args.requests}, "
              f"{os.cpu_count()} cores)")
        print("| --- | --- | --- | --- | --- |")
        results = {}
        for name, bodies, want in (("pixels", pixels, want_pixels), ("strokes", strokes, want_strokes)):
            runs = [load(port, bodies, want, args.clients, args.requests) for _ in range(args.repeat)]
            best = max(runs, key=lambda r: r["requests_per_s"])
            results[name] = runs
            print(f"| {name} | {best['requests']} | {best['requests_per_s']:.0f} "
                  f"({min(r['requests_per_s'] for r in runs):.0f}-{max(r['requests_per_s'] for r in runs):.0f}) | "
                  f"{best['p50_ms']:.1f} ms | {best['p99_ms']:.1f} ms |")
        print(json.dumps(results))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
