"""Reading the JSON users and files hand us (architectures, schedules, model
file headers and metadata, run configs), with one-line errors that name the
file.

:func:`loads` is the one strict JSON parser every reader uses. Beyond
``json.loads`` it refuses the ``NaN``/``Infinity`` literals Python accepts
(and numbers such as ``1e400`` that only parse to infinity), and turns the
two failures ``json`` lets escape into the caller's error: ``RecursionError``
from arrays nested ~100,000 deep, and the ``ValueError`` Python raises for
integers of more than 4,300 digits.
"""

from __future__ import annotations

import json
import math

from .errors import ConfigError


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str):
    raise _NotFinite(f"{name} is not a JSON number (write a finite number)")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise _NotFinite(f"{text[:40]} is too large for a number")
    return v


MAX_DIGITS = 1000      # an integer literal longer than this is damage, not data


def _bounded_int(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise _NotFinite(f"an integer of {len(text)} digits")
    return int(text)


def loads(text, what: str, error=ConfigError):
    """Parse JSON ``text`` (str or bytes) strictly; ``what`` starts the error
    message (e.g. ``"config.json: not valid JSON"``), ``error`` is its type."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                          parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise error(f"{what}: not valid JSON ({exc.msg} at line {exc.lineno}); fix the file") from None
    except _NotFinite as exc:
        raise error(f"{what}: not valid JSON ({exc}); fix the file") from None
    except UnicodeDecodeError:
        raise error(f"{what}: not valid JSON (not UTF-8 text); fix the file") from None
    except RecursionError:
        raise error(f"{what}: not valid JSON (nested too deeply); fix the file") from None
    except (ValueError, TypeError) as exc:        # e.g. bytes in an odd encoding
        raise error(f"{what}: not valid JSON ({str(exc)[:80]}); fix the file") from None


def read_json(path, what: str):
    """The parsed contents of ``path``; ``what`` names the file's role in errors."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid JSON (not UTF-8 text); fix the file") from None
    return loads(text, str(path))


def finite(obj):
    """``obj`` with every non-finite float replaced by ``None``, so that it
    can be written with ``allow_nan=False`` and read back by :func:`loads`."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
