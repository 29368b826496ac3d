"""Pictures of digits -> MNIST-like inputs: scaling to a 20x20 box, centring
by centre of mass, empty canvases, reading files (inversion, transparency,
16-bit), unreadable files; and ``numpynets predict`` end to end on PNGs
rendered from MNIST test images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from numpynets.data.images import load_image, mnist_like
from numpynets.errors import DataError

# a "2", a "7" and a "4" as strokes in the unit square (x right, y down)
GLYPHS = {
    2: [[(0.15, 0.25), (0.35, 0.05), (0.7, 0.05), (0.85, 0.25), (0.8, 0.45), (0.15, 0.95), (0.9, 0.95)]],
    7: [[(0.1, 0.05), (0.9, 0.05), (0.4, 0.95)]],
    4: [[(0.65, 0.95), (0.65, 0.05), (0.1, 0.65), (0.9, 0.65)]],
}


def draw(digit, canvas=(200, 300), box=(0, 0, 100), ink=255, paper=0, mode="L"):
    """The glyph drawn with its unit square at (left, top) with side ``size``
    on a (height, width) canvas; stroke width ~ size / 8."""
    left, top, size = box
    im = Image.new(mode, canvas[::-1], paper)
    d = ImageDraw.Draw(im)
    for stroke in GLYPHS[digit]:
        d.line([(left + x * size, top + y * size) for x, y in stroke], fill=ink,
               width=max(1, round(size / 8)), joint="curve")
    return im


# where MNIST's digits have their centre of mass (pixel index; 13.5 is the
# geometric middle of the 28x28 field, MNIST's own digits sit at 14.0)
MNIST_CENTRE = 14.0


def as_array(im) -> np.ndarray:
    return np.asarray(im, dtype=np.float32) / np.float32(255)


def centre_of_mass(a):
    r, c = np.indices(a.shape)
    return (r * a).sum() / a.sum(), (c * a).sum() / a.sum()


def aligned(a, b):
    """(mean |a - b|, correlation) of ``a`` shifted by the best whole pixel
    (at most one) onto ``b``: centring by whole pixels, as MNIST did, puts
    the centre of mass within half a pixel of the centre, so two drawings
    of one digit may land one pixel apart."""
    best = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            s = np.roll(a, (dy, dx), axis=(0, 1))
            best.append((float(np.abs(s - b).mean()), float(np.corrcoef(s.ravel(), b.ravel())[0, 1])))
    return min(best)


@pytest.mark.parametrize("digit", sorted(GLYPHS))
def test_small_in_a_corner_equals_large_in_the_centre(digit):
    small = mnist_like(as_array(draw(digit, (300, 400), (5, 250, 40))))       # bottom-left corner
    large = mnist_like(as_array(draw(digit, (300, 400), (70, 20, 260))))      # centre, 6.5x larger
    assert small.shape == large.shape == (28, 28) and small.dtype == np.float32
    assert np.abs(small - large).mean() < 0.11                  # the raw canvases differ entirely; these may be a pixel apart
    diff, corr = aligned(small, large)
    assert diff < 0.035 and corr > 0.93
    assert np.hypot(*np.subtract(centre_of_mass(small), centre_of_mass(large))) < 1.2


@pytest.mark.parametrize("digit", sorted(GLYPHS))
@pytest.mark.parametrize("box", [(0, 0, 30), (150, 100, 140), (300, 150, 90)])
def test_centre_of_mass_at_field_centre_and_box_fits_20(digit, box):
    out = mnist_like(as_array(draw(digit, (300, 400), box)))
    cy, cx = centre_of_mass(out)
    assert abs(cy - MNIST_CENTRE) <= 0.55 and abs(cx - MNIST_CENTRE) <= 0.55   # whole-pixel shifts
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert max(h, w) <= 20 and max(h, w) >= 19                  # the longer side is scaled to 20
    assert out.min() >= 0 and out.max() <= 1 and out.max() > 0.9


def test_aspect_ratio_kept():
    bar = np.zeros((100, 100), np.float32)
    bar[10:90, 45:55] = 1                                       # a tall "1": 80 x 10
    out = mnist_like(bar)
    rows, cols = np.flatnonzero(out.max(axis=1) > 0.5), np.flatnonzero(out.max(axis=0) > 0.5)
    assert rows[-1] - rows[0] + 1 == 20 and cols[-1] - cols[0] + 1 in (2, 3, 4)
    assert abs(centre_of_mass(out)[1] - MNIST_CENTRE) <= 0.55


def test_faint_ink_is_stretched():
    a = as_array(draw(7, (100, 100), (10, 10, 80), ink=80))     # grey pencil, 0.31
    b = as_array(draw(7, (100, 100), (10, 10, 80), ink=255))
    np.testing.assert_allclose(mnist_like(a), mnist_like(b), atol=0.02)


def test_empty_canvas_gives_none():
    assert mnist_like(np.zeros((280, 280), np.float32)) is None
    assert mnist_like(np.full((50, 60), 0.02, np.float32)) is None   # below the ink threshold
    assert mnist_like(np.zeros((1, 1))) is None


def test_single_dot_is_centred():
    a = np.zeros((50, 50), np.float32)
    a[3, 47] = 1
    out = mnist_like(a)
    assert out.shape == (28, 28) and np.allclose(centre_of_mass(out), MNIST_CENTRE, atol=0.55)


def test_mnist_digits_are_centred_at_14(mnist):
    x = mnist.test.x.astype(np.float64)                         # (10000, 28, 28)
    r = np.arange(28)
    cy = (x.sum(axis=2) @ r) / x.sum(axis=(1, 2))
    cx = (x.sum(axis=1) @ r) / x.sum(axis=(1, 2))
    assert abs(cy.mean() - MNIST_CENTRE) < 0.05 and abs(cx.mean() - MNIST_CENTRE) < 0.05


def test_mnist_like_leaves_mnist_digits_nearly_unchanged(mnist):
    x = mnist.test.x[:50]                                       # (50, 28, 28) already centred
    out = np.stack([mnist_like(a) for a in x])
    assert np.abs(out - x).mean() < 0.06


# -- reading files ---------------------------------------------------------------

def test_dark_on_light_is_inverted(tmp_path):
    path = tmp_path / "paper.png"
    draw(7, (120, 100), (10, 10, 90), ink=0, paper=255).save(path)
    img = load_image(path)
    assert img.dtype == np.float32 and img.shape == (120, 100)
    assert img[0].max() == 0 and img.max() == 1                 # black background, white ink
    ref = as_array(draw(7, (120, 100), (10, 10, 90)))
    np.testing.assert_allclose(img, ref, atol=1e-6)


def test_light_on_dark_is_kept(tmp_path):
    draw(4, (64, 64), (4, 4, 56)).save(tmp_path / "chalk.png")
    np.testing.assert_allclose(load_image(tmp_path / "chalk.png"), as_array(draw(4, (64, 64), (4, 4, 56))))


def test_grey_paper_becomes_black(tmp_path):
    draw(2, (100, 100), (10, 10, 80), ink=30, paper=200).save(tmp_path / "photo.jpg", quality=95)
    img = load_image(tmp_path / "photo.jpg")                    # paper 0.78, ink 0.12
    assert np.median(img) < 0.02                                # paper -> black
    assert abs(img.max() - (225 - 55) / (255 - 55)) < 0.05      # ink above the paper level, stretched


@pytest.mark.parametrize("ink", [(0, 0, 0, 255), (255, 255, 255, 255), (200, 30, 30, 255)])
def test_transparency_is_composited(tmp_path, ink):
    """Strokes of any colour on a transparent canvas become white ink on black."""
    im = Image.new("RGBA", (80, 80), (255, 255, 255, 0) if ink[0] == 0 else (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.line([(10, 10), (70, 10), (35, 70)], fill=ink, width=8)
    im.save(tmp_path / "t.png")
    img = load_image(tmp_path / "t.png")
    assert img.shape == (80, 80)
    assert img[0, 0] == 0 and img[79, 79] == 0                  # the transparent background is black
    assert img[10, 40] > 0.5                                    # the stroke is bright
    ref = np.asarray(im.getchannel("A"), np.float32) / 255
    assert np.abs((img > 0.25) ^ (ref > 0.5)).mean() < 0.01


def test_la_and_palette_transparency(tmp_path):
    la = Image.new("LA", (40, 40), (255, 0))
    ImageDraw.Draw(la).rectangle([10, 5, 30, 35], fill=(0, 255))
    la.save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    assert img[0, 0] == 0 and img[20, 20] == 1
    p = Image.new("P", (40, 40), 0)
    p.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    ImageDraw.Draw(p).rectangle([10, 5, 30, 35], fill=1)
    p.save(tmp_path / "p.png", transparency=0)
    img = load_image(tmp_path / "p.png")
    assert img[0, 0] == 0 and img[20, 20] == 1


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    a = np.zeros((30, 30), np.uint16)
    a[5:25, 12:18] = 30000                                      # ~0.46 of full scale
    Image.fromarray(a).save(tmp_path / "deep.png")
    img = load_image(tmp_path / "deep.png")
    assert img[0, 0] == 0 and abs(img[10, 15] - 30000 / 65535) < 1e-3


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + bytes(30)])
def test_unreadable_image(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(DataError) as e:
        load_image(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "use a PNG" in msg


def test_truncated_png(tmp_path):
    draw(7).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match="cut.png: not an image Pillow can read"):
        load_image(tmp_path / "cut.png")


def test_missing_image_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such image file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(DataError, match="is a folder"):
        load_image(tmp_path)


# -- numpynets predict end to end -----------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(mnist_path, tmp_path_factory):
    """An MLP trained for one epoch on 5,000 images through the CLI."""
    from numpynets.cli import main

    run = tmp_path_factory.mktemp("predict") / "run"
    rc = main(["train", "mlp", "--limit", "5000", "--epochs", "1", "--threads", "1", "--seed", "0",
               "--no-progress", "--data-dir", str(mnist_path), "--out", str(run)])
    assert rc == 0
    return run / "model.safetensors"


def render(x28: np.ndarray, path, scale=4):
    """An MNIST digit as a dark-on-light PNG, ``scale`` times larger, off centre."""
    im = Image.fromarray(np.rint(255 * (1 - x28)).astype(np.uint8)).resize((28 * scale, 28 * scale), Image.BICUBIC)
    canvas = Image.new("L", (28 * scale + 60, 28 * scale + 20), 255)
    canvas.paste(im, (50, 5))
    canvas.save(path)


def test_predict_prints_the_right_digit(tiny_model, mnist, tmp_path, capsys):
    from numpynets.cli import main
    from numpynets.io import load_model

    model, _ = load_model(tiny_model)
    p = model.predict_proba(mnist.test.x[:200])                 # (200, 10)
    # images the model reads confidently and correctly from the data set itself
    sure = [i for i in range(200) if p[i].argmax() == mnist.test.y[i] and p[i].max() > 0.9][:12]
    assert len(sure) >= 8
    paths = []
    for i in sure:
        paths.append(str(tmp_path / f"test{i}-digit{mnist.test.y[i]}.png"))
        render(mnist.test.x[i], paths[-1])
    capsys.readouterr()
    assert main(["predict", str(tiny_model), *paths, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    preds = result["predictions"]
    assert [r["image"] for r in preds] == paths
    for i, r in zip(sure, preds):
        assert len(r["probabilities"]) == 10
        assert abs(sum(r["probabilities"]) - 1) < 1e-4
        assert all(0 <= q <= 1 for q in r["probabilities"])
        assert r["digit"] == int(np.argmax(r["probabilities"]))
    right = sum(r["digit"] == mnist.test.y[i] for i, r in zip(sure, preds))
    assert right >= len(sure) - 1                                 # resampling may flip at most one
    # the text lines name each image and its digit
    assert out[0] == f"{paths[0]}: {preds[0]['digit']}  ({100 * max(preds[0]['probabilities']):.1f}%)"


def test_predict_blank_image(tiny_model, tmp_path, capsys):
    from numpynets.cli import main

    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    assert main(["predict", str(tiny_model), str(tmp_path / "blank.png"), "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "blank image" in out[0]
    assert json.loads(out[-1])["predictions"] == [{"image": str(tmp_path / "blank.png"), "digit": None,
                                                   "probabilities": None}]


def test_predict_raw_mode(tiny_model, mnist, tmp_path, capsys):
    from numpynets.cli import main

    x = mnist.test.x[0]
    Image.fromarray(np.rint(255 * x).astype(np.uint8)).save(tmp_path / "raw.png")
    assert main(["predict", str(tiny_model), str(tmp_path / "raw.png"), "--raw", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"][0]
    assert r["digit"] == mnist.test.y[0] and abs(sum(r["probabilities"]) - 1) < 1e-4


def test_predict_unreadable_image_stops_before_any_output(tiny_model, mnist, tmp_path, capsys):
    from numpynets.cli import main

    render(mnist.test.x[0], tmp_path / "good.png")
    (tmp_path / "bad.png").write_text("hello")
    rc = main(["predict", str(tiny_model), str(tmp_path / "good.png"), str(tmp_path / "bad.png")])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and "bad.png: not an image" in captured.err
