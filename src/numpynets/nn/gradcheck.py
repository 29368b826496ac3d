"""Finite-difference gradient checks, in float64, against a random upstream
gradient.

For a layer ``y = f(x; θ)`` and a fixed random ``g`` (same shape as ``y``),
the scalar ``L = sum(g * f(x; θ))`` has ``dL/dx = backward(g)`` and
``dL/dθ = grads[θ]``. Central differences ``(L(θ+h) - L(θ-h)) / 2h`` give
the reference. A random ``g`` (never all ones) catches transposes and wrong
reductions that a uniform upstream gradient would hide.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def numerical_gradient(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """dF/dx for scalar ``f()`` that reads ``x`` (perturbed in place)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        grad[it.multi_index] = central_difference(f, x, it.multi_index, h)
    return grad


def central_difference(f, x: np.ndarray, i, h: float = 1e-6) -> float:
    """(f(x + h e_i) - f(x - h e_i)) / 2h for one element ``i`` of ``x``
    (perturbed in place and restored): sample a few elements of a large
    parameter instead of all of them."""
    old = x[i]
    x[i] = old + h
    fp = f()
    x[i] = old - h
    fm = f()
    x[i] = old
    return (fp - fm) / (2 * h)


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a| + |b|, tiny): scale-free, 0 when both vanish."""
    num = np.abs(a - b).max() if a.size else 0.0
    den = max((np.abs(a) + np.abs(b)).max() if a.size else 0.0, 1e-12)
    return float(num / den)


def check_layer(layer, x: np.ndarray, rng: np.random.Generator | None = None, training: bool = True,
                h: float = 1e-6) -> dict[str, float]:
    """Relative errors of ``layer.backward`` against finite differences for
    the input (key ``"x"``) and every parameter: ``{"x": e, "W": e, ...}``,
    each below ~1e-7 for a correct backward. ``x (N, *in_shape)`` must be
    float64 (the layer's parameters are switched to float64 copies); ``rng``
    draws the random upstream gradient ``g (N, *out_shape)`` (seed 0 when
    None)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise ConfigError("check_layer: gradient checks run in float64; pass x as a float64 array "
                          "(x.astype(np.float64))")
    rng = np.random.default_rng(0) if rng is None else rng
    layer.needs_input_grad = True
    for k in list(layer.params):                   # bind: composite layers pass views down
        p64 = layer.params[k].astype(np.float64)
        layer.bind(k, p64, np.zeros_like(p64))
    y = layer.forward(x, training)
    g = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(g * layer.forward(x, training)))

    layer.forward(x, training)
    for gr in layer.grads.values():
        gr.fill(0)
    dx = layer.backward(g)
    analytic = {"x": dx, **{k: v.copy() for k, v in layer.grads.items()}}
    errors = {"x": rel_error(dx, numerical_gradient(loss, x, h))}
    for k, p in layer.params.items():
        errors[k] = rel_error(analytic[k], numerical_gradient(loss, p, h))
    return errors
