"""The error function on arrays (NumPy has none), for the exact GELU.

For |x| <= 6 we sum the series (Abramowitz & Stegun 7.1.6)

    erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_{n>=0} 2^n x^(2n+1) / (1*3*5*...*(2n+1)),

whose terms are all positive (no cancellation, unlike the Taylor series),
until the last term is below the dtype's precision; beyond 6,
``1 - erf(|x|) < 3e-17`` and erf is +-1. It computes in the input's dtype.
:func:`erf_reference` (``math.erf`` element by element) is its slow twin.
"""

from __future__ import annotations

import math

import numpy as np


def _series(a: np.ndarray) -> np.ndarray:
    """erf(a) for a >= 0 (a <= 6), summed until every term is negligible."""
    a2 = a * a
    term = a.copy()                                   # n = 0: a
    total = a.copy()
    eps = np.finfo(a.dtype).eps
    n = 0
    while True:                                       # term_n = term_{n-1} * 2 a^2 / (2n + 1)
        n += 1
        term *= a2 * (2.0 / (2 * n + 1))
        total += term
        if n >= 4 and not np.any(term > eps * total):
            break
    total *= np.exp(-a2) * (2.0 / math.sqrt(math.pi))
    return np.minimum(total, 1.0, out=total)


def erf(x: np.ndarray) -> np.ndarray:
    # the series needs ~2a^2 terms: sum the few large |x| (beyond 2) apart,
    # so that they do not set the number of passes over the whole array
    a = np.minimum(np.abs(x), 6.0).astype(x.dtype, copy=False).reshape(-1)   # erf is odd
    big = np.flatnonzero(a > 2.0)
    small = a.copy()
    small[big] = 0.0
    out = _series(small)
    if big.size:
        out[big] = _series(a[big])
    return np.copysign(out.reshape(x.shape), x).astype(x.dtype, copy=False)


def erf_reference(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)
