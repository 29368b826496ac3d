"""Validation of the architecture options the built-in models share."""

from ..errors import ConfigError


def check_dropout(p) -> bool:
    """True when a dropout of ``p`` is wanted (p > 0); p must be in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ConfigError(f"--dropout must be a number in [0, 1) (the fraction of units dropped), got {p!r}")
    return p > 0
