"""Weight decay applies to weight matrices and kernels only, by default,
through a mask over the flat buffer; --decay-all decays everything."""

import numpy as np
import pytest

from numpynets.models import attention, cnn, mlp
from numpynets.models.registry import build
from numpynets.optim.optimizers import CHUNK, make_optimizer


def _named_mask(model):
    """{parameter name: its slice of decay_mask}, through the flat-buffer offsets."""
    mask = model.decay_mask()
    base = model.flat_params.__array_interface__["data"][0]
    out = {}
    for n, p, _ in model.named_parameters():
        a = (p.__array_interface__["data"][0] - base) // p.itemsize
        out[n] = mask[a:a + p.size]
    return out


def test_which_parameters_decay():
    m = _named_mask(build(attention.architecture(heads=2, residual=True, layernorm=True, blocks=1)))
    decays = {n for n, v in m.items() if v.all()}
    assert all(v.all() or not v.any() for v in m.values())
    names = set(m)
    assert decays == {n for n in names if n.rsplit(".", 1)[-1] in ("W", "Wq", "Wk", "Wv")}
    assert {"2.pos", "4.0.gamma", "4.0.beta", "1.b", "4.1.bq"} <= names - decays   # pos, LayerNorm, biases
    c = _named_mask(build(cnn.architecture(batchnorm=True)))
    assert c["0.W"].all() and not c["1.gamma"].any() and not c["1.beta"].any() and not c["5.b"].any()


def _two_models_steps(opt_name, mask, wd, steps=3, **kw):
    model = build(mlp.architecture(hidden=40), seed=0)
    rng = np.random.default_rng(5)
    opt = make_optimizer(opt_name, [(model.flat_params, model.flat_grads)], 0.05, weight_decay=wd,
                         decay_mask=mask(model), **kw)
    for _ in range(steps):
        model.flat_grads[...] = rng.standard_normal(model.flat_grads.size).astype(np.float32)
        opt.step()
    return model


@pytest.mark.parametrize("opt,kw", [("sgd", {}), ("sgd", {"momentum": 0.9, "nesterov": True}), ("adam", {}),
                                    ("adamw", {})])
def test_without_weight_decay_the_mask_changes_nothing_bit_for_bit(opt, kw):
    a = _two_models_steps(opt, lambda m: None, 0.0, **kw)
    b = _two_models_steps(opt, lambda m: [m.decay_mask()], 0.0, **kw)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


def test_sgd_decays_the_weights_and_not_the_biases():
    """One SGD step by hand, in float64: p -= lr (g + wd p) for weights, p -= lr g for biases."""
    model = build(mlp.architecture(hidden=40), seed=0)
    model.layers[0].params["b"][...] = 1.0                         # a bias that weight decay would shrink
    p0 = {n: p.astype(np.float64) for n, p, _ in model.named_parameters()}
    opt = make_optimizer("sgd", [(model.flat_params, model.flat_grads)], 0.1, weight_decay=0.5,
                         decay_mask=[model.decay_mask()])
    model.flat_grads[...] = 0.25
    opt.step()
    for n, p, _ in model.named_parameters():
        wd = 0.5 if n.endswith("W") else 0.0
        np.testing.assert_allclose(p, p0[n] - 0.1 * (0.25 + wd * p0[n]), rtol=1e-6, atol=1e-8, err_msg=n)
    assert model.flat_params.dtype == np.float32


def test_adamw_shrinks_only_the_weights_and_decay_all_shrinks_everything():
    def run(mask):
        model = build(mlp.architecture(hidden=40), seed=0)
        model.layers[0].params["b"][...] = 1.0
        opt = make_optimizer("adamw", [(model.flat_params, model.flat_grads)], 0.1, weight_decay=0.5,
                             decay_mask=mask(model))
        model.flat_grads[...] = 0.0                                # Adam's own step is then 0: decay alone
        opt.step()
        return model
    masked, everything = run(lambda m: [m.decay_mask()]), run(lambda m: None)
    np.testing.assert_array_equal(masked.layers[0].params["b"], 1.0)
    np.testing.assert_allclose(everything.layers[0].params["b"], 1 - 0.1 * 0.5, rtol=1e-6)
    W = build(mlp.architecture(hidden=40), seed=0).layers[0].params["W"]
    np.testing.assert_allclose(masked.layers[0].params["W"], W * (1 - 0.05), rtol=1e-6)


def test_chunks_are_cut_where_the_mask_changes_and_stay_small():
    model = build(mlp.architecture(), seed=0)
    opt = make_optimizer("sgd", [(model.flat_params, model.flat_grads)], 0.1, weight_decay=1e-4,
                         decay_mask=[model.decay_mask()])
    sizes = [c[0].size for c in opt._chunks]
    assert sum(sizes) == model.flat_params.size and max(sizes) <= CHUNK
    assert [c[4] for c in opt._chunks][-3:] == [False, True, False]   # b1 | W2 | b2
    assert len(opt._chunks) == -(-784 * 512 // CHUNK) + 3


def test_decay_all_flag_is_in_help_and_recipe(capsys):
    from numpynets.cli import main
    from numpynets.models.recipes import Recipe

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--decay-all" in out and "not to biases, normalisation scales and shifts or position embeddings" in out
    assert Recipe().decay_all is False and Recipe().with_overrides(decay_all=True).decay_all is True


def test_the_training_code_builds_the_mask_unless_decay_all():
    from numpynets.models.recipes import Recipe
    from numpynets.train.fit import build_optimizer

    model = build(mlp.architecture(hidden=40), seed=0)
    masked = build_optimizer(model, Recipe(optimizer="adamw", weight_decay=0.1))
    everything = build_optimizer(model, Recipe(optimizer="adamw", weight_decay=0.1, decay_all=True))
    assert [c[4] for c in masked._chunks] == [True, False, True, False]          # W1 b1 W2 b2
    assert all(c[4] for c in everything._chunks)
    from numpynets.models import attention as att
    assert att.RECIPES["default"].decay_all is True                              # tuned that way: unchanged
