"""``numpynets train cnn --recipe fast`` (issue 16, time to 98 %): the recipe
trains from the command line on the whole MNIST training split, records
what it ran, and clears a floor set below the worst seed measured.

Full MNIST, one epoch, test accuracy measured while tuning (12 filters,
beta2 0.999: seeds 0-3 98.17, 97.95, 97.83, 98.11; beta2 0.99, the recipe:
seeds 1-2 97.95, 97.97). The floor sits 0.5 points under the worst."""

from __future__ import annotations

import json

import pytest

FLOOR = 97.3


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
    assert result["parameters"] == 12 * 9 + 12 + 12 * 14 * 14 * 10 + 10
    assert result["test_accuracy"] >= FLOOR, result["test_accuracy"]
    config = json.loads((run / "config.json").read_text())
    assert config["train_samples"] == 54_000 and config["threads"] == 1
    assert config["recipe"]["betas"] == [0.9, 0.99]
    assert config["architecture"]["layers"][0]["out_channels"] == 12
