"""The digit window for real, on a virtual X display (Xvfb): mouse events on
the canvas draw an MNIST test digit, the bars must name it; undo, clear,
keys, saving, switching models; and a screenshot that must show on screen
exactly the picture the model reads.

Skipped when Xvfb (or tkinter) is missing, except under CI (``CI`` set),
where that is a failure: CI must install Xvfb.

Set ``NUMPYNETS_SCREENSHOT=docs/images/draw.png`` to keep the screenshot
(that is how the README's picture is made).
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time

import needs
import numpy as np
import pytest
from PIL import Image

from numpynets.apps.drawing import CANVAS, render_strokes, strokes_from_image
from numpynets.data.mnist import Split
from numpynets.io import save_model
from numpynets.models import Recipe, build, mlp
from numpynets.runtime import blas_threads
from numpynets.train import evaluate, fit, seeds


def unavailable(why: str):
    needs.unavailable(why, "apt-get install -y xvfb xdotool python3-tk")


@pytest.fixture(scope="module")
def display():
    """A fresh Xvfb server on a free display number (Xvfb picks it and
    writes it to -displayfd), killed afterwards."""
    exe = shutil.which("Xvfb")
    if exe is None:
        unavailable("Xvfb is not installed")
    try:
        import tkinter  # noqa: F401
    except ImportError:
        unavailable("tkinter is not installed")
    rfd, wfd = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(wfd), "-screen", "0", "1024x600x24", "-nolisten", "tcp",
                             "-noreset"], pass_fds=(wfd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(wfd)
    number = b""
    deadline = time.monotonic() + 20
    while not number.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([rfd], [], [], 0.5)
        if ready:
            chunk = os.read(rfd, 16)
            if not chunk:
                break
            number += chunk
    os.close(rfd)
    if not number.strip().isdigit():
        proc.kill()
        pytest.fail(f"Xvfb did not start (exit status {proc.poll()})")
    yield f":{int(number)}"
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def runs(mnist, tmp_path_factory):
    """Two small trained MLPs in a runs folder, as ``numpynets train`` leaves
    them (the second is the newer)."""
    root = tmp_path_factory.mktemp("gui") / "runs"
    paths = []
    for seed, name in ((0, "mlp-20251124-093012"), (1, "mlp-20251125-101544")):
        init_rng, shuffle_rng = seeds(seed)
        model = build({**mlp.architecture(hidden=96, init="he"), "name": "mlp"}, seed=init_rng)
        with blas_threads(1):
            fit(model, Split(mnist.train.x[:12000], mnist.train.y[:12000]), None,
                Recipe(epochs=2, batch_size=64, lr=0.05, momentum=0.9), shuffle_rng,
                progress=False, log=lambda *a: None)
            accuracy = evaluate(model, mnist.test.x, mnist.test.y)["accuracy"]
        (root / name).mkdir(parents=True)
        paths.append(root / name / "model.safetensors")
        save_model(paths[-1], model, metrics={"test_accuracy": round(accuracy, 2)})
        os.utime(paths[-1], (1_000_000 + seed, 1_000_000 + seed))
    return root, paths


@pytest.fixture
def app(display, runs):
    from numpynets.apps.draw import DrawApp, make_root
    from numpynets.apps.recognizer import Recognizer, default_model

    root = make_root(display)
    window = DrawApp(root, Recognizer.load(default_model(runs[0])), runs_root=runs[0])   # the newest run
    root.update()
    yield window
    root.destroy()


def pump(app, seconds=0.0):
    """Let Tk run its pending events and timers for a while."""
    end = time.monotonic() + seconds
    while True:
        app.root.update()
        if time.monotonic() >= end:
            return
        time.sleep(0.01)


def drag(app, stroke, release=True, pause=0.0):
    """One stroke with the mouse: press, move through the points, release."""
    c = app.canvas
    (x, y), rest = stroke[0], stroke[1:]
    c.event_generate("<ButtonPress-1>", x=round(x), y=round(y))
    for x, y in rest:
        c.event_generate("<B1-Motion>", x=round(x), y=round(y))
        if pause:
            pump(app, pause)
    if release:
        x, y = stroke[-1]
        c.event_generate("<ButtonRelease-1>", x=round(x), y=round(y))


def shown(app):
    """What the bars say, read back from the widgets: (widths, highlighted
    digits, percentages, the big answer)."""
    from numpynets.apps.draw import TOP

    widths, top, pcts = [], [], []
    for d, (bar, rect, pct, _) in enumerate(app.bars):
        widths.append(bar.coords(rect)[2])
        if bar.itemcget(rect, "fill") == TOP:
            top.append(d)
        pcts.append(pct.cget("text"))
    return np.array(widths), top, pcts, app.answer.cget("text")


def pick_digits(recognizer, mnist, labels):
    """Test images that the model reads right both raw and traced as strokes
    on the canvas (the tracing is what the mouse will do)."""
    chosen = {}
    for img, label in zip(mnist.test.x[:300], mnist.test.y[:300]):
        label = int(label)
        if label in labels and label not in chosen:
            strokes = strokes_from_image(img, scale=10)
            traced = recognizer.predict(np.asarray(render_strokes(strokes), np.float32) / 255)
            if recognizer.probabilities(img[None])[0].argmax() == label and traced.digit == label \
                    and traced.confidence > 0.8:
                chosen[label] = strokes
    assert sorted(chosen) == sorted(labels)
    return chosen


def test_drawing_a_digit_with_the_mouse_names_it_then_undo_and_clear(app, mnist):
    digits = pick_digits(app.recognizer, mnist, [3, 7])
    widths, top, pcts, answer = shown(app)
    assert widths.max() == 0 and top == [] and answer == "?"       # empty canvas: no prediction

    for label, strokes in digits.items():
        for stroke in strokes:
            drag(app, stroke)
        pump(app)
        # the mouse path became exactly these strokes, and their picture
        assert app.drawing.strokes == [[(float(round(x)), float(round(y))) for x, y in s] for s in strokes]
        widths, top, pcts, answer = shown(app)
        assert top == [label] and answer == str(label) and widths.argmax() == label
        assert widths.max() > 0.8 * 160 and pcts[label].endswith("%")
        np.testing.assert_allclose(app.prediction.x, app.recognizer.predict(app.drawing.array()).x)

        n = len(app.drawing.strokes)
        before = app.drawing.array()
        app.root.focus_force()
        app.root.event_generate("<Control-z>")                      # undo: one stroke fewer
        pump(app)
        assert len(app.drawing.strokes) == n - 1
        assert not np.array_equal(app.drawing.array(), before)
        app.undo()                                                  # the button's command
        assert len(app.drawing.strokes) == n - 2

        app.root.event_generate("<Escape>" if label == 3 else "<Key-c>")   # clear
        pump(app)
        widths, top, pcts, answer = shown(app)
        assert app.drawing.empty and widths.max() == 0 and top == [] and answer == "?"
        assert app.drawing.array().max() == 0


def test_probabilities_update_while_drawing(app):
    """With the button still down, the bars follow the stroke (throttled,
    never more often than every 50 ms)."""
    stroke = [(140, 40 + 6 * i) for i in range(34)]                 # a long vertical line: a "1"
    t0 = time.monotonic()
    drag(app, stroke, release=False, pause=0.012)
    assert app.drawing.drawing_stroke                               # not released yet
    pump(app, 0.08)                                                 # the last scheduled update fires
    elapsed = time.monotonic() - t0
    assert app.prediction is not None and app.prediction.digit == 1
    assert 2 <= app.updates - 1 <= elapsed / 0.05 + 2               # live, and throttled
    assert not app.canvas.find_withtag("live")                      # antialiased picture replaced the Tk lines


def test_save_and_switch_models(app, runs, tmp_path, monkeypatch):
    from numpynets.apps.recognizer import describe_run_model

    drag(app, [(100, 60), (180, 60), (120, 230)])                   # a "7"
    pump(app)
    out = tmp_path / "seven.png"
    monkeypatch.setattr(app.tk.filedialog, "asksaveasfilename", lambda **kw: str(out))
    app.root.focus_force()
    app.root.event_generate("<Control-s>")
    pump(app)
    with Image.open(out) as im:
        assert im.size == (CANVAS, CANVAS) and np.array_equal(np.asarray(im), np.asarray(app.drawing.image()))

    root, (first, second) = runs
    menu = app.recent_menu
    app._fill_recent(menu)                                          # what opening the menu does
    labels = [menu.entrycget(i, "label") for i in range(menu.index("end") + 1)]
    assert [lab.lstrip("● ") for lab in labels] == [describe_run_model(second), describe_run_model(first)]
    assert labels[0].startswith("●")                                # the model in use
    menu.invoke(1)                                                  # switch to the other run's model
    assert app.recognizer.path == first and "mlp-20251124-093012" in app.status.cget("text")
    assert app.prediction is not None

    errors = []
    monkeypatch.setattr(app.tk.messagebox, "showerror", lambda title, msg, **kw: errors.append(msg))
    bad = tmp_path / "not-a-model.safetensors"
    bad.write_bytes(b"hello")
    assert not app.open_model(bad)                                  # refused, with a message
    assert errors and "not-a-model.safetensors" in errors[0]
    assert app.recognizer.path == first                             # the old model stays


def catmull_rom(points, per=10):
    """A smooth path through ``points`` (Catmull-Rom spline), as a hand moves."""
    p = np.asarray(points, float)
    p = np.vstack([p[:1], p, p[-1:]])
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        for t in np.linspace(0, 1, per, endpoint=False):
            out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                              + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3))
    out.append(p[-2])
    return [tuple(q) for q in out]


# a "2" as a person draws it: one smooth stroke
HANDWRITTEN_2 = [(92, 100), (115, 62), (160, 58), (188, 92), (175, 135), (130, 180), (90, 222), (150, 220), (200, 222)]


def test_screenshot_shows_what_the_model_reads(app, runs, display, tmp_path, monkeypatch):
    from PIL import ImageGrab

    keep = os.environ.get("NUMPYNETS_SCREENSHOT")
    keep = os.path.abspath(keep) if keep else None
    monkeypatch.chdir(runs[0].parent)                               # the status line shows runs/...
    app.set_model(runs[1][1].relative_to(runs[0].parent))
    drag(app, catmull_rom(HANDWRITTEN_2), pause=0.002)
    pump(app, 0.2)
    assert app.prediction.digit == 2 and app.prediction.confidence > 0.9

    shot = ImageGrab.grab(xdisplay=display).convert("RGB")
    # the canvas on screen shows, pixel for pixel, the picture the model reads
    cx, cy = app.canvas.winfo_rootx(), app.canvas.winfo_rooty()
    on_screen = np.asarray(shot.crop((cx, cy, cx + CANVAS, cy + CANVAS)).convert("L"), np.int32)
    assert np.abs(on_screen - np.asarray(app.drawing.image(), np.int32)).max() <= 2
    assert len(np.unique(on_screen)) > 10                           # grey edges: antialiased on screen
    # and the answer's bar is the green one
    bar = app.bars[2][0]
    assert shot.getpixel((bar.winfo_rootx() + 3, bar.winfo_rooty() + 9)) == (0x4C, 0xAF, 0x50)

    # no window manager: the window (menu bar included) is at the top left
    r = app.root
    assert r.winfo_rootx() < 5
    window = shot.crop((0, 0, r.winfo_rootx() + r.winfo_width(), r.winfo_rooty() + r.winfo_height()))
    window.save(tmp_path / "draw.png")
    if keep:
        window.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(keep, optimize=True)


def test_window_title_and_bars_name_another_data_sets_classes(display, tmp_path):
    """A Fashion-MNIST model (any 28x28, 10-class model opens): the title and
    the bars name its classes; switching back to a digit model restores them."""
    from numpynets.apps.draw import DrawApp, make_root
    from numpynets.apps.recognizer import Recognizer

    paths = {}
    for dataset in ("fashion-mnist", "mnist"):
        model = build({**mlp.architecture(hidden=16), "name": "mlp", "dataset": dataset}, seed=0)
        paths[dataset] = tmp_path / f"{dataset}.safetensors"
        save_model(paths[dataset], model)
    root = make_root(display)
    try:
        app = DrawApp(root, Recognizer.load(paths["fashion-mnist"]), runs_root=tmp_path / "none")
        root.update()
        assert "Fashion-MNIST" in root.title() and "T-shirt/top" in root.title()
        assert [str(label.cget("text")) for *_, label in app.bars][:2] == ["T-shirt/top", "Trouser"]
        app.set_model(paths["mnist"])
        root.update()
        assert root.title() == "numpynets: draw a digit"
        assert [str(label.cget("text")) for *_, label in app.bars] == [str(d) for d in range(10)]
    finally:
        root.destroy()
