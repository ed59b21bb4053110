"""Which of two facts happened first, judged from evidence the harness owns.

The one place that orders facts (forward steps, compensations, where a saga
failed), so a finer judgement — across sinks, by causality — changes here only.

Each fact is an interval of the harness's timeline, the line positions of the
merged history (:class:`~saga_harness.history.Evidence`: it became true after
line ``after``, by line ``position``). A fact is before another when its
interval ends before the other's begins: events by their arrival order; an
answer inside its request's round trip; a read or a status since the last
observation that did not show it. Two facts whose intervals overlap — two
steps proved by one answer, two reads taken together — have no known order.

A producer's clock never decides an order (CloudEvent times are often to the
second, and clocks drift), but a strict contradiction between it and the
arrival order leaves the order unknown rather than proved: a delivery delayed
on the way to the harness's sink reorders arrivals, not what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

from saga_harness.history import Evidence

Order = Literal["before", "after", "unknown"]


@lru_cache(maxsize=4096)
def _parse(time: str) -> float | None:
    # Cached: timestamps repeat (to the second, often), and an order is judged per saga.
    try:
        return datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _produced(ev: Evidence) -> float | None:
    return _parse(ev.time) if ev.time else None


def compare(a: Evidence, b: Evidence) -> Order:
    """``before``: ``a`` certainly happened before ``b``; ``after``: the other way; else ``unknown``."""
    if a.position <= b.after:
        arrival: Order = "before"
    elif b.position <= a.after:
        arrival = "after"
    else:
        return "unknown"
    ta, tb = _produced(a), _produced(b)
    if ta is not None and tb is not None and (ta > tb if arrival == "before" else ta < tb):
        return "unknown"
    return arrival


def earliest(evidence: Sequence[Evidence]) -> Evidence:
    """The first observation of a fact (the one known true soonest)."""
    if len(evidence) == 1:
        return evidence[0]
    return min(evidence, key=lambda e: (e.position, e.after))


@dataclass(frozen=True)
class Ordering:
    """How facts expected in a given order were observed."""

    status: Literal["ok", "violated", "unknown"]
    observed: tuple[str, ...]  # the names in the order they were observed (ties: as expected)
    reversed_pairs: tuple[tuple[str, str], ...]  # (expected first, expected second) proved the other way round
    evidence: tuple[str, ...]  # the lines that show it

    @property
    def violated(self) -> bool:
        return self.status == "violated"


def in_order(expected: Sequence[tuple[str, Evidence]]) -> Ordering:
    """Were the facts (name, first evidence) in ``expected`` observed in that order? ``violated``
    when some pair is proved the other way round; ``unknown`` when some pair cannot be ordered
    and none is proved wrong; else ``ok``."""
    if _plainly_in_order([e for _n, e in expected]):
        return Ordering("ok", tuple(n for n, _e in expected), (), tuple(e.ref for _n, e in expected))
    order = sorted(range(len(expected)), key=lambda i: (expected[i][1].position, i))
    observed = tuple(expected[i][0] for i in order)
    refs = tuple(expected[i][1].ref for i in order)
    wrong: list[tuple[str, str]] = []
    unknown = False
    for i, (name_a, a) in enumerate(expected):
        for name_b, b in expected[i + 1 :]:
            seen = compare(a, b)
            if seen == "after":
                wrong.append((name_a, name_b))
            elif seen == "unknown":
                unknown = True
    status: Literal["ok", "violated", "unknown"] = "violated" if wrong else "unknown" if unknown else "ok"
    return Ordering(status, observed, tuple(wrong), refs)


def _plainly_in_order(evs: list[Evidence]) -> bool:
    """The common case, in linear time: each fact before the next by arrival (so every pair
    is, intervals being ordered transitively), and producer times, if all given, never decreasing."""
    for a, b in zip(evs, evs[1:], strict=False):
        if a.position > b.after:
            return False
    times = [e.time for e in evs]
    if all(t is None for t in times):
        return True
    if any(t is None for t in times):
        return False
    if all(t == times[0] for t in times):
        return True
    parsed = [_parse(t) for t in times]  # type: ignore[arg-type] - checked above
    return all(x is not None and y is not None and x <= y for x, y in zip(parsed, parsed[1:], strict=False))
