"""Durations as people write them in options and scenario files: ``30s``, ``2m``, ``500ms``, ``90``."""

from __future__ import annotations

import re

from saga_harness.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float, option: str = "duration") -> float:
    """``"30s"``, ``"2m"``, ``"500ms"``, ``"90"`` (seconds) → seconds; a number is taken as seconds.

    Raises :class:`~saga_harness.errors.ConfigError` naming ``option`` for anything else.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    m = _DURATION.match(str(text))
    if not m:
        raise ConfigError(f"{option}: {text!r} is not a duration; write e.g. 30s, 2m or 500ms")
    return float(m.group(1)) * _UNIT[m.group(2) or "s"]
