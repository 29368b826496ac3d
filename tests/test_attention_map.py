"""``numpynets attention-map``: the figure is written without a display, at
the promised size, from the model's own attention weights; other models are
refused with a clear message."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from numpynets.apps.attention_map import (DPI, FIGSIZE, attention_for, attention_layers, draw_attention_map,
                                          patch_grid, pick_queries)
from numpynets.cli import main
from numpynets.errors import NumpynetsError
from numpynets.io.native import save_model
from numpynets.models.attention import architecture
from numpynets.models.mlp import architecture as mlp_architecture
from numpynets.models.registry import build
from numpynets.nn.attention import attention_reference


@pytest.fixture
def headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")


def small_attention_model(**options):
    arch = architecture(d_model=16, ff_dim=16, **options)
    arch["name"] = "attention"
    model = build(arch, seed=0)
    model.name = "attention"
    return model


def png_size(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_attention_weights_come_from_the_model(rng):
    model = small_attention_model(heads=2, residual=True, layernorm=True, blocks=2)
    layers = attention_layers(model)
    assert len(layers) == 2                                   # found inside the Residual blocks
    image = rng.random((28, 28)).astype(np.float32)
    probs, weights = attention_for(model, image, layer=1)
    assert probs.shape == (10,) and probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert weights.shape == (2, 49, 49)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert not layers[1].keep_attention and layers[1].last_attention is None    # flag restored
    # the weights softmax(q k^T / sqrt(E)) recomputed independently: the
    # attention layer's input taken by running the layers before it, then
    # the slow one-query-at-a-time twin in float64 on the layer's parameters
    target = layers[1]
    x = attention_input(model, image[None], target).astype(np.float64)          # (1, T, D)
    params = {k: p.astype(np.float64) for k, p in target.params.items()}
    _, ref = attention_reference(x, params, heads=target.heads)                  # (1, H, T, T)
    np.testing.assert_allclose(weights, ref[0], atol=1e-5)
    assert np.abs(weights - weights.mean(axis=-1, keepdims=True)).max() > 1e-3    # not uniform rows


def attention_input(model, x, target):
    """The input that ``target`` (an attention layer, maybe inside a
    Residual block) receives in a forward pass of ``x``."""
    h = model._as_input(x)
    for layer in model.layers:
        if layer is target:
            return h
        if target in getattr(layer, "sublayers", ()):
            g = h
            for sub in layer.sublayers:
                if sub is target:
                    return g
                g = sub.forward(g)
        h = layer.forward(h)
    raise AssertionError("attention layer not found")


def test_pick_queries_are_inky_and_spread(rng):
    image = np.zeros((28, 28), np.float32)
    image[8:20, 12:16] = 1.0                                  # a vertical bar: patches (2..4, 3)
    q = pick_queries(image, 7, 7, 4, k=4)
    assert len(set(q)) == 4 and all(0 <= t < 49 for t in q)
    assert q[0] in (2 * 7 + 3, 3 * 7 + 3, 4 * 7 + 3)


def test_png_written_headless_at_the_promised_size(tmp_path, rng, headless):
    model = small_attention_model()
    image = rng.random((28, 28)).astype(np.float32)
    probs, weights = attention_for(model, image)
    out = tmp_path / "attn.png"
    drawn = draw_attention_map(image, weights, patch_grid(model), out, queries=[0, 24, 48],
                               predicted=int(probs.argmax()), label=3, probability=float(probs.max()))
    assert drawn == [0, 24, 48]
    assert png_size(out) == (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))


@pytest.mark.mnist
def test_command_draws_a_test_image(tmp_path, mnist_path, headless, capsys):
    model = small_attention_model()
    path = tmp_path / "model.safetensors"
    save_model(path, model)
    out = tmp_path / "attn7.png"
    rc = main(["attention-map", str(path), "--index", "7", "-o", str(out), "--data-dir", str(mnist_path),
               "--no-verify"])
    assert rc == 0
    assert png_size(out) == (1200, 750)
    printed = capsys.readouterr().out
    assert "test image 7" in printed and "true 9" in printed   # MNIST test image 7 is a 9


def test_command_refuses_an_mlp(tmp_path, capsys):
    model = build(mlp_architecture(hidden=8), seed=0)
    model.name = "mlp"
    path = tmp_path / "mlp.safetensors"
    save_model(path, model)
    rc = main(["attention-map", str(path), "-o", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "no self-attention layer" in err and "numpynets train attention" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_missing_matplotlib_names_the_extra(monkeypatch, rng, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib -> ImportError
    model = small_attention_model()
    with pytest.raises(NumpynetsError, match=r'pip install "numpynets\[plot\]"'):
        draw_attention_map(np.zeros((28, 28)), np.full((49, 49), 1 / 49), patch_grid(model),
                           tmp_path / "a.png")


def test_bad_query_is_refused(tmp_path):
    model = small_attention_model()
    with pytest.raises(NumpynetsError, match="outside"):
        draw_attention_map(np.zeros((28, 28)), np.full((49, 49), 1 / 49), patch_grid(model),
                           tmp_path / "a.png", queries=[49])
