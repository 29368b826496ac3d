"""Training plots (``numpynets plot``), the confusion matrix and the
evaluation pictures (``numpynets evaluate --plots``).

Two tiny real runs (MLP, 3000 images, 2 epochs) are trained once per module;
the stopped-early, single-epoch and no-validation cases are log files written
by hand. Figures are written with Agg and opened with Pillow.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from needs import need_module

need_module("matplotlib", "pip install -e '.[test]'")

from PIL import Image  # noqa: E402

from numpynets.apps import plots, run_summary  # noqa: E402
from numpynets.cli import main  # noqa: E402
from numpynets.errors import NumpynetsError  # noqa: E402
from numpynets.train.metrics import (accuracy_from_confusion, confusion_matrix,  # noqa: E402
                                     per_class_accuracy)

HEADER = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,epoch_seconds\n"
FULL_SIZE = (1500, 850)          # FIGSIZE (15, 8.5) inches at 100 dpi


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_path):
    """Two finished runs trained through the command line: default and original recipe."""
    root = tmp_path_factory.mktemp("runs")
    old = os.environ.get("NUMPYNETS_DATA")
    os.environ["NUMPYNETS_DATA"] = str(mnist_path)
    try:
        for name, extra in (("default", []), ("original", ["--recipe", "original"])):
            rc = main(["train", "mlp", *extra, "--limit", "3000", "--epochs", "2", "--threads", "1",
                       "--no-progress", "--out", str(root / name)])
            assert rc == 0
    finally:
        if old is None:
            del os.environ["NUMPYNETS_DATA"]
        else:
            os.environ["NUMPYNETS_DATA"] = old
    return root / "default", root / "original"


def write_run(folder, rows, result=None, model="cnn", recipe="default", planned=10):
    """A run folder by hand: log.csv with ``rows`` (lists in log.csv column order) and config.json."""
    folder.mkdir(parents=True)
    (folder / "log.csv").write_text(HEADER + "".join(",".join("" if v is None else str(v) for v in r) + "\n"
                                                     for r in rows))
    config = {"model": model, "recipe_name": recipe, "recipe": {"epochs": planned}}
    if result is not None:
        config["result"] = result
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def early(tmp_path):
    """A run that early stopping ended after 3 of 10 epochs; best validation at epoch 2."""
    return write_run(tmp_path / "early", [
        [1, 0.9, 75.0, 0.5, 88.0, 0.01, 2.0],
        [2, 0.4, 89.0, 0.35, 91.5, 0.01, 2.5],
        [3, 0.3, 91.0, 0.37, 91.25, 0.01, 3.0],
    ], result={"stopped": "early_stopping", "epochs": 3, "test_accuracy": 90.75})


def png_size(path):
    with Image.open(path) as im:
        im.load()                 # decodes the whole file: a truncated PNG fails here
        return im.size


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- training curves -------------------------------------------------------------

def test_one_run_writes_a_png_of_the_expected_size(runs, tmp_path):
    out = plots.plot_runs([runs[0]], out=tmp_path / "one.png", log=lambda *a: None)
    assert out == tmp_path / "one.png"
    assert png_size(out) == FULL_SIZE
    plots.plot_runs([runs[0]], out=tmp_path / "small.png", dpi=40, log=lambda *a: None)
    assert png_size(tmp_path / "small.png") == (600, 340)


def test_several_runs_through_the_command_line(runs, early, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["plot", str(runs[0]), str(runs[1]), str(early), "-o", str(out)]) == 0
    assert png_size(out) == FULL_SIZE
    text = capsys.readouterr().out
    for label in ("mlp (default)", "mlp (original)", "cnn (default)"):
        assert label in text
    assert f"wrote {out}" in text


def test_summary_table_numbers_match_the_logs(runs, capsys):
    loaded = run_summary.load_runs(list(runs), log=lambda *a: None)
    table = run_summary.summary_table(loaded)
    for folder, run in zip(runs, loaded):
        rows = read_csv(folder / "log.csv")
        config = json.loads((folder / "config.json").read_text())
        val = [float(r["val_accuracy"]) for r in rows]
        seconds = sum(float(r["epoch_seconds"]) for r in rows)
        s = run_summary.summarize(run)
        assert s["epochs"] == len(rows) == 2
        assert s["final_val_accuracy"] == pytest.approx(val[-1])
        assert s["best_val_accuracy"] == pytest.approx(max(val))
        assert s["best_epoch"] == 1 + int(np.argmax(val))
        assert s["test_accuracy"] == config["result"]["test_accuracy"]
        assert s["train_seconds"] == pytest.approx(seconds)
        # the summed log matches the run's own clock (the log rounds to 6 digits)
        assert s["train_seconds"] == pytest.approx(config["result"]["train_seconds"], rel=1e-3, abs=1e-3)
        assert s["stopped"] == "completed"
        line = next(ln for ln in table.splitlines() if ln.startswith(run.label))
        assert f"{val[-1]:.2f}%" in line and f"{max(val):.2f}%" in line
        assert f"{config['result']['test_accuracy']:.2f}%" in line


def test_a_run_stopped_early(early, tmp_path):
    (run,) = run_summary.load_runs([early], log=lambda *a: None)
    s = run_summary.summarize(run)
    assert (s["epochs"], s["planned_epochs"], s["stopped"]) == (3, 10, "early_stopping")
    assert (s["final_val_accuracy"], s["best_val_accuracy"], s["best_epoch"]) == (91.25, 91.5, 2)
    assert s["test_accuracy"] == 90.75
    assert s["train_seconds"] == pytest.approx(7.5)
    line = run_summary.summary_table([run]).splitlines()[2]
    assert "3/10" in line and "early stopping" in line and "7.50 s" in line
    assert png_size(plots.plot_runs([early], out=tmp_path / "e.png", log=lambda *a: None)) == FULL_SIZE


def test_a_run_killed_mid_way_is_unfinished(tmp_path):
    killed = write_run(tmp_path / "killed", [[1, 0.9, 75.0, 0.5, 88.0, 0.01, 2.0]])   # no "result"
    (run,) = run_summary.load_runs([killed], log=lambda *a: None)
    assert run_summary.summarize(run)["stopped"] == "unfinished"
    assert run_summary.summarize(run)["test_accuracy"] is None


def test_a_config_json_of_unexpected_shape_still_plots(tmp_path):
    """config.json edited by hand (or by another version): its odd fields are
    left out of the table, not an AttributeError or ValueError traceback."""
    odd = write_run(tmp_path / "odd", [[1, 0.9, 75.0, 0.5, 88.0, 0.01, 2.0]],
                    result={"stopped": 3, "test_accuracy": "high"})
    config = json.loads((odd / "config.json").read_text())
    config["recipe"] = ["not", "a", "dict"]
    (odd / "config.json").write_text(json.dumps(config))
    (run,) = run_summary.load_runs([odd], log=lambda *a: None)
    s = run_summary.summarize(run)
    assert s["planned_epochs"] is None and s["test_accuracy"] is None and s["stopped"] == "3"
    assert "88.00%" in run_summary.summary_table([run])
    assert png_size(plots.plot_runs([odd], out=tmp_path / "odd.png", log=lambda *a: None)) == FULL_SIZE


def test_a_log_with_a_single_epoch(tmp_path):
    log = tmp_path / "single" / "log.csv"
    log.parent.mkdir()
    log.write_text(HEADER + "1,0.45,87.5,0.31,91.0,0.05,1.25\n")
    (run,) = run_summary.load_runs([log], log=lambda *a: None)
    assert run.label == "single"                      # no config.json: the folder's name
    s = run_summary.summarize(run)
    assert (s["epochs"], s["final_val_accuracy"], s["best_epoch"], s["train_seconds"]) == (1, 91.0, 1, 1.25)
    assert s["stopped"] is None and s["test_accuracy"] is None
    assert png_size(plots.plot_runs([log], out=tmp_path / "s.png", log=lambda *a: None)) == FULL_SIZE


def test_a_log_without_validation_columns(tmp_path):
    log = tmp_path / "noval.csv"
    log.write_text("epoch,train_loss,train_accuracy,learning_rate,epoch_seconds\n"
                   "1,0.9,70,0.01,1.5\n2,0.5,85,0.01,1.5\n")
    (run,) = run_summary.load_runs([log], log=lambda *a: None)
    s = run_summary.summarize(run)
    assert s["final_val_accuracy"] is None and s["best_val_accuracy"] is None
    assert s["train_seconds"] == pytest.approx(3.0)
    line = run_summary.summary_table([run]).splitlines()[2]
    assert line.split()[:3] == ["noval", "2", "-"]
    assert png_size(plots.plot_runs([log], out=tmp_path / "n.png", log=lambda *a: None)) == FULL_SIZE


def test_a_log_that_skips_epochs_counts_their_time(tmp_path):
    """XOR logs every N-th epoch: each logged epoch's time stands for the epochs since the last row."""
    log = tmp_path / "xor.csv"
    log.write_text(HEADER + "100,0.2,50,,,0.1,0.01\n200,0.1,75,,,0.1,0.02\n")
    (run,) = run_summary.load_runs([log], log=lambda *a: None)
    assert run_summary.cumulative_seconds(run) == ([100, 200], [pytest.approx(1.0), pytest.approx(3.0)])


def test_the_original_projects_logs_are_plotted(tmp_path):
    attention = tmp_path / "training_loss_attention.txt"   # no header: epoch, loss, val accuracy, seconds
    attention.write_text("1,0.812345,88.50,12.25\n2,0.412345,92.25,11.75\n")
    cnn = tmp_path / "training_loss_cnn.txt"               # no header: epoch, loss, seconds, val loss, val acc, lr
    cnn.write_text("1,0.5,20.5,0.3,91.5,0.01\n2,0.25,19.5,0.2,94.0,0.01\n3,0.2,20.0,0.19,94.5,0.01\n")
    a, c = run_summary.load_runs([attention, cnn], log=lambda *a: None)
    assert (a.label, c.label) == ("training_loss_attention (original-attention)", "training_loss_cnn (original-cnn)")
    sa, sc = run_summary.summarize(a), run_summary.summarize(c)
    assert (sa["final_val_accuracy"], sa["train_seconds"]) == (92.25, pytest.approx(24.0))
    assert (sc["epochs"], sc["best_val_accuracy"], sc["train_seconds"]) == (3, 94.5, pytest.approx(60.0))
    out = plots.plot_runs([attention, cnn], out=tmp_path / "o.png", log=lambda *a: None)
    assert png_size(out) == FULL_SIZE


def test_an_unreadable_log_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello,world\n")
    assert main(["plot", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("numpynets: error:") and "notes.txt" in err and "\n" not in err


def test_same_labels_are_told_apart(runs, tmp_path):
    other = write_run(tmp_path / "again", [[1, 0.9, 75.0, 0.5, 88.0, 0.01, 2.0]], model="mlp")
    labels = [r.label for r in run_summary.load_runs([runs[0], other], log=lambda *a: None)]
    assert labels == ["mlp (default) default", "mlp (default) again"]


def test_no_display_writes_curves_png(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert not plots.has_display()
    assert main(["plot", str(runs[0])]) == 0
    assert png_size(tmp_path / "curves.png") == FULL_SIZE
    assert "wrote curves.png (no display" in capsys.readouterr().out


def test_a_window_is_opened_when_the_backend_can(runs, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "get_backend", lambda: "TkAgg")
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    try:
        assert plots.plot_runs([runs[0]], show=True, log=lambda *a: None) is None
        assert len(shown) == 1 and len(shown[0].axes) == 6
    finally:
        plt.close("all")
    # a backend that cannot open one (no Tk, say): the figure goes to curves.png instead
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plt, "get_backend", lambda: "agg")
    said = []
    assert plots.plot_runs([runs[0]], show=True, log=said.append) == Path("curves.png")
    assert png_size(tmp_path / "curves.png") == FULL_SIZE and "cannot open a window" in said[-1]
    assert len(shown) == 1


def test_errors_are_one_line_and_come_before_drawing(runs, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for argv, words in (([str(tmp_path / "nope")], "no such run folder or log file"),
                        ([str(empty)], "no log.csv in it"),
                        ([str(runs[0]), "-o", str(tmp_path / "x.foo")], "cannot write .foo"),
                        ([str(runs[0]), "-o", str(tmp_path / "no" / "x.png")], "does not exist")):
        assert main(["plot", *argv]) == 2
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert words in err and "\n" not in err and err.startswith("numpynets: error:")
        assert captured.out == ""                     # no table printed for a command that fails


def test_missing_matplotlib_names_the_extra(runs, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)       # "import matplotlib" raises ImportError
    with pytest.raises(NumpynetsError, match=r'pip install "numpynets\[plot\]"'):
        plots.require_matplotlib()
    assert main(["plot", str(runs[0]), "-o", "x.png"]) == 2
    assert main(["evaluate", str(runs[0]), "--plots", "somewhere"]) == 2
    err = capsys.readouterr().err
    assert err.count('pip install "numpynets[plot]"') == 2 and len(err.strip().splitlines()) == 2


# -- confusion matrix ----------------------------------------------------------------

def confusion_reference(y_true, y_pred, k):
    """The obvious double loop: look at every sample, for every cell."""
    cm = np.zeros((k, k), dtype=np.int64)
    for i in range(k):
        for j in range(k):
            for t, p in zip(y_true, y_pred):
                if t == i and p == j:
                    cm[i, j] += 1
    return cm


def test_confusion_matrix_matches_the_double_loop(rng):
    y_true = rng.integers(0, 7, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 7, 300))
    cm = confusion_matrix(y_true, y_pred, 7)
    np.testing.assert_array_equal(cm, confusion_reference(y_true, y_pred, 7))
    assert cm.sum() == 300 and cm.dtype == np.int64
    assert accuracy_from_confusion(cm) == pytest.approx(100.0 * np.mean(y_true == y_pred))
    for c in range(7):
        assert per_class_accuracy(cm)[c] == pytest.approx(100.0 * np.mean(y_pred[y_true == c] == c))


def test_confusion_matrix_edge_cases():
    cm = confusion_matrix([0, 0, 2], [0, 1, 2], 4)             # class 3 never occurs
    assert cm.tolist() == [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    acc = per_class_accuracy(cm)
    assert acc[0] == 50.0 and acc[2] == 100.0 and np.isnan(acc[1]) and np.isnan(acc[3])
    assert confusion_matrix([], [], 3).sum() == 0
    with pytest.raises(NumpynetsError, match="must lie in 0..2"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(NumpynetsError, match="2 true labels but 1 predictions"):
        confusion_matrix([0, 1], [0], 3)


def test_most_confident_mistakes_come_first():
    from numpynets.apps.eval_plots import most_confident_mistakes

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95], [0.7, 0.3]])
    y = np.array([0, 0, 1, 0, 0])                 # wrong: 1 (p 0.8), 2 (p 0.6), 3 (p 0.95)
    assert most_confident_mistakes(probs, y, 10).tolist() == [3, 1, 2]
    assert most_confident_mistakes(probs, y, 2).tolist() == [3, 1]
    assert most_confident_mistakes(probs, np.array([0, 1, 0, 1, 0]), 5).tolist() == []


def test_evaluate_plots_writes_both_figures(runs, mnist, tmp_path, capsys):
    from numpynets.io import load_model

    out = tmp_path / "pictures"
    assert main(["evaluate", str(runs[0]), "--plots", str(out), "--threads", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    confusion, gallery = out / "confusion_mlp.png", out / "misclassified_mlp.png"
    assert report["plots"] == [str(confusion), str(gallery)]
    assert png_size(confusion) == (750, 650)
    assert png_size(gallery)[0] == 1160                        # 8 columns of 1.45 inches

    # the matrix the figure shows, recomputed without evaluate(): the model's
    # own forward pass, argmax, and the double-loop count above; its diagonal
    # must be the reported accuracy, its rows the per-class figures
    model, _ = load_model(runs[0])
    x = mnist.test.x                                          # (10000, 28, 28) float32 in [0, 1]
    pred = np.concatenate([model.forward(x[i:i + 1000]).argmax(axis=1) for i in range(0, len(x), 1000)])
    cm = confusion_reference(mnist.test.y, pred, 10)
    assert cm.sum() == len(mnist.test.y) == report["n"] == 10000
    assert np.trace(cm) == report["correct"]
    assert accuracy_from_confusion(cm) == pytest.approx(report["test_accuracy"], abs=1e-4)
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(mnist.test.y, minlength=10))
    for c, acc in report["per_class_accuracy"].items():
        assert per_class_accuracy(cm)[int(c)] == pytest.approx(acc, abs=1e-4)


def test_gallery_without_mistakes_still_draws(tmp_path):
    from numpynets.apps.eval_plots import gallery_figure

    x = np.zeros((3, 28, 28), np.float32)
    probs = np.eye(10)[[1, 2, 3]]
    fig = gallery_figure(x, np.array([1, 2, 3]), probs, n=8)
    plots.save_figure(fig, tmp_path / "g.png")
    assert png_size(tmp_path / "g.png")[0] > 0
