import json
import math

import pytest

from numpynets.errors import ConfigError
from numpynets.optim.schedules import Schedule, load_schedule_config, schedule_from_dict


def lrs(s, lr0=0.1, epochs=10, ts=range(8)):
    return [s.lr(lr0, t, epochs) for t in ts]


def test_constant():
    assert lrs(Schedule()) == [0.1] * 8


def test_step_decay_integer_division():
    s = Schedule("step", step_size=3, gamma=0.5)
    assert lrs(s) == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])


def test_exponential():
    s = Schedule("exponential", decay_rate=0.95)
    assert lrs(s, ts=[0, 1, 2]) == pytest.approx([0.1, 0.095, 0.09025])


def test_cosine_reaches_floor_and_stays():
    s = Schedule("cosine", min_lr=1e-4, t_max=10)
    assert s.lr(0.1, 0, 10) == pytest.approx(0.1)
    assert s.lr(0.1, 5, 10) == pytest.approx(1e-4 + (0.1 - 1e-4) / 2)
    assert s.lr(0.1, 10, 10) == pytest.approx(1e-4)
    assert s.lr(0.1, 14, 10) == pytest.approx(1e-4)          # the original rose again here


def test_cosine_default_length_is_the_run():
    s = Schedule("cosine", min_lr=0.0)
    assert s.lr(1.0, 2.5, 5) == pytest.approx(0.5)


def test_per_batch_is_continuous():
    s = Schedule("cosine", min_lr=0.0, per="batch")
    assert s.lr(1.0, 0.5, 2) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)


def test_warmup_then_schedule():
    s = Schedule("step", step_size=1, gamma=0.5, warmup_epochs=2)
    # per epoch: t=0 -> 1/3, t=1 -> 2/3, then the step schedule starts at t=2
    assert lrs(s, lr0=0.3, ts=[0, 1, 2, 3]) == pytest.approx([0.1, 0.2, 0.3, 0.15])
    sb = Schedule("constant", warmup_epochs=1, per="batch")
    assert [sb.lr(1.0, t, 5) for t in (0.0, 0.5, 1.0, 3.0)] == pytest.approx([0, 0.5, 1, 1])


@pytest.mark.parametrize("text,kind,check", [
    ('{"scheduler_type":"step_decay","step_size":3,"gamma":0.5}', "step", {"step_size": 3, "gamma": 0.5}),
    ('{"scheduler_type":"exponential","decay_rate":0.95}', "exponential", {"decay_rate": 0.95}),
    ('{"scheduler_type":"cosine_annealing","min_lr":0.0001,"T_max":10}', "cosine", {"min_lr": 1e-4, "t_max": 10}),
    ('{"scheduler_type":"constant"}', "constant", {}),
    ('{"scheduler_type":"step_decay","step_size":3,"gamma":0.5,"activation_function":"leaky_relu",'
     '"leaky_relu_alpha":0.01}', "step", {"step_size": 3}),
])
def test_original_json_files_load_unchanged(tmp_path, text, kind, check):
    f = tmp_path / "c.json"
    f.write_text(text)
    s = load_schedule_config(f)
    assert s.kind == kind
    for k, v in check.items():
        assert getattr(s, k) == v


def test_original_defaults_for_missing_fields():
    s = schedule_from_dict({"scheduler_type": "step_decay"})
    assert (s.step_size, s.gamma) == (3, 0.5)


@pytest.mark.parametrize("d,msg", [
    ({"scheduler_type": "linear"}, "unknown scheduler_type"),
    ({"scheduler_type": "step_decay", "gamma": -1}, "gamma must be >= 0"),
    ({"scheduler_type": "step_decay", "step_size": 0}, "step_size must be > 0"),
    ({"scheduler_type": "exponential", "decay_rate": "fast"}, "must be a number"),
    ({"scheduler_type": "constant", "lr": 3}, "unknown schedule field"),
])
def test_bad_configs(tmp_path, d, msg):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match=msg) as e:
        load_schedule_config(f)
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_not_json(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_schedule_config(f)


def test_command_line_flags_apply_on_top_of_a_schedule_file(tmp_path):
    """--warmup with --schedule-config was silently dropped."""
    from numpynets.cli import build_parser
    from numpynets.cli.train import options_from_args
    from numpynets.train.run import resolve

    f = tmp_path / "step.json"
    f.write_text('{"scheduler_type": "step_decay", "step_size": 1, "gamma": 0.5}')
    args = build_parser().parse_args(["train", "xor", "--schedule-config", str(f), "--warmup", "2",
                                      "--schedule-per", "batch"])
    sched = resolve(options_from_args(args))[1].schedule
    assert (sched["kind"], sched["step_size"], sched["gamma"]) == ("step", 1, 0.5)      # the file's
    assert (sched["warmup_epochs"], sched["per"]) == (2.0, "batch")                    # and the flags
    args = build_parser().parse_args(["train", "xor", "--schedule-config", str(f)])
    assert resolve(options_from_args(args))[1].schedule["warmup_epochs"] == 0.0
