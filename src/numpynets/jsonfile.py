"""Reading the JSON files users hand us (architectures, schedules), with
one-line errors that name the file."""

from __future__ import annotations

import json

from .errors import ConfigError


def read_json(path, what: str):
    """The parsed contents of ``path``; ``what`` names the file's role in errors."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
        raise ConfigError(f"{path}: not valid JSON ({reason}{where}); fix the file") from None
