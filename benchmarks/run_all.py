"""Every speed comparison of issue 16 in one run, written as a Markdown
table (benchmarks/results.md, also copied into the README between the
``benchmarks:start`` / ``benchmarks:end`` markers) and a plot of seconds
per epoch by model, ours against PyTorch (benchmarks/results.png).

    python benchmarks/run_all.py                        # everything (~10-15 min on a quiet 2-core machine)
    python benchmarks/run_all.py --only mlp,attention   # a subset: mlp attention cnn threads fast
    python benchmarks/run_all.py --quick                # fewer samples and repeats, a smoke run

Method. Every figure is a ratio measured within this one run, ours and the
reference alternating, with the same number of threads on both sides:

* attention, MLP, CNN: one shuffled pass of ``numpynets.train.fit.fit``
  (the code ``numpynets train`` runs) over the first ``--samples`` MNIST
  training images against the same model, optimizer, schedule and loop in
  PyTorch (``common.torch_pass``), extrapolated to 54,000 images per epoch;
  best of ``--repeats`` alternating repeats;
* MLP, GEMMs alone: the five GEMMs of one training step at the same shapes
  (64x784 @ 784x512, its weight gradient, and the three small ones), run
  for as many steps as the pass, timed between the passes;
* threads: the MLP's original recipe with ``--threads 1``, ``2`` and
  ``auto`` (started and re-checked during the pass as ``numpynets train``
  does it), ``--thread-rounds`` rounds of one pass each over
  ``--thread-samples`` images, the order rotating between rounds; medians
  and the worst round; first quiet, then with a helper process (the same
  one, asleep in the quiet condition) spinning on one core;
* fast CNN: ``numpynets train cnn --recipe fast`` and the default recipe
  on full MNIST (54,000 training images, 10,000 test), for each seed,
  alternating: training seconds and test accuracy.

PyTorch is a benchmark-only dependency (``pip install torch==2.13.0``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from common import gemm_peak_gflops, machine, torch_pass  # noqa: E402
from bench_cnn import torch_optimizer  # noqa: E402

EPOCH_SAMPLES = 54_000
SECTIONS = ("attention", "mlp", "cnn", "threads", "fast")
GOALS = {("attention", "default", 1): 0.8, ("attention", "original", 1): 0.8, ("mlp", "original", 1): 0.7}


# -- environment ---------------------------------------------------------------

def set_threads(n: int, torch=None) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    if torch is not None:
        torch.set_num_threads(n)


def blas_version() -> str:
    from threadpoolctl import threadpool_info

    libs = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(dict.fromkeys(libs)) or "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


_SPINNER = r"""
import select, sys
busy = False
while True:
    ready, _, _ = select.select([sys.stdin], [], [], 0 if busy else None)
    if ready:
        line = sys.stdin.readline()
        if not line or line.strip() == "stop":
            break
        busy = line.strip() == "busy"
    if busy:
        for _ in range(20000):
            pass
"""


class CoreLoad:
    """One helper process for the whole threads section, beside every
    condition: it sleeps (``quiet``) or keeps one core busy spinning
    (``busy``), so the two conditions differ only in that."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", _SPINNER], stdin=subprocess.PIPE, text=True)

    def set(self, busy: bool) -> None:
        self.proc.stdin.write("busy\n" if busy else "idle\n")
        self.proc.stdin.flush()
        time.sleep(0.5)                                         # let the scheduler and /proc/stat see it

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.write("stop\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- data and models -------------------------------------------------------------

def mnist():
    from numpynets.data.mnist import load_mnist

    return load_mnist(val_fraction=0.1, log=lambda *a: None)


def subset(split, n: int):
    from numpynets.data.mnist import Split

    return Split(split.x[:n], split.y[:n])


def ours_pass(model_name: str, recipe_name: str, data, seed: int) -> float:
    """Seconds of one fit pass (train_seconds: the steps only)."""
    from numpynets.models.registry import build, build_architecture, get_model, get_recipe
    from numpynets.train.fit import fit, seeds

    spec = get_model(model_name)
    full = get_recipe(spec, recipe_name)
    init_rng, shuffle_rng = seeds(seed)
    model = build(build_architecture(spec, dict(full.arch)), seed=init_rng)
    return fit(model, data, None, full.with_overrides(epochs=1), shuffle_rng, progress=False,
               log=lambda *a: None).train_seconds


def torch_mlp(torch, recipe):
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    for layer in m:
        if isinstance(layer, torch.nn.Linear):
            if recipe.arch.get("init") == "he":
                torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            else:
                torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    return m


def torch_pass_for(torch, model_name: str, recipe_name: str, data, seed: int) -> float:
    from numpynets.models.registry import get_model, get_recipe

    full = get_recipe(get_model(model_name), recipe_name)
    recipe = full.with_overrides(epochs=1)
    torch.manual_seed(seed)
    if model_name == "attention":
        from bench_attention import torch_model

        model = torch_model(torch, full.arch)
        X = torch.from_numpy(data.x)
    elif model_name == "cnn":
        from bench_cnn import torch_cnn

        model = torch_cnn(torch, int(full.arch.get("channels", 8)))
        X = torch.from_numpy(data.x).unsqueeze(1)
    else:
        model = torch_mlp(torch, full)
        X = torch.from_numpy(data.x)
    return torch_pass(torch, model, torch_optimizer(torch, model, recipe), recipe, X, torch.from_numpy(data.y), seed)


def compare(torch, model_name: str, recipe_name: str, data, threads: int, repeats: int) -> dict:
    set_threads(threads, torch)
    ours, theirs = [], []
    for r in range(repeats):                                    # alternate: load changes hit both
        ours.append(ours_pass(model_name, recipe_name, data, r))
        if torch is not None:
            theirs.append(torch_pass_for(torch, model_name, recipe_name, data, r))
    scale = EPOCH_SAMPLES / len(data)
    row = {"model": model_name, "recipe": recipe_name, "threads": threads, "samples": len(data),
           "ours_s_per_epoch": min(ours) * scale, "ours_all": [round(t * scale, 3) for t in ours]}
    if theirs:
        row.update(torch_s_per_epoch=min(theirs) * scale, torch_all=[round(t * scale, 3) for t in theirs],
                   ratio=min(ours) / min(theirs))
    return row


# -- MLP: the GEMMs alone ---------------------------------------------------------

def mlp_gemm_seconds(n: int, B: int, rng) -> float:
    """Seconds for the five GEMMs of ``ceil(n / B)`` MLP training steps at
    the loop's shapes, with the loop's output buffers (dW written in place)."""
    x = rng.random((B, 784), dtype=np.float32)
    W1 = rng.standard_normal((784, 512), dtype=np.float32) * 0.05
    W2 = rng.standard_normal((512, 10), dtype=np.float32) * 0.05
    gW1, gW2 = np.empty_like(W1), np.empty_like(W2)
    dy = rng.standard_normal((B, 10), dtype=np.float32)
    steps = -(-n // B)
    t0 = time.perf_counter()
    for _ in range(steps):
        h = x @ W1                                          # (B, 512)
        _ = h @ W2                                          # (B, 10)
        np.matmul(h.T, dy, out=gW2)                         # (512, 10)
        dh = dy @ W2.T                                      # (B, 512)
        np.matmul(x.T, dh, out=gW1)                         # (784, 512)
    return time.perf_counter() - t0


def mlp_gemm_share(data, repeats: int, peak: float) -> dict:
    """The original recipe's loop against its GEMMs alone, 1 thread."""
    from numpynets.models.registry import get_model, get_recipe

    set_threads(1)
    B = get_recipe(get_model("mlp"), "original").batch_size
    rng = np.random.default_rng(0)
    loops, gemms = [], []
    for r in range(repeats):
        loops.append(ours_pass("mlp", "original", data, r))
        gemms.append(mlp_gemm_seconds(len(data), B, rng))
    flops = 2 * (784 * 512 * 2 + 512 * 10 * 3) * len(data)
    loop, gemm = min(loops), min(gemms)
    return {"loop_s": loop, "gemm_s": gemm, "gemm_share": gemm / loop, "loop_gflops": flops / loop / 1e9,
            "gemm_gflops": flops / gemm / 1e9, "peak_gflops": peak, "loop_of_peak": flops / loop / 1e9 / peak}


# -- threads ------------------------------------------------------------------------

def mlp_original():
    from numpynets.models.registry import build, build_architecture, get_model, get_recipe
    from numpynets.train.fit import seeds

    spec = get_model("mlp")
    recipe = get_recipe(spec, "original")
    init_rng, shuffle_rng = seeds(0)
    return build(build_architecture(spec, dict(recipe.arch)), seed=init_rng), recipe.with_overrides(epochs=1), \
        shuffle_rng


def threads_pass(data, label: str) -> dict:
    """One pass of the MLP's original recipe with ``--threads 1``, ``2`` or
    ``auto``; auto as ``numpynets train`` does it (``auto_start``: the idle
    cores and a timed probe, then the ThreadTuner during the pass). Returns
    the training seconds, and for auto the count it started on, the count
    that ran the most steps, its switches and the seconds the start took."""
    from numpynets.runtime import blas_threads
    from numpynets.train.fit import fit
    from numpynets.train.threads import auto_start

    model, recipe, shuffle_rng = mlp_original()
    row, callbacks = {}, []
    if label == "auto":
        t0 = time.perf_counter()
        n, _, tuner = auto_start(model, data.x[:recipe.batch_size], data.y[:recipe.batch_size])
        row["choose_s"] = time.perf_counter() - t0
        row["start"] = n
        callbacks = [tuner] if tuner is not None else []
    else:
        n = int(label)
    with blas_threads(n):
        r = fit(model, data, None, recipe, shuffle_rng, progress=False, log=None, callbacks=callbacks)
    row["seconds"] = r.train_seconds
    if callbacks:
        used = callbacks[0].record()
        row.update(used=used["threads"], switches=len(used["switches"]), trials=used["trials"])
    return row


def thread_rows(data, rounds: int) -> list[dict]:
    """auto against 1 and 2 threads, quiet and with one core busy (the same
    helper process beside both). Each round runs the three labels back to
    back, in an order that rotates from round to round; the figures are the
    median and the worst over the rounds, and the spread of a fixed count
    between its best and worst round shows the measurement's noise."""
    labels = ("1", "2", "auto")
    load = CoreLoad()
    rows = []
    try:
        for condition in ("quiet", "one core busy"):
            load.set(condition == "one core busy")
            runs = {k: [] for k in labels}
            for r in range(rounds):
                for label in labels[r % 3:] + labels[:r % 3]:
                    runs[label].append(threads_pass(data, label))
            scale = EPOCH_SAMPLES / len(data)
            t = {k: [x["seconds"] for x in v] for k, v in runs.items()}
            med = {k: float(np.median(v)) for k, v in t.items()}
            per_round = [t["auto"][i] / min(t["1"][i], t["2"][i]) for i in range(rounds)]
            rows.append({
                "condition": condition, "rounds": rounds, "samples": len(data), "load": load_average(),
                "s_1": med["1"] * scale, "s_2": med["2"] * scale, "s_auto": med["auto"] * scale,
                "all_s": {k: [round(x * scale, 3) for x in v] for k, v in t.items()},
                "auto_starts": [x["start"] for x in runs["auto"]], "auto_used": [x.get("used") for x in runs["auto"]],
                "auto_switches": sum(x.get("switches", 0) for x in runs["auto"]),
                "auto_trials": [x.get("trials") for x in runs["auto"]],
                "choose_s": max(x["choose_s"] for x in runs["auto"]),
                "auto_vs_better": med["auto"] / min(med["1"], med["2"]),
                "auto_vs_better_worst_round": max(per_round),
                "fixed_spread": max(max(t[k]) / min(t[k]) for k in ("1", "2")),
            })
    finally:
        load.close()
    return rows


# -- fast CNN -----------------------------------------------------------------------------

def fast_cnn(mn, seeds: list[int]) -> list[dict]:
    from numpynets.models.registry import build, build_architecture, get_model, get_recipe
    from numpynets.train.evaluate import evaluate
    from numpynets.train.fit import fit
    from numpynets.train.fit import seeds as make_seeds

    set_threads(1)
    spec = get_model("cnn")
    rows = []
    for seed in seeds:
        row = {"seed": seed}
        for name in ("default", "fast"):
            recipe = get_recipe(spec, name)
            init_rng, shuffle_rng = make_seeds(seed)
            model = build(build_architecture(spec, dict(recipe.arch)), seed=init_rng)
            r = fit(model, mn.train, None, recipe, shuffle_rng, progress=False, log=lambda *a: None)
            row[f"{name}_s"] = r.train_seconds
            row[f"{name}_acc"] = evaluate(model, mn.test.x, mn.test.y)["accuracy"]
        row["ratio"] = row["fast_s"] / row["default_s"]
        rows.append(row)
    return rows


# -- report ---------------------------------------------------------------------------

def fmt(v, nd=2):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def markdown(res: dict) -> str:
    env = res["env"]
    out = [f"Measured {env['date']} by `python benchmarks/run_all.py {env['argv']}`; "
           f"{env['machine']}; BLAS: {env['blas']}; PyTorch {env['torch'] or 'not installed'}. "
           f"Load average before / after: {env['load_before']} / {env['load_after']} "
           f"(a shared machine: other jobs ran meanwhile). Total {env['seconds']:.0f} s.", ""]
    if res.get("compare"):
        out += ["| model, recipe | threads | numpynets s/epoch | PyTorch s/epoch | ratio | goal |",
                "| --- | --- | --- | --- | --- | --- |"]
        for r in res["compare"]:
            goal = GOALS.get((r["model"], r["recipe"], r["threads"]))
            verdict = "-" if goal is None or r.get("ratio") is None else \
                f"<= {goal}: {'met' if r['ratio'] <= goal else 'missed'}"
            out.append(f"| {r['model']} {r['recipe']} | {r['threads']} | {fmt(r['ours_s_per_epoch'])} | "
                       f"{fmt(r.get('torch_s_per_epoch'))} | {fmt(r.get('ratio'), 3)} | {verdict} |")
        n = env["samples_mlp"]
        out += ["", f"Seconds per epoch: one pass over {n:,d} training images ({n // 2:,d} for the attention "
                    f"default), extrapolated to {EPOCH_SAMPLES:,d}, best of {env['repeats']} alternating repeats.", ""]
    if res.get("gemm"):
        g = res["gemm"]
        out += ["| MLP original, 1 thread | value |", "| --- | --- |",
                f"| training loop s/epoch | {fmt(g['loop_s'] * EPOCH_SAMPLES / env['samples_mlp'])} |",
                f"| its five GEMMs alone s/epoch | {fmt(g['gemm_s'] * EPOCH_SAMPLES / env['samples_mlp'])} |",
                f"| GEMM share of the loop (goal >= 85 %) | {100 * g['gemm_share']:.0f} % |",
                f"| loop rate | {g['loop_gflops']:.1f} GFLOP/s |",
                f"| single-core float32 GEMM peak (2048^3) | {g['peak_gflops']:.1f} GFLOP/s |",
                f"| loop rate / peak | {100 * g['loop_of_peak']:.0f} % |", ""]
    if res.get("threads"):
        out += ["| MLP original, condition | s/epoch, 1 thread | 2 threads | auto | auto started on | "
                "auto ran on (most steps) | auto / better (median) | auto / better (worst round) | "
                "a fixed count, worst / best round | load average |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in res["threads"]:
            out.append(f"| {r['condition']} | {fmt(r['s_1'])} | {fmt(r['s_2'])} | {fmt(r['s_auto'])} | "
                       f"{r['auto_starts']} | {r['auto_used']} | {fmt(r['auto_vs_better'], 3)} | "
                       f"{fmt(r['auto_vs_better_worst_round'], 3)} | {fmt(r['fixed_spread'], 3)} | {r['load']} |")
        t0 = res["threads"][0]
        out += ["", f"Seconds per epoch: medians of {t0['rounds']} rounds, each round one pass of each of 1, 2 and "
                    f"auto over {t0['samples']:,d} images (extrapolated to {EPOCH_SAMPLES:,d}) back to back, in "
                    "an order rotating between rounds; one core busy: a helper process spinning on it (the same "
                    "process sleeps in the quiet condition). auto as `numpynets train` runs it: idle cores from "
                    "/proc/stat and a timed probe to start (at most "
                    f"{max(r['choose_s'] for r in res['threads']):.2f} s), then re-checked during the pass "
                    f"({sum(r['auto_switches'] for r in res['threads'])} switches in all). Goal: auto never more "
                    "than 10 % slower than the better of 1 and 2 threads; the last column is the noise floor: "
                    "how far one fixed count's rounds differ.", ""]
    if res.get("fast"):
        out += ["| seed | default CNN s | test % | fast CNN s | test % | fast / default |",
                "| --- | --- | --- | --- | --- | --- |"]
        for r in res["fast"]:
            out.append(f"| {r['seed']} | {fmt(r['default_s'])} | {fmt(r['default_acc'])} | {fmt(r['fast_s'])} | "
                       f"{fmt(r['fast_acc'])} | {fmt(r['ratio'], 3)} |")
        worst = min(r["fast_acc"] for r in res["fast"])
        total = sum(r["fast_s"] for r in res["fast"]) / sum(r["default_s"] for r in res["fast"])
        out += ["", f"Goal: >= 98.0 % on every seed (worst {worst:.2f} %) in <= 0.5x the default's "
                    f"training seconds (all seeds together: {total:.3f}x).", ""]
    return "\n".join(out)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in res.get("compare", []) if r["threads"] == 1]
    if not rows:
        return
    labels = [f"{r['model']}\n{r['recipe']}" for r in rows]
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2, 4))
    ax.bar(xs - 0.2, [r["ours_s_per_epoch"] for r in rows], 0.4, label="numpynets")
    ax.bar(xs + 0.2, [r.get("torch_s_per_epoch") or 0 for r in rows], 0.4, label="PyTorch (CPU)")
    ax.set_xticks(xs, labels)
    ax.set_ylabel("seconds per epoch (54,000 images), 1 thread")
    ax.set_title("Training speed, numpynets against PyTorch, same recipe")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def update_readme(readme: Path, table: str) -> None:
    start, end = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        print(f"{readme}: no {start} / {end} markers; README not updated", file=sys.stderr)
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    from numpynets.atomic import write_bytes_atomically

    write_bytes_atomically(readme, f"{head}{start}\n{table}\n{end}{tail}".encode())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    p.add_argument("--samples", type=int, default=6400, help="images per timed pass (default 6400)")
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats per comparison (default 3)")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the fast-CNN comparison (default 0,1,2)")
    p.add_argument("--thread-samples", type=int, default=38400,
                   help="images per timed pass of the threads section (default 38400: 600 steps)")
    p.add_argument("--thread-rounds", type=int, default=5, help="rounds of the threads section (default 5)")
    p.add_argument("--quick", action="store_true", help="1,600 images, 2 repeats, seed 0: a smoke run")
    p.add_argument("--out", default=str(HERE), help="folder for results.md, results.json, results.png")
    p.add_argument("--no-readme", action="store_true", help="do not copy the table into README.md")
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.repeats, args.seeds = 1600, 2, "0"
        args.thread_samples, args.thread_rounds = 6400, 3
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: numpynets timings only", file=sys.stderr)
    t_start = time.perf_counter()
    res = {"env": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "argv": " ".join(argv if argv is not None else sys.argv[1:]), "machine": machine(),
                   "blas": blas_version(), "torch": torch.__version__ if torch else None,
                   "load_before": load_average(), "repeats": args.repeats, "samples_mlp": args.samples,
                   "python": platform.python_version()}}
    mn = mnist()
    data = subset(mn.train, args.samples)

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def save():
        """Write what is measured so far: a run cut short keeps its figures."""
        res["env"].update(load_after=load_average(), seconds=time.perf_counter() - t_start)
        (out / "results.md").write_text(markdown(res) + "\n")
        (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")

    def compare_rows(threads: int):
        plan = [("attention", "default"), ("attention", "original"), ("mlp", "original"), ("mlp", "default"),
                ("cnn", "original"), ("cnn", "default")]
        for model_name, recipe_name in plan:
            if model_name not in only or (threads == 2 and model_name == "cnn"):
                continue
            if threads == 2 and (model_name, recipe_name) == ("mlp", "default"):
                continue
            # the attention default is the slowest step by far: fewer images keep the run short
            n = args.samples // 2 if (model_name, recipe_name) == ("attention", "default") else args.samples
            row = compare(torch, model_name, recipe_name, subset(mn.train, n), threads, args.repeats)
            res.setdefault("compare", []).append(row)
            log(f"{model_name} {recipe_name} {threads} thread(s): ours {row['ours_s_per_epoch']:.2f} s/epoch, "
                f"torch {fmt(row.get('torch_s_per_epoch'))}, ratio {fmt(row.get('ratio'), 3)}")
            save()

    # the goals first (1 thread), the 2-thread figures last: a run cut short keeps the goals
    compare_rows(1)
    if "mlp" in only:
        set_threads(1, torch)
        peak = gemm_peak_gflops()
        res["gemm"] = mlp_gemm_share(data, args.repeats, peak)
        log(f"mlp GEMM share {100 * res['gemm']['gemm_share']:.0f} %, loop {100 * res['gemm']['loop_of_peak']:.0f} % of peak")
        save()
    if "fast" in only:
        res["fast"] = fast_cnn(mn, [int(s) for s in args.seeds.split(",")])
        for r in res["fast"]:
            log(f"fast cnn seed {r['seed']}: default {r['default_s']:.2f} s {r['default_acc']:.2f} %, "
                f"fast {r['fast_s']:.2f} s {r['fast_acc']:.2f} %")
        save()
    if "threads" in only:
        res["threads"] = thread_rows(subset(mn.train, min(args.thread_samples, len(mn.train))), args.thread_rounds)
        for r in res["threads"]:
            log(f"threads, {r['condition']}: 1 {r['s_1']:.2f}, 2 {r['s_2']:.2f}, auto {r['s_auto']:.2f} "
                f"(started {r['auto_starts']}, ran {r['auto_used']}); auto/better median "
                f"{r['auto_vs_better']:.3f}, worst round {r['auto_vs_better_worst_round']:.3f}, "
                f"fixed-count spread {r['fixed_spread']:.3f}")
        save()
    compare_rows(2)
    save()
    table = markdown(res)
    plot(res, out / "results.png")
    if not args.no_readme and set(only) == set(SECTIONS):
        update_readme(HERE.parent / "README.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
