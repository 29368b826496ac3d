"""The public library API (issue 11): ``import numpynets as nn``, the model
container built from layer arguments, optimizers that take the model,
``nn.data.load``/``batches``, ``nn.evaluate``, ``model.save``/``nn.load``,
the model's identity, and each bad input the issue lists."""

import copy
import inspect
import json
import os

import numpy as np
import pytest

import numpynets as nn
from numpynets.cli import main
from numpynets.errors import ConfigError, DataError, ModelFileError, ShapeError
from numpynets.io.original_models import ORIGINAL_KINDS, model_tensors, original_kind, write_original
from numpynets.models import build, build_architecture, get_model
from numpynets.models.recipes import Recipe
from numpynets.optim import make_optimizer


def mlp(seed=0, hidden=16):
    return nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10), seed=seed)


def xor_model(seed=0):
    return nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid(),
                         loss="mse", dataset="xor", seed=seed)


# -- the names ---------------------------------------------------------------
AGREED = ["Sequential", "Layer", "Linear", "ReLU", "Sigmoid", "Tanh", "Conv2D", "MaxPool2D", "Flatten",
          "SelfAttention", "LayerNorm", "softmax_cross_entropy", "mse", "optim", "data", "evaluate", "load",
          "gradcheck"]


def test_top_level_exports_the_agreed_names():
    for name in AGREED:
        assert name in nn.__all__, name
        assert hasattr(nn, name), name
    for name in ("SGD", "Adam", "AdamW"):
        assert name in nn.optim.__all__
    for name in ("load", "batches"):
        assert name in nn.data.__all__
    assert callable(nn.gradcheck.check_layer)


@pytest.mark.parametrize("module", [nn, nn.nn, nn.optim, nn.data], ids=lambda m: m.__name__)
def test_every_public_name_has_a_docstring(module):
    """Every name in ``__all__`` and every public method of a public class
    (inherited docstrings count: a layer's forward is documented by the
    contract in Layer)."""
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.getdoc(obj) or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            missing += [f"{name}.{k}" for k in dir(obj) if not k.startswith("_")
                        and callable(getattr(obj, k)) and not (inspect.getdoc(getattr(obj, k)) or "").strip()]
    assert not missing


def test_every_registered_layer_is_exported():
    from numpynets.nn.layer import LAYERS

    for cls in LAYERS.values():
        assert getattr(nn, cls.__name__) is cls


# -- Sequential ----------------------------------------------------------------
def test_layers_as_arguments_infer_the_input_shape_from_the_first_linear():
    m = mlp(seed=3)
    assert m.input_shape == (784,) and m.output_shape == (10,)
    assert [n for n, _, _ in m.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    assert m.forward(np.zeros((2, 28, 28), np.float32)).shape == (2, 10)


def test_a_list_and_the_old_positional_input_shape_still_work():
    layers = lambda: [nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10)]  # noqa: E731
    a = nn.Sequential(*layers(), seed=3)
    b = nn.Sequential(layers(), seed=3)
    c = nn.Sequential(layers(), (784,), seed=3)
    assert np.array_equal(a.flat_params, b.flat_params) and np.array_equal(a.flat_params, c.flat_params)


def test_same_seed_same_weights_rng_too_and_unseeded_models_differ():
    assert np.array_equal(mlp(seed=1).flat_params, mlp(seed=1).flat_params)
    assert not np.array_equal(mlp(seed=1).flat_params, mlp(seed=2).flat_params)
    a = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10), rng=np.random.default_rng(1))
    assert np.array_equal(a.flat_params, mlp(seed=1).flat_params)
    unseeded = [nn.Sequential(nn.Linear(3, 2)) for _ in range(2)]
    assert not np.array_equal(unseeded[0].flat_params, unseeded[1].flat_params)
    assert np.abs(unseeded[0].flat_params).max() > 0          # initialised, not left at zero


def test_same_weights_as_the_builtin_model_from_the_same_generator():
    """Layers given as arguments draw their weights exactly as the built-in
    architecture does: the library and `numpynets train` build one model."""
    arch = build_architecture(get_model("mlp"), {"hidden": 16})
    builtin = build(arch, seed=np.random.default_rng(7))
    mine = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10), rng=np.random.default_rng(7))
    assert np.array_equal(builtin.flat_params, mine.flat_params)


def test_conv_first_needs_an_input_shape_and_the_error_names_the_layer():
    with pytest.raises(ConfigError, match=r"Conv2D\(.*input_shape="):
        nn.Sequential(nn.Conv2D(1, 4, 3, padding=1), nn.ReLU())
    m = nn.Sequential(nn.Conv2D(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(),
                      nn.Linear(4 * 14 * 14, 10), input_shape=(1, 28, 28), seed=0)
    assert m.forward(np.zeros((2, 28, 28), np.float32)).shape == (2, 10)


def test_layers_that_do_not_connect_say_where():
    with pytest.raises(ShapeError) as exc:
        nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(256, 10))
    msg = str(exc.value)
    assert "layer 2" in msg and "Linear(in_features=256" in msg       # where, and which layer
    assert "(512,)" in msg and "256" in msg and "layer 1 (ReLU())" in msg   # both shapes, the source
    assert "\n" not in msg


def test_not_a_layer_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"argument 1 is the class ReLU, not a layer; write ReLU\(\)"):
        nn.Sequential(nn.Linear(2, 2), nn.ReLU)
    with pytest.raises(ConfigError, match="argument 0 is a str"):
        nn.Sequential("linear")
    with pytest.raises(ConfigError, match="seed= or rng="):
        nn.Sequential(nn.Linear(2, 2), seed=1, rng=np.random.default_rng())
    with pytest.raises(ConfigError, match="input_shape"):
        nn.Sequential(nn.Linear(2, 2), input_shape="big")
    with pytest.raises(ConfigError, match="empty model"):
        nn.Sequential()


# -- the model's identity --------------------------------------------------------
def test_identity_survives_every_copy_and_conversion(tmp_path):
    m = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid(), loss="mse",
                      name="my-xor", dataset="xor", seed=0)
    assert m.architecture()["name"] == "my-xor" and m.architecture()["dataset"] == "xor"
    copies = [m.astype(np.float64), m.copy(), copy.deepcopy(m)]
    m.save(tmp_path / "m.safetensors")
    copies.append(nn.load(tmp_path / "m.safetensors"))
    x = np.array([[0, 1], [1, 1]], np.float32)
    for c in copies:
        assert (c.name, c.dataset, c.loss_name) == ("my-xor", "xor", "mse")
        assert np.allclose(c.forward(x), m.forward(x))
    deep = copies[2]                                  # a real copy: own flat buffer, views into it
    deep.flat_params += 1
    assert not np.array_equal(deep.flat_params, m.flat_params)
    assert all(np.shares_memory(p, deep.flat_params) for _, p, _ in deep.named_parameters())


def test_builtin_identity_kept_by_astype():
    m = build(build_architecture(get_model("xor"), {}), seed=0)
    assert (m.name, m.dataset) == ("xor", "xor")
    assert (m.astype(np.float64).name, m.astype(np.float64).dataset) == ("xor", "xor")


# -- optimizers ---------------------------------------------------------------
def one_step(opt_factory, seed=0):
    m = mlp(seed=seed)
    x = np.random.default_rng(1).random((8, 784), dtype=np.float32)
    y = np.arange(8) % 10
    opt = opt_factory(m)
    for _ in range(3):
        _, d = m.loss(m.forward(x, training=True), y)
        m.zero_grad()
        m.backward(d)
        opt.step()
    return m.flat_params.copy()


@pytest.mark.parametrize("name,cls,kw", [
    ("sgd", nn.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    ("adam", nn.optim.Adam, {}),
    ("adamw", nn.optim.AdamW, {"weight_decay": 0.01}),
])
def test_optimizer_of_a_model_is_bit_for_bit_the_flat_buffer_one(name, cls, kw):
    """The model form and make_optimizer as the training loop calls it (the
    model's decay mask: weights decay, biases do not) update the same flat
    buffer with the same arithmetic: identical bits. decay_mask="all" is the
    --decay-all form."""
    a = one_step(lambda m: cls(m, lr=0.01, **kw))
    b = one_step(lambda m: make_optimizer(name, [(m.flat_params, m.flat_grads)], 0.01, **kw,
                                          decay_mask=[m.decay_mask()]))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, mlp(seed=0).flat_params)           # it did move
    c = one_step(lambda m: cls(m, lr=0.01, **kw, decay_mask="all"))
    d = one_step(lambda m: make_optimizer(name, [(m.flat_params, m.flat_grads)], 0.01, **kw))
    assert np.array_equal(c, d)
    if kw.get("weight_decay"):
        assert not np.array_equal(a, c)                              # the mask matters


def test_adamw_is_adam_with_decoupled_decay():
    opt = nn.optim.AdamW(mlp(), lr=1e-3)
    assert isinstance(opt, nn.optim.Adam) and opt.decoupled and opt.weight_decay == 0.01


@pytest.mark.parametrize("cls", [nn.optim.SGD, nn.optim.Adam, nn.optim.AdamW])
@pytest.mark.parametrize("bad", [None, "model", [1, 2], np.zeros(3), [nn.Linear(2, 2)]],
                         ids=["None", "str", "ints", "array", "layers"])
def test_optimizer_given_something_that_is_not_a_model(cls, bad):
    with pytest.raises(ConfigError, match=rf"{cls.__name__}: expected a model .*{cls.__name__}\(model, lr=") as exc:
        cls(bad, lr=0.1)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("lr", [0, -1, float("nan"), "0.1", None])
def test_optimizer_bad_learning_rate(lr):
    with pytest.raises(ConfigError, match="lr must be a number > 0"):
        nn.optim.SGD(mlp(), lr=lr)


# -- data -------------------------------------------------------------------------
def test_load_unknown_data_set_lists_the_known_ones():
    from numpynets.data.api import DATASETS

    known = ", ".join(DATASETS)
    assert "mnist" in DATASETS and "xor" in DATASETS
    with pytest.raises(ConfigError, match=rf"unknown data set 'fashion'; known: {known}$"):
        nn.data.load("fashion")
    with pytest.raises(ConfigError, match=f"known: {known}"):
        nn.data.load(None)


def test_load_xor():
    train, test = nn.data.load("xor")
    assert train.x.shape == (4, 2) and train.y.shape == (4, 1) and train.x.dtype == np.float32
    assert np.array_equal(train.y.ravel(), [0, 1, 1, 0]) and np.array_equal(test.x, train.x)


@pytest.mark.mnist
def test_load_mnist_arrays(mnist_path):
    train, test = nn.data.load("mnist", data_dir=mnist_path)
    assert train.x.shape == (60000, 28, 28) and test.x.shape == (10000, 28, 28)
    assert train.x.dtype == np.float32 and test.x.dtype == np.float32
    assert train.y.shape == (60000,) and 0 <= train.x.min() and train.x.max() <= 1
    assert set(np.unique(test.y)) == set(range(10))


def test_load_without_download_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMPYNETS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="numpynets data --download"):
        nn.data.load("mnist", download=False)
    with pytest.raises(DataError, match="not found there"):
        nn.data.load("mnist", data_dir=tmp_path / "empty")


def test_batches_cover_the_data_once_in_order_or_shuffled():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)          # (10, 1)
    y = np.arange(10)
    plain = list(nn.data.batches((x, y), 4))
    assert [len(b) for b, _ in plain] == [4, 4, 2]
    assert np.array_equal(np.concatenate([b for _, b in plain]), y)
    shuffled = list(nn.data.batches(nn.data.Split(x, y), 4, shuffle=True, seed=3))
    order = np.concatenate([b for _, b in shuffled])
    assert sorted(order) == list(range(10)) and not np.array_equal(order, y)
    for xb, yb in shuffled:                                     # x and y stay paired
        assert np.array_equal(xb.ravel(), yb)
    again = np.concatenate([b for _, b in nn.data.batches((x, y), 4, shuffle=True, seed=3)])
    other = np.concatenate([b for _, b in nn.data.batches((x, y), 4, shuffle=True, seed=4)])
    assert np.array_equal(order, again) and not np.array_equal(order, other)


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "64", None])
def test_batches_bad_batch_size_fails_at_the_call(size):
    with pytest.raises(ConfigError, match="batch_size must be a whole number >= 1"):
        nn.data.batches(nn.data.load("xor")[0], size)             # not only at the first next()


def test_batches_bad_data():
    with pytest.raises(ConfigError, match="same number of samples"):
        nn.data.batches((np.zeros((3, 2)), np.zeros(4)), 2)
    with pytest.raises(ConfigError, match=r"an \(x, y\) pair"):
        nn.data.batches(np.zeros((3, 2)), 2)


# -- evaluate, save, load -----------------------------------------------------------
def test_evaluate_is_the_fraction_right():
    m = mlp(seed=0)
    x = np.random.default_rng(0).random((50, 784), dtype=np.float32)
    pred = m.forward(x).argmax(axis=1)
    y = pred.copy()
    y[:10] = (y[:10] + 1) % 10                                     # exactly 10 of 50 wrong
    assert nn.evaluate(m, (x, y)) == pytest.approx(0.8)
    assert nn.evaluate(m, nn.data.Split(x, pred)) == 1.0
    train, _ = nn.data.load("xor")
    assert 0.0 <= nn.evaluate(xor_model(), train) <= 1.0


def test_evaluate_bad_arguments():
    with pytest.raises(ConfigError, match="evaluate: expected a model"):
        nn.evaluate("mlp", nn.data.load("xor")[0])
    with pytest.raises(ConfigError, match="evaluate: data must be"):
        nn.evaluate(mlp(), "test")


def test_save_is_the_file_numpynets_evaluate_reads(tmp_path, capsys):
    train, _ = nn.data.load("xor")
    m = xor_model(seed=0)
    opt = nn.optim.Adam(m, lr=0.1)
    for _ in range(300):
        _, d = m.loss(m.forward(train.x, training=True), train.y)
        m.zero_grad()
        m.backward(d)
        opt.step()
    path = tmp_path / "xor.safetensors"
    m.save(path)
    back = nn.load(path)
    assert np.array_equal(back.flat_params, m.flat_params) and back.dataset == "xor"
    assert main(["evaluate", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["test_accuracy"] == pytest.approx(100 * nn.evaluate(m, train))
    assert result["parameters"] == 17


def test_load_reads_original_bin_files(tmp_path):
    m = mlp(seed=4)
    write_original(tmp_path / "mnist_model.bin", m)
    back = nn.load(tmp_path / "mnist_model.bin")
    assert np.array_equal(back.flat_params, m.flat_params)       # float32 -> float64 file -> float32: exact


def test_save_to_a_folder_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    for path in (blocker / "m.safetensors", tmp_path / "missing" / "m.safetensors"):
        with pytest.raises(ModelFileError, match="cannot write") as exc:
            mlp().save(path)
        assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]           # nothing half-written left behind


def test_load_missing_file():
    with pytest.raises(ModelFileError, match="no such model file"):
        nn.load("/nonexistent/model.safetensors")


# -- recipes, original file records -----------------------------------------------------
def test_recipe_overrides_refuse_unknown_keys():
    with pytest.raises(ConfigError, match=r"unknown recipe field learning_rate; known: epochs, ") as exc:
        Recipe().with_overrides(epochs=2, learning_rate=0.1)
    assert "\n" not in str(exc.value)
    assert Recipe().with_overrides(epochs=2, lr=None).lr == Recipe().lr     # None keeps the field


@pytest.mark.parametrize("kind,options", [("mlp", {"hidden": 8}), ("cnn", {"channels": 2}),
                                          ("attention", {"d_model": 8, "ff_dim": 16})])
def test_original_record_views_are_the_models_own_parameters(kind, options):
    """Saving packs and loading assigns through the same arrays: views into
    the model's flat buffer, one per file array, in the layout's names."""
    m = build(build_architecture(get_model(kind), options), seed=0)
    assert original_kind(m) == kind
    layout, views = model_tensors(m, kind)
    names = [n for n, _ in layout.segments if n != "<i4"]
    assert list(views) == names == list(ORIGINAL_KINDS[kind].views(m))
    for arr in views.values():
        assert np.shares_memory(arr, m.flat_params)
    assert sum(a.size for a in views.values()) == m.num_parameters()


def test_gradcheck_in_one_call():
    x = np.random.default_rng(0).standard_normal((4, 3))              # (N, 3) float64
    errors = nn.gradcheck.check_layer(nn.Linear(3, 2), x)             # rng optional
    assert set(errors) == {"x", "W", "b"} and max(errors.values()) < 1e-7

    class WrongLinear(nn.Linear):                                     # a transposed-looking bug
        def backward(self, dy):
            super().backward(dy)
            self.grads["W"] *= 2
            return dy @ self.params["W"].T

    assert nn.gradcheck.check_layer(WrongLinear(3, 2), x)["W"] > 0.1
    with pytest.raises(ConfigError, match="float64"):
        nn.gradcheck.check_layer(nn.Linear(3, 2), x.astype(np.float32))
