"""Each optimizer, two steps worked out by hand.

Setup for every case: one parameter p0 = 1, learning rate 0.1, gradients
g1 = 2 then g2 = 4 (fed directly, no model)."""

import math

import numpy as np
import pytest

from numpynets.errors import ConfigError
from numpynets.optim import SGD, Adam, AdamW, make_optimizer


def two_steps(opt_factory):
    p, g = np.array([1.0]), np.array([0.0])
    opt = opt_factory([(p, g)])
    out = []
    for grad in (2.0, 4.0):
        g[0] = grad
        opt.step()
        out.append(p[0])
    return out


def test_sgd_plain():
    # p1 = 1 - 0.1*2 = 0.8;  p2 = 0.8 - 0.1*4 = 0.4
    assert two_steps(lambda pg: SGD(pg, 0.1)) == pytest.approx([0.8, 0.4])


def test_sgd_momentum():
    # v1 = 2,           p1 = 1 - 0.1*2 = 0.8
    # v2 = 0.9*2 + 4 = 5.8, p2 = 0.8 - 0.58 = 0.22
    assert two_steps(lambda pg: SGD(pg, 0.1, momentum=0.9)) == pytest.approx([0.8, 0.22])


def test_sgd_nesterov():
    # v1 = 2,   step = g + mu v = 2 + 1.8 = 3.8,   p1 = 1 - 0.38 = 0.62
    # v2 = 5.8, step = 4 + 0.9*5.8 = 9.22,       p2 = 0.62 - 0.922 = -0.302
    assert two_steps(lambda pg: SGD(pg, 0.1, momentum=0.9, nesterov=True)) == pytest.approx([0.62, -0.302])


def test_sgd_weight_decay():
    # d1 = 2 + 0.5*1 = 2.5,     p1 = 1 - 0.25 = 0.75
    # d2 = 4 + 0.5*0.75 = 4.375, p2 = 0.75 - 0.4375 = 0.3125
    assert two_steps(lambda pg: SGD(pg, 0.1, weight_decay=0.5)) == pytest.approx([0.75, 0.3125])


def adam_reference(wd=0.0, decoupled=False):
    """The textbook update, written out independently of the optimizer's
    folded form: m, v, bias-corrected m_hat, v_hat."""
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.1
    p, m, v, out = 1.0, 0.0, 0.0, []
    for t, g in enumerate((2.0, 4.0), start=1):
        if decoupled:
            p *= 1 - lr * wd
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p -= lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(p)
    return out


def test_adam():
    # step 1: m = 0.2, v = 0.004; m_hat = 2, v_hat = 4  ->  p1 = 1 - 0.1*2/2 = 0.9
    got = two_steps(lambda pg: Adam(pg, 0.1))
    assert got[0] == pytest.approx(0.9, abs=1e-7)
    # step 2: m = 0.58, v = 0.019996; m_hat = 3.05263, v_hat = 10.0030 -> p2 = 0.9 - 0.1*0.96518
    assert got[1] == pytest.approx(0.9 - 0.1 * 3.0526315789 / math.sqrt(10.0030015008), rel=1e-7)
    assert got == pytest.approx(adam_reference(), rel=1e-10)


def test_adam_l2_and_adamw():
    assert two_steps(lambda pg: Adam(pg, 0.1, weight_decay=0.1)) == pytest.approx(adam_reference(0.1), rel=1e-10)
    got = two_steps(lambda pg: AdamW(pg, 0.1, weight_decay=0.1))
    # AdamW step 1: p = 1*(1 - 0.01) = 0.99, then the Adam step of 0.1  ->  0.89
    assert got[0] == pytest.approx(0.89, abs=1e-7)
    assert got == pytest.approx(adam_reference(0.1, decoupled=True), rel=1e-10)


def test_state_is_per_element_not_shared():
    """The original shared one Adam state between tensors of different sizes;
    here two parameters updated together behave as if updated alone."""
    p1, g1, p2, g2 = np.ones(3), np.full(3, 2.0), np.ones(5), np.full(5, -1.0)
    Adam([(p1, g1), (p2, g2)], 0.1).step()
    q1, q2 = np.ones(3), np.ones(5)
    Adam([(q1, g1)], 0.1).step()
    Adam([(q2, g2)], 0.1).step()
    assert np.array_equal(p1, q1) and np.array_equal(p2, q2)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_float32_state_stays_float32(name):
    """The optimizer's own state (velocity, Adam moments) is float32 for
    float32 parameters, even with a float64 learning rate. (The parameters'
    dtype cannot change under an in-place update, so checking it would prove
    nothing; the arithmetic itself is checked bit for bit below.)"""
    p, g = np.ones(10, np.float32), np.full(10, 0.5, np.float32)
    opt = make_optimizer(name, [(p, g)], np.float64(0.01), momentum=0.9 if name == "sgd" else 0.0)
    opt.step()
    state = [a for s in opt.state for a in s.values()]
    assert state and all(a.dtype == np.float32 for a in state)


def test_bad_settings():
    p = [(np.ones(1), np.ones(1))]
    with pytest.raises(ConfigError, match="Nesterov"):
        SGD(p, 0.1, nesterov=True)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        make_optimizer("rmsprop", p, 0.1)


F32 = np.float32


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_arithmetic_is_float32(momentum, nesterov):
    """Bit for bit the float32 formula: a coefficient promoted to float64
    (np.float64(lr) kept as such, uint8 / 255 and the like) would compute in
    float64 and round once at the end, which differs in the last bit for many
    elements. The reference is written out here in float32 NumPy arithmetic,
    one rounding per operation, in the order the optimizer documents."""
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(1000).astype(np.float32), np.zeros(1000, np.float32)
    ref, v = p.copy(), np.zeros(1000, np.float32)
    opt = make_optimizer("sgd", [(p, g)], np.float64(0.01), momentum=momentum, nesterov=nesterov)
    lr, mu = 0.01, momentum
    for _ in range(3):
        g[...] = rng.standard_normal(1000).astype(np.float32)
        opt.step()
        if nesterov:                                           # lr (g + mu v) as lr mu (g / mu + v)
            v = v * F32(mu) + g
            ref = ref - (g * F32(1 / mu) + v) * F32(lr * mu)
        elif momentum:
            v = v * F32(mu) + g                                # (1000,) float32 throughout
            ref = ref - v * F32(lr)
        else:
            ref = ref - g * F32(lr)
        assert ref.dtype == np.float32
    assert np.array_equal(p, ref)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_arithmetic_is_float32(decoupled):
    """Adam and AdamW, bit for bit against float32 arithmetic written out:
    bias corrections folded into one step size and one eps (Python floats,
    rounded to float32 once, as NumPy 2 does with weak scalars)."""
    rng = np.random.default_rng(1)
    p, g = rng.standard_normal(1000).astype(np.float32), np.zeros(1000, np.float32)
    ref, m, v = p.copy(), np.zeros(1000, np.float32), np.zeros(1000, np.float32)
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.05
    opt = make_optimizer("adamw" if decoupled else "adam", [(p, g)], np.float64(lr), weight_decay=wd)
    for t in range(1, 4):
        g[...] = rng.standard_normal(1000).astype(np.float32)
        opt.step()
        c2 = math.sqrt(1 - b2 ** t)
        step, eps_hat = lr * c2 / (1 - b1 ** t), eps * c2
        if decoupled:
            ref = ref * F32(1 - lr * wd)
            grad = g
        else:
            grad = g + ref * F32(wd)
        m = m * F32(b1) + grad * F32(1 - b1)
        v = v * F32(b2) + (grad * grad) * F32(1 - b2)
        ref = ref - (m / (np.sqrt(v) + F32(eps_hat))) * F32(step)
        assert ref.dtype == m.dtype == v.dtype == np.float32
    assert np.array_equal(p, ref)


@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.0, False, 1e-3), (0.9, False, 0.0),
                                                 (0.9, True, 0.0), (0.9, True, 5e-4), (0.5, False, 1e-2)])
def test_sgd_kernel_bit_identical_to_slow_twin(rng, momentum, nesterov, wd):
    """The chunked update (fewer passes) against its slow twin on whole
    arrays, float32, 5 steps, more than one chunk: the same bits."""
    from numpynets.optim.optimizers import CHUNK, sgd_update_reference

    n = 2 * CHUNK + 1234
    p = rng.standard_normal(n).astype(np.float32)
    g = np.zeros(n, dtype=np.float32)
    p_ref, v_ref = p.copy(), np.zeros(n, dtype=np.float32)
    opt = SGD([(p, g)], 0.05, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    for step in range(5):
        g[:] = rng.standard_normal(n).astype(np.float32)
        opt.step()
        sgd_update_reference(p_ref, g, v_ref, 0.05, momentum, nesterov, wd)
        assert p.dtype == np.float32
        assert np.array_equal(p, p_ref), step
        if momentum:
            assert np.array_equal(opt.state[0]["velocity"], v_ref), step
