"""Training logs: ours and the original project's three formats, one table."""

import math

import pytest

from numpynets.errors import NumpynetsError
from numpynets.io.logs import COLUMNS, read_log
from numpynets.train.runlog import LOG_COLUMNS, RunLog


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_columns_are_log_csv_columns():
    assert COLUMNS == LOG_COLUMNS


def test_our_log_csv(tmp_path):
    log = RunLog(tmp_path / "log.csv")
    log.write({"epoch": 1, "train_loss": 0.51234567, "train_accuracy": 85.5, "val_loss": 0.3,
               "val_accuracy": 91.25, "learning_rate": 0.01, "epoch_seconds": 2.5})
    log.write({"epoch": 2, "train_loss": 0.25, "train_accuracy": 92.0, "learning_rate": 0.005,
               "epoch_seconds": 2.25})                                    # no validation this epoch
    log.close()
    rows, fmt = read_log(tmp_path)                                       # a run folder works too
    assert fmt == "numpynets" and len(rows) == 2
    assert rows[0] == {"epoch": 1, "train_loss": pytest.approx(0.512346), "train_accuracy": 85.5,
                       "val_loss": 0.3, "val_accuracy": 91.25, "learning_rate": 0.01, "epoch_seconds": 2.5}
    assert rows[1]["val_loss"] is None and rows[1]["val_accuracy"] is None and rows[1]["epoch"] == 2
    assert isinstance(rows[1]["epoch"], int)


def test_header_only_log_has_no_rows(tmp_path):
    rows, fmt = read_log(write(tmp_path, "log.csv", ",".join(COLUMNS) + "\n"))
    assert (rows, fmt) == ([], "numpynets")


def test_subset_of_our_columns(tmp_path):
    rows, fmt = read_log(write(tmp_path, "log.csv", "epoch,train_loss\n1,0.5\n2,0.25\n"))
    assert fmt == "numpynets" and rows[1]["train_loss"] == 0.25 and rows[1]["val_accuracy"] is None


def test_original_mlp_log(tmp_path):
    text = ("epoch,train_loss,train_time,val_loss,val_accuracy,learning_rate\n"
            "1,1.219473,418.55734,0.679173,94.58333,0.01\n"
            "2,0.5,400.25,0.45,95.5,0.005\n")
    for name in ("training_loss_adam.txt", "training_loss_sgd.txt", "anything.csv"):
        rows, fmt = read_log(write(tmp_path, name, text))
        assert fmt == "original-mlp"
        assert rows[0] == {"epoch": 1, "train_loss": 1.219473, "train_accuracy": None, "val_loss": 0.679173,
                           "val_accuracy": 94.58333, "learning_rate": 0.01, "epoch_seconds": 418.55734}
        assert rows[1]["learning_rate"] == 0.005


def test_original_cnn_log(tmp_path):
    rows, fmt = read_log(write(tmp_path, "training_loss_cnn.txt",
                               "1,0.532100,12.345,0.280100,92.10,0.01\n2,0.3,12.0,0.25,93.5,0.01\n"))
    assert fmt == "original-cnn" and len(rows) == 2
    assert rows[0] == {"epoch": 1, "train_loss": 0.5321, "train_accuracy": None, "val_loss": 0.2801,
                       "val_accuracy": 92.1, "learning_rate": 0.01, "epoch_seconds": 12.345}


def test_original_attention_log_has_accuracy_before_time(tmp_path):
    rows, fmt = read_log(write(tmp_path, "training_loss_attention.txt",
                               "1,1.234567,85.40,120.55\n2,0.800000,88.12,118.03\n"))
    assert fmt == "original-attention"
    assert rows[0] == {"epoch": 1, "train_loss": 1.234567, "train_accuracy": None, "val_loss": None,
                       "val_accuracy": 85.4, "learning_rate": None, "epoch_seconds": 120.55}
    assert rows[1]["val_accuracy"] == 88.12 and rows[1]["epoch_seconds"] == 118.03


def test_plot_comparison_log(tmp_path):
    rows, fmt = read_log(write(tmp_path, "training_loss_c.txt", "1, 0.45, 3.2\n2, 0.30, 3.1\n\n"))
    assert fmt == "original-c" and [r["epoch_seconds"] for r in rows] == [3.2, 3.1]
    assert rows[0]["val_accuracy"] is None and rows[0]["learning_rate"] is None


def test_diverged_values_parse(tmp_path):
    rows, _ = read_log(write(tmp_path, "training_loss_cnn.txt", "1,NaN,12.0,inf,10.0,0.01\n"))
    assert math.isnan(rows[0]["train_loss"]) and rows[0]["val_loss"] == math.inf


def test_column_count_decides_without_a_name(tmp_path):
    assert read_log(write(tmp_path, "a.txt", "1,0.5,10,0.4,90,0.01\n"))[1] == "original-cnn"
    assert read_log(write(tmp_path, "b.txt", "1,0.5,90,10\n"))[1] == "original-attention"
    assert read_log(write(tmp_path, "c.txt", "1,0.5,10\n"))[1] == "original-c"


@pytest.mark.parametrize("name, text, match", [
    ("log.csv", "", "empty"),
    ("log.csv", "\n\n", "empty"),
    ("x.txt", "1,0.5,3,4,5\n", "5 columns"),
    ("x.txt", "1,0.5\n", "2 columns"),
    ("x.csv", "step,loss\n1,0.5\n", "unknown log header"),
    ("training_loss_cnn.txt", "1,0.5,90,10\n", "name says original-cnn"),
    ("training_loss_attention.txt", "1,0.5,10,0.4,90,0.01\n", "name says original-attention"),
    ("training_loss_adam.txt", "1,0.5,10,0.4,90,0.01\n", "name says original-mlp"),
    ("x.txt", "1,0.5,10\n2,0.4\n", "line 2: 2 columns"),
    ("x.txt", "1,0.5,10\n2,abc,3\n", "line 2: train_loss is 'abc'"),
    ("x.txt", "1.5,0.5,10\n", "not a whole number"),
    ("log.csv", "epoch,train_loss,epoch\n1,2,3\n", "unknown log header"),
])
def test_bad_logs(tmp_path, name, text, match):
    p = write(tmp_path, name, text)
    with pytest.raises(NumpynetsError, match=match) as exc:
        read_log(p)
    assert "\n" not in str(exc.value) and str(p) in str(exc.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(NumpynetsError, match="no such log file"):
        read_log(tmp_path / "nope.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(NumpynetsError, match="not a text file"):
        read_log(tmp_path / "bin.csv")
