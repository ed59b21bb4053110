"""Which of two facts happened first, judged from evidence the harness owns.

The one place that orders facts (forward steps, compensations), so a finer
judgement — across sinks, by causality — changes here only.

Each fact is an interval of the harness's timeline, the line positions of the
merged history (:class:`~saga_harness.history.Evidence`: it became true after
line ``after``, by line ``position``). A fact is before another when its
interval ends before the other's begins: an answer inside its request's round
trip; a read or a status since the last observation that did not show it; an
event at its arrival. Intervals that overlap — two steps proved by one answer,
two reads taken together — have no known order.

Where the harness saw two facts together (two per-saga reads at the end), the times
the model points the system's records to (``at``: ``/released_at``) order them, at
their resolution — the system's own record, chosen by the user, and fine enough to tell.

Events are the one thing the harness does not time itself: a system's delivery
brings them, and a bus that pushes side by side, or retries, reorders them. So
two events are ordered by their arrival only where nothing says otherwise:

- their producer's times, at the resolution they are written in (to the second:
  ``…:26Z``), either agree with the arrival order — then it stands — or contradict
  it — then the order is unknown: a producer's clock never decides alone;
- where those times cannot tell (the same second), the arrival order stands unless
  the model says deliveries reorder (``event_order = "time"``), or, by default
  (``"auto"``), the run itself shows it: an event stamped in a later tick arriving
  before one stamped in an earlier tick. ``"arrival"``: the events come in the order
  they happened (an event log read in order); the arrival order alone decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

from saga_harness.history import Evidence, History
from saga_harness.model import SagaModel

Order = Literal["before", "after", "unknown"]
_FRACTION = re.compile(r"T\d\d:\d\d:\d\d(?:\.(\d+))?")


@lru_cache(maxsize=8192)
def _window(time: str) -> tuple[float, float] | None:
    """The span a producer's time stands for, by the digits it is written with: ``…:26Z`` is
    somewhere in [26, 27); epoch seconds ``1796137346.99`` in [.99, 1.00)."""
    # Cached: timestamps repeat (to the second, often), and an order is judged per saga.
    try:
        start = float(time)
        digits = len(time.partition(".")[2]) if "e" not in time.lower() else 6
    except ValueError:
        try:
            start = datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
        m = _FRACTION.search(time)
        digits = len(m.group(1)) if m and m.group(1) else 0
    return start, start + 10.0**-digits


def _produced(ev: Evidence) -> tuple[float, float] | None:
    return _window(ev.time) if ev.time else None


def _by_producer(a: Evidence, b: Evidence) -> Order | None:
    """The producers' own order, where their times' resolution settles it (None: no times)."""
    wa, wb = _produced(a), _produced(b)
    if wa is None or wb is None:
        return None
    if wa[1] <= wb[0]:
        return "before"
    if wb[1] <= wa[0]:
        return "after"
    return "unknown"


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


class Orderer:
    """Orders facts of one history, by the model's ``event_order``."""

    def __init__(self, history: History, model: SagaModel) -> None:
        self.history = history
        self.policy = model.event_order
        self._reorders: bool | None = None  # does this run's delivery reorder events? (computed once, if asked)

    def compare(self, a: Evidence, b: Evidence) -> Order:
        """``before``: ``a`` certainly happened before ``b``; ``after``: the other way; else ``unknown``."""
        if a.position <= b.after:
            seen: Order = "before"
        elif b.position <= a.after:
            seen = "after"
        elif a.source != "event" and b.source != "event":
            # The harness saw them together (two reads at the end): the times the model points
            # the system's records to (`at`) tell, where their resolution settles it.
            producer = _by_producer(a, b)
            return producer if producer is not None else "unknown"
        else:
            return "unknown"
        if self.policy == "arrival" or a.source != "event" or b.source != "event":
            return seen
        producer = _by_producer(a, b)
        if producer is not None and producer != "unknown":
            return seen if producer == seen else "unknown"
        if self.policy == "time" or (producer is not None and self.reorders()):
            return "unknown"
        return seen

    def reorders(self) -> bool:
        """Does this run show its delivery reordering events: one stamped in a later tick
        arriving before one stamped in an earlier tick (the step evidence of every saga)?"""
        if self._reorders is None:
            self._reorders = _witness(
                e
                for rec in self.history.sagas.values()
                for kind in (rec.done, rec.undone)
                for evs in kind.values()
                for e in evs
            )
        return self._reorders

    def in_order(
        self, expected: Sequence[tuple[str, Evidence]], must: Callable[[str, str], bool] | None = None
    ) -> Ordering:
        """Were the facts (name, first evidence) in ``expected`` observed in that order? ``violated``
        when some pair is proved the other way round; ``unknown`` when some pair cannot be ordered
        and none is proved wrong; else ``ok``. ``must(a, b)``: does ``a`` have to come before ``b``
        (default: every earlier one before every later one)? Other pairs are not judged."""
        if self._plainly_in_order([e for _n, e in expected]):
            return Ordering("ok", tuple(n for n, _e in expected), (), tuple(e.ref for _n, e in expected))
        order = sorted(range(len(expected)), key=lambda i: (expected[i][1].position, i))
        observed = tuple(expected[i][0] for i in order)
        refs = tuple(expected[i][1].ref for i in order)
        wrong: list[tuple[str, str]] = []
        unknown = False
        for i, (name_a, a) in enumerate(expected):
            for name_b, b in expected[i + 1 :]:
                if must is not None and not must(name_a, name_b):
                    continue
                seen = self.compare(a, b)
                if seen == "after":
                    wrong.append((name_a, name_b))
                elif seen == "unknown":
                    unknown = True
        status: Literal["ok", "violated", "unknown"] = "violated" if wrong else "unknown" if unknown else "ok"
        return Ordering(status, observed, tuple(wrong), refs)

    def _plainly_in_order(self, evs: list[Evidence]) -> bool:
        """The common case, in linear time: each fact before the next by the harness's timeline (so
        every pair is, intervals being ordered transitively), and producer times, if given, never
        decreasing: nothing could contradict it."""
        for a, b in zip(evs, evs[1:], strict=False):
            if a.position > b.after:
                return False
        first = evs[0].time
        if all(e.time == first for e in evs):
            if first is None:
                return True
            # One tick for all: only the arrival orders the events among them.
            events = sum(1 for e in evs if e.since < 0)
            return events < 2 or self._arrival_trusted()
        windows = [_produced(e) for e in evs]
        if any(w is None for w in windows):
            return False
        tie = False
        stamped = list(zip(evs, windows, strict=True))
        for (a, wa), (b, wb) in zip(stamped, stamped[1:], strict=False):
            if wa[0] > wb[0]:  # type: ignore[index]
                return False  # the times may say otherwise: the pairwise judgement
            tie = tie or (wa[1] > wb[0] and a.since < 0 and b.since < 0)  # type: ignore[index]
        # Two events within one tick: only the arrival tells, and it may not.
        return not tie or self._arrival_trusted()

    def _arrival_trusted(self) -> bool:
        """May the arrival order events the producer's times cannot?"""
        return self.policy == "arrival" or (self.policy == "auto" and not self.reorders())


def _witness(evidence: Iterable[Evidence]) -> bool:
    """Is some event stamped in a later tick than another, yet arrived first? (A sweep over the
    ticks in time order: the latest arrival among the ticks that ended before this one began.)"""
    ticks: dict[tuple[float, float], list[int]] = {}  # tick -> [first arrival, last arrival]
    for e in evidence:
        if e.since >= 0 or (w := _produced(e)) is None:
            continue  # only events: the harness times the rest itself
        span = ticks.get(w)
        if span is None:
            ticks[w] = [e.position, e.position]
        else:
            span[0] = min(span[0], e.position)
            span[1] = max(span[1], e.position)
    by_start = sorted(ticks.items(), key=lambda t: t[0][0])
    by_end = sorted(ticks.items(), key=lambda t: t[0][1])
    latest, j = -1, 0
    for (start, _end), (first, _last) in by_start:
        while j < len(by_end) and by_end[j][0][1] <= start:
            latest = max(latest, by_end[j][1][1])
            j += 1
        if latest > first:
            return True
    return False
