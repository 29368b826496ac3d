"""Checking numbers read from files and flags: the one home for it.

Every number that comes from outside (a JSON file, a model file's metadata,
a command-line flag, a log) goes through :func:`whole` or :func:`real`
before it is used: its type (JSON ``true`` is not 1, ``3.7`` is not a whole
number, ``null`` is not a number), its finiteness (no NaN, no infinity) and
its range are checked, and a bad value is a one-line error of the project's
own type (:class:`~numpynets.errors.ConfigError` unless the caller names
another) that says what was wrong and what would be right.

Whole numbers are also bounded above (:data:`MAX_WHOLE` unless the caller
gives a tighter bound): a 400-digit integer is a damaged file, not a size,
and letting it through only moves the ``OverflowError`` to a later and more
expensive moment (epoch 2, after the run folder exists).
"""

from __future__ import annotations

import math
import numbers

from .errors import ConfigError

MAX_WHOLE = 2**63 - 1     # int64: the largest size NumPy takes; a 400-digit integer is damage


def whole(value, name: str, low: int | None = 1, high: int | None = MAX_WHOLE, error=ConfigError) -> int:
    """``value`` as a Python int, or ``error``: a whole number (an int, or an
    integral float such as ``3.0``; never a bool, ``3.7``, NaN or infinity)
    with ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a whole number, got {show(value)}")
    if isinstance(value, numbers.Integral):
        v = int(value)
    else:
        f = float(value)
        if not math.isfinite(f) or f != int(f):
            raise error(f"{name} must be a whole number, got {show(value)}")
        v = int(f)
    _in_range(v, name, low, high, error)
    return v


def real(value, name: str, low: float | None = None, high: float | None = None,
         low_open: bool = False, error=ConfigError) -> float:
    """``value`` as a finite Python float, or ``error``: a number (int or
    float, never a bool or None) with ``low <= value <= high`` (``low <
    value`` when ``low_open``). Integers too large for a float are refused,
    not turned into ``inf``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a number, got {show(value)}")
    try:
        f = float(value)
    except OverflowError:
        raise error(f"{name} is too large ({show(value)})") from None
    if not math.isfinite(f):
        raise error(f"{name} must be a finite number, got {show(value)}")
    if low is not None and (f <= low if low_open else f < low):
        raise error(f"{name} must be {'>' if low_open else '>='} {low}, got {show(value)}")
    if high is not None and f > high:
        raise error(f"{name} must be <= {high}, got {show(value)}")
    return f


def _in_range(v: int, name: str, low, high, error) -> None:
    if low is not None and v < low:
        raise error(f"{name} must be >= {low}, got {show(v)}")
    if high is not None and v > high:
        raise error(f"{name} must be <= {high:,}, got {show(v)}")


def show(value, limit: int = 60) -> str:
    """A short repr for messages (one line, at most ``limit`` characters): a
    4000-digit integer is shown by its length, a huge or deeply nested value
    cut, never printed whole."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        v = int(value)
        if abs(v) >= 10 ** 15:
            return f"a {len(str(abs(v))) if abs(v) < 10 ** 4000 else 'more than 4000'}-digit integer"
        return str(v)
    try:
        text = repr(value)
    except (RecursionError, ValueError):                # nested too deeply; an int too long to print
        return "a value too large to show"
    return text if len(text) <= limit else text[:limit - 3] + "..."
