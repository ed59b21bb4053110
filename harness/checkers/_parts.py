"""A step's evidence by part: a step done once per order line (``per``) is judged per line."""

from __future__ import annotations

from collections.abc import Sequence

from saga_harness.history import Evidence


def by_part(evidence: Sequence[Evidence]) -> dict[str | None, list[Evidence]]:
    """The evidence grouped by the part of the step it proves (None: the whole step)."""
    out: dict[str | None, list[Evidence]] = {}
    for e in evidence:
        out.setdefault(e.part, []).append(e)
    return out


def label(part: str | None) -> str:
    """How a part is named in a message ("" for the whole step)."""
    return "" if part is None else f" (part {part})"
