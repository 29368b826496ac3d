"""Augmentation: the batched resampler against its slow per-pixel twin, the
geometry of each transform, seeding and exact resume, the strength checks
(the CLI's one-line errors), bit-identical augmented runs, and augmentation
off in every ``original`` recipe."""

from __future__ import annotations

import numpy as np
import pytest
from fake_mnist import write_fake_mnist

from numpynets.data.augment import (AugmentConfig, Augmenter, augment_rng, resample, resample_reference,
                                    sample_coordinates)
from numpynets.errors import ConfigError


@pytest.mark.parametrize("seed", range(4))
def test_resample_matches_the_per_pixel_twin(seed):
    rng = np.random.default_rng(seed)
    n, c, h, w = rng.integers(1, 4), rng.integers(1, 3), rng.integers(3, 12), rng.integers(3, 12)
    x = rng.random((n, c, h, w))                                       # (N, C, H, W) float64
    # coordinates inside, on the edges and far outside the image
    rows = rng.uniform(-4, h + 3, (n, h, w))
    cols = rng.uniform(-4, w + 3, (n, h, w))
    rows[0, 0, :] = np.arange(w) % h                                   # exact integers (weights 0 and 1)
    np.testing.assert_allclose(resample(x, rows, cols), resample_reference(x, rows, cols), atol=1e-12)


def test_zero_strengths_are_the_identity_and_the_input_is_untouched():
    x = np.random.default_rng(0).random((5, 28, 28)).astype(np.float32)
    before = x.copy()
    out = Augmenter(AugmentConfig(0, 0, 0, 0, 0), 1)(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert np.array_equal(out, x) and out is not x
    out = Augmenter(None, 1)(x)                                          # the defaults change the images
    assert np.array_equal(x, before) and not np.array_equal(out, x)


def test_channels_share_one_transform():
    x = np.random.default_rng(1).random((3, 1, 28, 28)).astype(np.float32)
    two = np.concatenate([x, x], axis=1)                                 # (3, 2, 28, 28)
    out = Augmenter(AugmentConfig(shift=3, rotate=30, scale=0.2, shear=10, elastic=2), 5)(two)
    assert out.shape == (3, 2, 28, 28) and np.array_equal(out[:, 0], out[:, 1])


def _offsets(cfg, n=64, h=28, w=28, seed=0):
    rows, cols = sample_coordinates(np.random.default_rng(seed), cfg, n, h, w)
    py, px = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    qy, qx = rows - (h - 1) / 2, cols - (w - 1) / 2                      # (n, h, w) around the centre
    return py, px, qy, qx


def test_shift_moves_every_pixel_by_one_vector_within_the_strength():
    py, px, qy, qx = _offsets(AugmentConfig(shift=3, rotate=0, scale=0))
    dy, dx = qy - py, qx - px                                            # (n, h, w)
    assert np.allclose(dy, dy[:, :1, :1]) and np.allclose(dx, dx[:, :1, :1])
    assert np.abs(dy).max() <= 3 and np.abs(dx).max() <= 3 and np.abs(dy).max() > 2


def test_rotation_keeps_distances_from_the_centre_and_stays_within_the_angle():
    py, px, qy, qx = _offsets(AugmentConfig(shift=0, rotate=20, scale=0))
    assert np.allclose(np.hypot(qy, qx), np.hypot(py, px))
    angle = np.degrees(np.arctan2(qx * py - qy * px, qy * py + qx * px))   # signed angle p -> q
    ring = np.hypot(py, px) > 3
    assert np.abs(angle[:, ring]).max() <= 20 + 1e-9 and np.abs(angle[:, ring]).max() > 15


def test_scale_is_radial_within_the_range():
    py, px, qy, qx = _offsets(AugmentConfig(shift=0, rotate=0, scale=0.2))
    ring = np.hypot(py, px) > 3
    ratio = np.hypot(qy, qx)[:, ring] / np.hypot(py, px)[ring]          # 1 / zoom
    assert np.allclose(ratio, ratio[:, :1])                               # one zoom per image
    assert ratio.min() >= 1 / 1.2 - 1e-9 and ratio.max() <= 1 / 0.8 + 1e-9
    assert np.allclose(qy * px, qx * py)                                  # same direction


def test_elastic_displacements_are_bounded_and_smooth():
    cfg = AugmentConfig(shift=0, rotate=0, scale=0, elastic=2.0)
    py, px, qy, qx = _offsets(cfg)
    dy, dx = qy - py, qx - px
    assert np.abs(dy).max() <= 2 and np.abs(dx).max() <= 2 and np.abs(dy).max() > 1
    assert np.abs(np.diff(dy, axis=1)).max() < 1.0                        # neighbours move together


def test_elastic_field_is_the_bilinear_interpolation_of_its_grid():
    """The coordinates' elastic part (a matrix product with the basis of hat
    functions) is, pixel by pixel, the 4x4 grid of offsets interpolated
    bilinearly: knots at the image's first and last rows and columns and
    evenly between, computed here one pixel at a time in float64."""
    cfg = AugmentConfig(shift=0, rotate=0, scale=0, elastic=3.0)
    n, h, w = 3, 13, 9
    rows, cols = sample_coordinates(np.random.default_rng(5), cfg, n, h, w)
    rng = np.random.default_rng(5)
    rng.uniform(-1, 1, size=(n, 5))                                      # the affine draws come first
    grid = rng.uniform(-3.0, 3.0, size=(2, n, 4, 4))                     # (2, n, 4, 4): rows, then columns
    for k, got in enumerate((rows - np.arange(h)[:, None], cols - np.arange(w))):
        for img in range(n):
            for i in range(h):
                for j in range(w):
                    y, x = 3 * i / (h - 1), 3 * j / (w - 1)              # the pixel on the grid's scale
                    i0, j0 = min(int(y), 2), min(int(x), 2)
                    a, b = y - i0, x - j0
                    g = grid[k, img]
                    want = ((1 - a) * ((1 - b) * g[i0, j0] + b * g[i0, j0 + 1])
                            + a * ((1 - b) * g[i0 + 1, j0] + b * g[i0 + 1, j0 + 1]))
                    assert abs(got[img, i, j] - want) < 1e-12


def test_same_seed_same_batches_and_state_resumes_exactly():
    x = np.random.default_rng(2).random((16, 28, 28)).astype(np.float32)
    a, b = Augmenter(None, augment_rng(7)), Augmenter(None, augment_rng(7))
    assert np.array_equal(a(x), b(x))
    assert not np.array_equal(a(x), Augmenter(None, augment_rng(8))(x))
    saved = a.state()
    first = [a(x) for _ in range(3)]
    c = Augmenter(None, 0)
    c.set_state(saved)
    assert all(np.array_equal(f, c(x)) for f in first)


def test_augment_stream_leaves_the_init_and_shuffle_streams_alone():
    from numpynets.train import seeds

    init, shuffle = seeds(3)
    ss = np.random.SeedSequence(3).spawn(3)
    assert init.random() == np.random.default_rng(ss[0]).random()
    assert shuffle.random() == np.random.default_rng(ss[1]).random()
    assert augment_rng(3).random() == np.random.default_rng(ss[2]).random()


@pytest.mark.parametrize("field, value, words", [
    ("shift", -1.0, ">= 0"), ("rotate", 181.0, "at most 180"), ("rotate", -5.0, ">= 0"),
    ("scale", 1.0, "at most 0.9"), ("shear", 60.0, "at most 45"), ("elastic", float("nan"), "a number"),
    ("shift", 15.0, "at most 14"),
])
def test_absurd_strengths_refused(field, value, words):
    with pytest.raises(ConfigError, match=f"--augment-{field}") as e:
        AugmentConfig(**{field: value})
    assert words in str(e.value) and "\n" not in str(e.value)


def test_unknown_augment_field_refused():
    with pytest.raises(ConfigError, match="unknown field.*twist"):
        AugmentConfig.from_dict({"twist": 3})


def test_original_recipes_do_not_augment():
    from numpynets.models import MODELS

    originals = [(name, spec.recipes["original"]) for name, spec in MODELS.items() if "original" in spec.recipes]
    assert len(originals) >= 4
    assert all(r.augment is None for _, r in originals)
    assert MODELS["convnet"].recipes["default"].augment is not None


# -- the command line ---------------------------------------------------------------

@pytest.fixture
def fake_dir(tmp_path):
    write_fake_mnist(tmp_path / "data", n_train=120, n_test=30)
    return tmp_path / "data"


def cli(capsys, *argv):
    from numpynets.cli import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("flags, words", [
    (["--augment-rotate", "200"], "--augment-rotate 200 is absurd: at most 180 degrees"),
    (["--augment", "--augment-shift", "-1"], "--augment-shift must be >= 0"),
    (["--augment-scale", "2"], "--augment-scale 2 is absurd"),
    (["--no-augment", "--augment-shift", "1"], "--no-augment with augmentation strengths"),
    (["--augment"], "the xor data set has none"),
])
def test_cli_bad_strengths_one_line_exit_2_nothing_written(capsys, tmp_path, fake_dir, flags, words, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = "xor" if words.endswith("has none") else "cnn"
    rc, out, err = cli(capsys, "train", model, "--data-dir", fake_dir, "--no-verify", "--threads", "1",
                       "--no-progress", *flags)
    assert rc == 2 and err.count("\n") == 1 and words in err and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists()


def _train(capsys, fake_dir, out, *flags):
    from safetensors.numpy import load_file

    rc, stdout, err = cli(capsys, "train", "cnn", "--data-dir", fake_dir, "--no-verify", "--threads", "1",
                          "--no-progress", "--epochs", "1", "--out", out, *flags)
    assert rc == 0, err
    return load_file(str(out / "model.safetensors"))


def test_augmented_runs_are_bit_identical_per_seed(capsys, tmp_path, fake_dir):
    import json

    a = _train(capsys, fake_dir, tmp_path / "a", "--augment", "--seed", "4")
    b = _train(capsys, fake_dir, tmp_path / "b", "--augment", "--seed", "4")
    c = _train(capsys, fake_dir, tmp_path / "c", "--seed", "4")                 # no augmentation
    d = _train(capsys, fake_dir, tmp_path / "d", "--augment", "--seed", "5")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    assert not all(np.array_equal(a[k], d[k]) for k in a)
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["recipe"]["augment"] == AugmentConfig().to_dict()
    assert json.loads((tmp_path / "c" / "config.json").read_text())["recipe"]["augment"] is None


def test_strength_flags_imply_augment_and_start_from_the_defaults(capsys, tmp_path, fake_dir):
    import json

    _train(capsys, fake_dir, tmp_path / "a", "--augment-rotate", "25", "--augment-elastic", "1.5")
    aug = json.loads((tmp_path / "a" / "config.json").read_text())["recipe"]["augment"]
    assert aug == {**AugmentConfig().to_dict(), "rotate": 25.0, "elastic": 1.5}


def test_show_augment_writes_the_grid(capsys, tmp_path, fake_dir):
    from PIL import Image

    out = tmp_path / "aug.png"
    rc, stdout, err = cli(capsys, "data", "--show-augment", "-o", out, "--data-dir", fake_dir, "--no-verify",
                          "--images", "3", "--versions", "4")
    assert rc == 0, err
    assert "3 MNIST test images, each with 4 augmented versions" in stdout
    assert Image.open(out).size[0] > 300
    rc, _, err = cli(capsys, "data", "--show-augment", "-o", tmp_path / "x.png", "--data-dir", fake_dir,
                     "--no-verify", "--augment-rotate", "-3")
    assert rc == 2 and "--augment-rotate must be >= 0" in err and not (tmp_path / "x.png").exists()


def test_whole_pixel_shifts_are_exact_crops_within_the_strength():
    rng = np.random.default_rng(3)
    x = rng.random((40, 1, 10, 12)).astype(np.float32)
    aug = Augmenter(AugmentConfig(shift=2, rotate=0, scale=0), 9)
    out = aug(x)
    assert out.shape == x.shape and out.dtype == np.float32
    seen = set()
    for n in range(len(x)):                                # each image is x shifted by one (dy, dx)
        pad = np.pad(x[n, 0], 2)
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(out[n, 0], pad[2 - dy:2 - dy + 10, 2 - dx:2 - dx + 12])]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10                                  # the shifts vary
    # the same seed, the same shifts
    again = Augmenter(AugmentConfig(shift=2, rotate=0, scale=0), 9)
    assert np.array_equal(again(x), out)


def test_resume_of_an_augmented_run_is_bit_identical(capsys, tmp_path, fake_dir, monkeypatch):
    """The augmentation generator is part of the checkpoint: a run stopped
    by Ctrl-C in epoch 2 (after the epoch's first chunk of augmented
    batches) and resumed ends with the weights of the run that was never
    stopped."""
    from test_resume import assert_same_tensors, interrupt_at_step

    from numpynets.train.fit import Trainer

    monkeypatch.setattr(Trainer, "augment_pixels", 2 * 16 * 28 * 28)   # chunks of 2 batches: 4 per epoch
    _train(capsys, fake_dir, tmp_path / "whole", "--augment", "--seed", "2", "--epochs", "3")
    with monkeypatch.context() as m:
        interrupt_at_step(m, 7 + 2)                      # 108 images, batch 16: 7 steps per epoch
        rc, out, err = cli(capsys, "train", "cnn", "--data-dir", fake_dir, "--no-verify", "--threads", "1",
                           "--no-progress", "--epochs", "3", "--out", tmp_path / "cut", "--augment", "--seed", "2")
        assert rc == 130, err
    rc, out, err = cli(capsys, "train", "--resume", tmp_path / "cut", "--no-progress", "--data-dir", fake_dir,
                       "--no-verify")
    assert rc == 0 and "resuming" in out, err
    assert_same_tensors(tmp_path / "whole" / "model.safetensors", tmp_path / "cut" / "model.safetensors")
    # the generator's state is what the checkpoint holds for it
    import json

    from test_resume import load_meta
    ckpt = json.loads(load_meta(tmp_path / "cut" / "checkpoint.safetensors")["training"])
    assert ckpt["state"]["augment"]["bit_generator"]["bit_generator"] == "PCG64"


@pytest.mark.parametrize("seed", range(3))
def test_resample_clips_coordinates_far_outside(seed):
    """Coordinates beyond the widest border take the clipping path; they read zero."""
    rng = np.random.default_rng(10 + seed)
    n, c, h, w = 2, rng.integers(1, 3), rng.integers(3, 10), rng.integers(3, 10)
    x = rng.random((n, c, h, w))                                       # (N, C, H, W) float64
    rows = rng.uniform(-40, h + 40, (n, h, w))
    cols = rng.uniform(-40, w + 40, (n, h, w))
    rows[0, 0, 0], cols[0, 0, 0] = 1.25, 0.5                           # some inside
    np.testing.assert_allclose(resample(x, rows, cols), resample_reference(x, rows, cols), atol=1e-12)


@pytest.mark.parametrize("cfg", [AugmentConfig(), AugmentConfig(shift=5, rotate=40, scale=0.3, shear=20, elastic=3),
                                 AugmentConfig(shift=14, rotate=180, scale=0.9, shear=45, elastic=8)],
                         ids=["default", "strong", "wild"])
def test_augmenter_is_the_reference_resampling_of_its_coordinates(cfg):
    """The augmenter's fast path (a border wide enough for any of the configuration's transforms, or clipping for wild
    strengths) gives what the per-pixel twin gives at the same sample coordinates."""
    from numpynets.data.augment import config_border

    x = np.random.default_rng(3).random((6, 1, 12, 10))                 # (N, 1, H, W) float64
    out = Augmenter(cfg, np.random.default_rng(4))(x)
    rows, cols = sample_coordinates(np.random.default_rng(4), cfg, 6, 12, 10)
    np.testing.assert_allclose(out, resample_reference(x, rows, cols), atol=1e-12)
    border = config_border(cfg, 12, 10)
    if border is not None:                                               # every coordinate and its neighbours fit
        assert rows.min() >= 1 - border and cols.min() >= 1 - border
        assert rows.max() <= 12 + border - 2 and cols.max() <= 10 + border - 2
    if cfg == AugmentConfig():
        assert border is not None and border <= 8                        # the defaults never clip
    if cfg.rotate == 180:
        assert border is None                                            # clipped into a narrow border


@pytest.mark.parametrize("cfg", [AugmentConfig(), AugmentConfig(shift=5, rotate=40, scale=0.3, shear=20, elastic=3),
                                 AugmentConfig(shift=14, rotate=180, scale=0.9, shear=45, elastic=8)],
                         ids=["default", "strong", "wild"])
def test_blocks_are_the_reference_resampling_and_do_not_change_the_bits(cfg, monkeypatch):
    """A call of several blocks (and a shorter last one), with two channels:
    each image is the per-pixel twin's resampling at its coordinates, and
    the block size does not change a bit."""
    x = np.random.default_rng(7).random((7, 2, 9, 8))                  # (N, C, H, W) float64
    monkeypatch.setattr(Augmenter, "block_pixels", 3 * 2 * 9 * 8)      # 3 images per block: 3 + 3 + 1
    out = Augmenter(cfg, np.random.default_rng(1))(x)
    rows, cols = sample_coordinates(np.random.default_rng(1), cfg, 7, 9, 8)
    np.testing.assert_allclose(out, resample_reference(x, rows, cols), atol=1e-12)   # clipped or not
    for block in (1, 10 ** 9):
        monkeypatch.setattr(Augmenter, "block_pixels", block)
        assert np.array_equal(Augmenter(cfg, np.random.default_rng(1))(x), out)


@pytest.mark.parametrize("dtype", [np.uint8, np.float16])
def test_integer_and_half_images_are_resampled_in_float64(dtype):
    """Images that are neither float32 nor float64 are resampled in float64
    with float64 transforms and cast back."""
    x = (np.random.default_rng(2).random((5, 28, 28)) * 255).astype(dtype)
    got = Augmenter(AugmentConfig(elastic=1.0), 4)(x)
    want = Augmenter(AugmentConfig(elastic=1.0), 4)(x.astype(np.float64)).astype(dtype)
    assert got.dtype == dtype and np.array_equal(got, want)


def test_a_returned_batch_is_its_own_array():
    """The working arrays are reused, the output is not: a batch the caller
    keeps is unchanged by the next call."""
    rng = np.random.default_rng(8)
    a = Augmenter(None, 3)
    first = a(rng.random((8, 28, 28)).astype(np.float32))
    kept = first.copy()
    a(rng.random((8, 28, 28)).astype(np.float32))
    assert np.array_equal(first, kept)


def test_float32_batches_agree_with_float64():
    x = np.random.default_rng(5).random((8, 28, 28)).astype(np.float32)
    a = Augmenter(None, 9)(x)
    b = Augmenter(None, 9)(x.astype(np.float64))
    assert a.dtype == np.float32 and np.abs(a - b).max() < 1e-4


def test_reused_table_gives_the_same_batches_as_a_fresh_one():
    """The augmenter keeps its zero-bordered table and working arrays between
    batches (for two shapes at a time); a batch after others (bright images,
    other sizes, a third shape that evicts one) is what a fresh augmenter gives."""
    rng = np.random.default_rng(6)
    a = Augmenter(None, augment_rng(1))
    for shape in [(8, 28, 28), (3, 28, 28), (8, 28, 28), (5, 2, 28, 28), (3, 28, 28), (8, 28, 28)]:
        a(np.ones(shape, dtype=np.float32) * 7)
    state = a.state()
    x = rng.random((8, 28, 28)).astype(np.float32)
    b = Augmenter(None, 0)
    b.set_state(state)
    assert np.array_equal(a(x), b(x))
