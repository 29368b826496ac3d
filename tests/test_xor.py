"""XOR: a one-step SGD update worked out by hand, the recipes, the report."""

import json

import numpy as np
import pytest

from numpynets.cli import main
from numpynets.data import xor_data
from numpynets.models import build, build_architecture, get_model
from numpynets.optim import SGD


def test_one_sgd_step_by_hand():
    """Network 2 -> 1 -> 1 (the XOR architecture with one hidden unit),
    sigmoid both layers, MSE, one sample x = (1, 0) with target 1, lr 0.5.

    Weights:  W1 = [[0.5], [-0.5]], b1 = 0, W2 = [[1.0]], b2 = 0.
    Forward:  z1 = 1*0.5 + 0*(-0.5) = 0.5,  h = s(0.5) = 0.6224593312
              z2 = 1.0 * h = 0.6224593312, o = s(z2) = 0.6507776782
              L = (o - 1)^2 = 0.1219562300
    Backward: dL/do = 2 (o - 1);  dz2 = 2 (o - 1) o (1 - o) = -0.1587327844
              dW2 = h dz2,  db2 = dz2
              dh = dz2 W2 = dz2;  dz1 = dh h (1 - h) = -0.0373027936
              dW1 = x^T dz1 = [[dz1], [0]],  db1 = dz1
    Step:     W2 = 1 - 0.5 h dz2 = 1.0494023514    b2 = -0.5 dz2 = 0.0793663922
              W1 = [[0.5 - 0.5 dz1], [-0.5]] = [[0.5186513968], [-0.5]]
              b1 = -0.5 dz1 = 0.0186513968
    (x2 = 0 leaves W1[1] untouched.)
    """
    m = build(build_architecture(get_model("xor"), {"hidden": 1}), seed=0).astype(np.float64)
    W1, b1, W2, b2 = (p for _, p, _ in m.named_parameters())
    W1[...] = [[0.5], [-0.5]]
    b1[...] = 0
    W2[...] = [[1.0]]
    b2[...] = 0
    opt = SGD([(m.flat_params, m.flat_grads)], lr=0.5)
    out = m.forward(np.array([[1.0, 0.0]]), training=True)
    assert out[0, 0] == pytest.approx(0.6507776782147005, abs=1e-12)
    loss, dout = m.loss(out, np.array([[1.0]]))
    assert loss == pytest.approx(0.1219562300331153, abs=1e-12)
    m.zero_grad()
    m.backward(dout)
    opt.step()
    assert W2[0, 0] == pytest.approx(1.0494023514241335, abs=1e-12)
    assert b2[0] == pytest.approx(0.0793663922247687, abs=1e-12)
    assert W1[:, 0].tolist() == pytest.approx([0.5186513967968684, -0.5], abs=1e-12)
    assert b1[0] == pytest.approx(0.01865139679686841, abs=1e-12)


def test_original_recipe_is_the_original_update():
    """Our MSE has no 1/2, so lr 0.005 here is the original's lr 0.01 on (y-o)^2/2."""
    r = get_model("xor").recipes["original"]
    assert (r.batch_size, r.lr, r.optimizer, r.momentum, r.epochs) == (1, 0.005, "sgd", 0.0, 1_000_000)


def test_xor_train_cli_truth_table_and_json(tmp_path, capsys):
    assert main(["train", "xor", "--out", str(tmp_path / "run"), "--json", "--no-progress"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert result["accuracy"] == 100.0 and result["all_correct"] is True
    assert result["final_loss"] < 0.01 and result["epochs"] < 5000 and result["train_seconds"] > 0
    table = [line for line in out if line.endswith(" ok") or line.endswith("WRONG")]
    assert len(table) == 4 and all(line.endswith(" ok") for line in table)
    for f in ("model.safetensors", "log.csv", "config.json"):
        assert (tmp_path / "run" / f).exists()


def test_default_recipe_solves_most_seeds(tmp_path):
    """Sigmoid XOR nets can stall in a bad minimum; the default recipe solved
    20 of 20 seeds when measured (0-19); require 9 of these 10."""
    from numpynets.train.run import TrainOptions, run_training

    solved = 0
    for seed in range(10):
        r = run_training(TrainOptions(model="xor", seed=seed, out=str(tmp_path / f"s{seed}"), progress=False,
                                      threads=1), log=lambda *a: None)
        solved += r["test_accuracy"] == 100.0 and r["test_loss"] < 0.01
    assert solved >= 9


def test_xor_data():
    d = xor_data()
    assert d.x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and d.y.ravel().tolist() == [0, 1, 1, 0]
