"""``numpynets train cnn --recipe fast`` (issue 16, time to 98 %): the recipe
trains from the command line on the whole MNIST training split, records
what it ran, and clears a floor set below the worst seed measured.

Full MNIST, one epoch, test accuracy of the recipe (8 filters of 5 x 5,
Adam lr 0.007, beta2 0.99) measured while tuning: seeds 0-4 98.32, 98.35,
98.27, 98.44, 98.41; seeds 5-7 98.40, 98.19, 98.22
(benchmarks/cnn_fast_seeds.py). The floor sits 0.24 points under the
worst and under the 98 % goal: a seed below 98 % is a shortfall the
benchmark reports, not a failed test."""

from __future__ import annotations

import json

import pytest

FLOOR = 97.95


@pytest.mark.mnist
def test_fast_recipe_from_the_command_line(mnist_path, tmp_path, capsys):
    from numpynets.cli import main

    run = tmp_path / "fast"
    code = main(["train", "cnn", "--recipe", "fast", "--seed", "1", "--threads", "1", "--no-progress",
                 "--data-dir", str(mnist_path), "--out", str(run), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["recipe"] == "fast" and result["epochs"] == 1 and result["batch_size"] == 16
    assert result["threads"] == 1
    assert result["parameters"] == 8 * 25 + 8 + 8 * 14 * 14 * 10 + 10
    assert result["test_accuracy"] >= FLOOR, result["test_accuracy"]
    config = json.loads((run / "config.json").read_text())
    assert config["train_samples"] == 54_000 and config["threads"] == 1
    assert config["recipe"]["betas"] == [0.9, 0.99]
    assert config["recipe"]["lr"] == 0.007
    conv = config["architecture"]["layers"][0]
    assert conv["out_channels"] == 8 and conv["kernel_size"] == 5 and conv["padding"] == 2
