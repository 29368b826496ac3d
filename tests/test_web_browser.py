"""The page in a real browser: headless Chromium (Debian's package) driven
by Playwright. A digit is drawn on ``<canvas id="pad">`` with mouse events;
the page's prediction (``#prediction``) and its ten bars (``data-class``)
must equal what ``POST /api/predict`` says for the 28x28 input the page
shows, and that input must be the one the Tk window makes from the same
strokes. Undo, clear, touch and switching models are exercised too, and a
screenshot is saved (to ``$NUMPYNETS_SCREENSHOT``, e.g. docs/images/web.png
for the README; to the test's temp folder otherwise).

Under CI (``CI=true``) a missing browser or Playwright fails the test."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from onnx_helpers import built, quick_train, require
from web_helpers import ServerProcess, request

from numpynets.apps.drawing import Drawing, strokes_from_image
from numpynets.apps.recognizer import Recognizer
from numpynets.io import save_model

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str:
    for cand in (os.environ.get("NUMPYNETS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if cand and Path(cand).is_file():
            return cand
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: CI installs it (apt-get install chromium)")
    pytest.skip("Chromium not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def site(tmp_path_factory, mnist):
    """Two runs: an MLP trained for a few hundred steps (newest) and a CNN;
    or, with $NUMPYNETS_WEB_MODEL, that model (for the README's screenshot)."""
    cwd = tmp_path_factory.mktemp("browser")
    runs = cwd / "runs"
    x, y = mnist.train.x[:20000], mnist.train.y[:20000]
    for name, kind, steps in (("cnn-quick", "cnn", 30), ("mlp-quick", "mlp", 300)):
        model = quick_train(built(kind), x, y, steps=steps, lr=3e-3)
        acc = float((model.forward(mnist.test.x.reshape(-1, *model.input_shape)).argmax(1) == mnist.test.y).mean())
        (runs / name).mkdir(parents=True)
        save_model(runs / name / "model.safetensors", model, metrics={"test_accuracy": 100 * acc})
        (runs / name / "config.json").write_text(json.dumps({"result": {"test_accuracy": 100 * acc}}))
    chosen = os.environ.get("NUMPYNETS_WEB_MODEL")
    server = ServerProcess([chosen] if chosen else [runs / "mlp-quick" / "model.safetensors"], cwd)
    yield server, cwd
    server.stop()


@pytest.fixture(scope="module")
def browser():
    require("playwright")
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def draw(page, strokes, steps: int = 4):
    """Each stroke as mouse-down, moves, mouse-up, in canvas pixels."""
    box = page.locator("#pad").bounding_box()
    sx, sy = box["width"] / 280, box["height"] / 280
    for stroke in strokes:
        (x0, y0), rest = stroke[0], stroke[1:]
        page.mouse.move(box["x"] + (x0 + 0.5) * sx, box["y"] + (y0 + 0.5) * sy)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + (x + 0.5) * sx, box["y"] + (y + 0.5) * sy, steps=steps)
        page.mouse.up()


def settled(page, strokes: int):
    """Wait until the page has the answer for its last change."""
    page.wait_for_function(f"() => document.body.dataset.pending === '0' && window.numpynets.strokes.length === {strokes}",
                           timeout=30000)


def shown(page) -> dict:
    probs = []
    for k in range(10):
        text = page.locator(f'.bar[data-class="{k}"]').get_attribute("data-probability")
        probs.append(float(text) if text else None)
    text = page.locator("#prediction").inner_text().strip()
    return {"prediction": int(text) if text.isdigit() else None, "probabilities": probs,
            "input": page.evaluate("window.numpynets.input"),
            "strokes": page.evaluate("window.numpynets.strokes")}


def tk_input(strokes) -> np.ndarray:
    """The Tk window's model input for the same strokes (numpynets draw)."""
    from numpynets.data.images import mnist_like

    d = Drawing()
    for stroke in strokes:
        d.begin(*stroke[0])
        for p in stroke[1:]:
            d.extend(*p)
        d.end()
    return mnist_like(d.array())


@pytest.mark.mnist
def test_drawing_in_chromium_matches_the_api(site, browser, mnist, tmp_path):
    server, _ = site
    errors = []
    context = browser.new_context(viewport={"width": 1000, "height": 520}, device_scale_factor=1, has_touch=True)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: errors.append(f"left the server: {r.url}")
            if not r.url.startswith(server.url) else None)
    page.goto(server.url)
    page.wait_for_function("() => document.getElementById('model-name').textContent.includes('mlp')")
    assert page.locator("#models option").count() >= 2                  # the runs found
    assert "% test accuracy" in page.locator("#model-accuracy").inner_text()

    # a real test digit (a 7), traced as strokes and drawn with the mouse
    digit = mnist.test.x[0]
    assert mnist.test.y[0] == 7
    strokes = strokes_from_image(digit)
    draw(page, strokes)
    settled(page, len(strokes))
    seen = shown(page)
    assert seen["prediction"] is not None and None not in seen["probabilities"]
    assert abs(sum(seen["probabilities"]) - 1) < 1e-9
    status, api, _ = request(server.port, "POST", "/api/predict", {"pixels": seen["input"]})
    assert status == 200
    assert seen["prediction"] == api["prediction"]
    assert seen["probabilities"] == api["probabilities"]                 # the same numbers, to the last bit
    # and the page's strokes give the model what the Tk window would give it
    x = np.array(seen["input"], np.float32).reshape(28, 28)
    assert np.array_equal(x, tk_input(seen["strokes"]))
    shot = Path(os.environ.get("NUMPYNETS_SCREENSHOT") or tmp_path / "web.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000

    # undo removes the last stroke and the answer follows
    page.click("#undo")
    settled(page, len(strokes) - 1)
    after = shown(page)
    assert after["input"] != seen["input"]
    status, api, _ = request(server.port, "POST", "/api/predict", {"pixels": after["input"]})
    assert after["probabilities"] == api["probabilities"]

    # clear empties the canvas and the bars
    page.click("#clear")
    settled(page, 0)
    cleared = shown(page)
    assert cleared["prediction"] is None and cleared["probabilities"] == [None] * 10

    # a finger works too: a tap leaves a dot, which is predicted
    box = page.locator("#pad").bounding_box()
    page.touchscreen.tap(box["x"] + 140, box["y"] + 140)
    settled(page, 1)
    assert shown(page)["prediction"] is not None
    assert errors == []
    context.close()


@pytest.mark.mnist
def test_switching_models_from_the_page(site, browser):
    server, _ = site
    if os.environ.get("NUMPYNETS_WEB_MODEL"):
        pytest.skip("the README screenshot run serves one chosen model")
    page = browser.new_page()
    page.goto(server.url)
    page.wait_for_function("() => document.querySelectorAll('#models option').length >= 2")
    cnn = next(o for o in page.locator("#models option").all() if "cnn-quick" in o.inner_text())
    page.select_option("#models", cnn.get_attribute("value"))
    page.wait_for_function("() => document.getElementById('model-name').textContent.includes('cnn')")
    assert request(server.port, "GET", "/api/model")[1]["name"] == "cnn"
    draw(page, [[(100.0, 60.0), (180.0, 60.0), (120.0, 220.0)]])
    settled(page, 1)
    seen = shown(page)
    status, api, _ = request(server.port, "POST", "/api/predict", {"pixels": seen["input"]})
    assert api["model"].endswith("cnn-quick/model.safetensors")
    assert seen["probabilities"] == api["probabilities"]
    rec = Recognizer.load(site[1] / api["model"])                       # the id is relative to the server's folder
    assert np.allclose(rec.probabilities(np.array(seen["input"], np.float32).reshape(1, 28, 28))[0],
                       api["probabilities"], atol=1e-12)
    page.close()
