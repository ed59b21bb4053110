"""Could the run support a verdict built on missing evidence? The thresholds, in one place.

A violation proved by evidence that is there — two charges, an undo without its step, a
wrong order or outcome seen — stands whatever the machine was doing. One inferred from
evidence that is *not* there — no event for a completed step, no record in a snapshot,
a saga that never finished — proves something only if the harness was in a position to
see it. The history says whether it was (the observe side records it; this module only
reads the index):

- ``Phase("evidence-settled", {"drained", "cap_reached", "events_last_s", "waited_s",
  "pending"})``: did the observation channels go quiet before the snapshot, or did the
  wait's cap cut them off while evidence was still arriving?
- ``machine`` lines (:class:`~saga_harness.history.index.MachineSample`), about one a
  second: the harness's event-loop lag and the CPU the SUT got.

A history that records neither (older runs, hand-built histories) is taken as complete,
as it always was: its verdicts do not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from saga_harness.history import History
from saga_harness.history.index import MachineSample

# -- what "starved" means ------------------------------------------------------------------
# The harness polls each saga every 200 ms and timestamps what it receives on arrival: an
# event loop waking more than 250 ms late (p99 over a sample's interval) has fallen a whole
# poll behind, so a quiet window it measured may be its own delay, not the system's.
STARVED_LOOP_LAG_P99_MS = 250.0
# The SUT is starved of CPU when the machine is saturated (all cores ≥ 90 % busy) and the
# SUT, with work to do, gets under half of that: other work holds the cores it needs, so its
# slowness says nothing of the system. (A SUT saturating the machine itself is slow, not
# starved: its own limit, which a verdict may judge.) "Work to do": at least 1 % of a core —
# an idle SUT is not starved, and a monitor's first interval reads every process at 0.
SATURATED_CPU_PCT = 90.0
STARVED_SUT_SHARE = 0.5
SUT_BUSY_PCT = 1.0
# Where the kernel says how long the SUT's processes waited in its run queue for a CPU they were
# ready to use (Linux's schedstat), that is the measure: starved when they waited at least a quarter
# of a core-second a second and at least as long as they ran — other work held the cores they needed.
# An idle SUT (a stuck saga leaves it idle) waits for nothing, however busy the machine: the share
# rule above would call it starved, and a stuck saga could never be proved stuck on a busy machine.
STARVED_WAIT_PCT = 25.0
# A run is starved when more than a fifth of its sampled time was, and at least 3 s of it: a
# few slow seconds (a start-up, a GC, a burst) are within what the deadlines absorb; a fifth
# of the run is not. (Two samples of a 2 s run decide nothing.)
STARVED_RUN_SHARE = 0.2
STARVED_MIN_S = 3.0

# Phases the observe side records (harness.runner / harness.lifecycle).
SETTLED = "evidence-settled"
WATCH_ENDS = ("converged", "deadline-passed", "converged-after-load")  # the harness stops polling status
EXTENDED = "deadline-extended"


def starved(sample: MachineSample) -> bool:
    """Was the harness or the SUT starved over this sample's interval?"""
    if sample.loop_lag_p99_ms is not None and sample.loop_lag_p99_ms > STARVED_LOOP_LAG_P99_MS:
        return True
    busy, sut, cores = sample.cpu_busy_pct, sample.sut_cpu_pct, sample.cores
    if sample.sut_wait_pct is not None:
        return sample.sut_wait_pct >= STARVED_WAIT_PCT and sample.sut_wait_pct >= (sut or 0.0)
    if busy is None or sut is None or not cores:
        return False
    # sut_cpu_pct counts one core as 100; cpu_busy_pct the whole machine.
    return busy >= SATURATED_CPU_PCT and sut >= SUT_BUSY_PCT and sut / cores < STARVED_SUT_SHARE * busy


@dataclass(frozen=True)
class Observation:
    """What the history says of its own completeness (see the module's docstring)."""

    settled: Mapping[str, Any] | None = None  # the evidence-settled phase's detail; None: not recorded
    sampled_s: float = 0.0  # time covered by machine samples
    starved_s: float = 0.0  # of which starved
    worst_lag_ms: float | None = None  # the highest loop-lag p99 sampled
    watch_end: float | None = None  # wall time the harness stopped polling status (else the history's end)
    deadline_s: float | None = None  # the convergence deadline, where the history records it
    extensions: int = 0  # times the deadline was extended for sagas still progressing
    pending: dict[str, int] = field(default_factory=dict)  # what the SUT said was still pending, per component
    starved_spans: tuple[tuple[float, float], ...] = ()  # (from, to) wall times of the starved samples

    def clear_s(self, start: float, end: float) -> float:
        """Seconds of [start, end] the machine was not starved (time no sample covers counts as clear,
        as a history without samples is taken as complete)."""
        hungry = sum(max(0.0, min(end, b) - max(start, a)) for a, b in self.starved_spans)
        return max(0.0, end - start - hungry)

    @property
    def drained(self) -> bool:
        """Did the evidence settle before the snapshot? Not when the wait ended undrained *and* something
        shows evidence was still on its way: events in the last second, a backlog the system reported,
        or two last snapshots that differed. (A system with no drain signal whose stream went quiet
        has drained; a history that does not say — an older run — is taken as drained.)"""
        d = self.settled
        if d is None or d.get("drained", True) is True:
            return True
        arriving = _positive(d.get("events_last_s"))
        backlog = any(v > 0 for v in self.pending.values())
        unstable = d.get("snapshots_agreed") is False
        return not (arriving or backlog or unstable)

    @property
    def starved(self) -> bool:
        return self.starved_s >= STARVED_MIN_S and self.starved_s > STARVED_RUN_SHARE * self.sampled_s

    @property
    def complete(self) -> bool:
        """May absent evidence be read as absence? (Drained, and not starved.)"""
        return self.drained and not self.starved

    @property
    def reason(self) -> str | None:
        """Why absent evidence proves nothing in this run (None: it does)."""
        parts = []
        if not self.drained:
            d = self.settled or {}
            pending = ", ".join(f"{k}={v}" for k, v in sorted(self.pending.items()) if v)
            cap = " (the wait's cap was reached)" if d.get("cap_reached") else ""
            parts.append(
                f"evidence still arriving when observation ended: {_num(d.get('events_last_s'), 'g')} events in "
                f"the last second after waiting {_num(d.get('waited_s'), '.1f')} s{cap}"
                + (f"; pending: {pending}" if pending else "")
                + ("; the last two snapshots differed" if d.get("snapshots_agreed") is False else "")
            )
        if self.starved:
            share = 100 * self.starved_s / self.sampled_s
            lag = f"; event-loop lag p99 up to {self.worst_lag_ms:.0f} ms" if self.worst_lag_ms is not None else ""
            parts.append(
                f"the machine was starved for {self.starved_s:.0f} of {self.sampled_s:.0f} s ({share:.0f} % of the "
                f"run, above {100 * STARVED_RUN_SHARE:.0f} %){lag}: the harness's loop late by more than "
                f"{STARVED_LOOP_LAG_P99_MS:.0f} ms, or the CPU ≥ {SATURATED_CPU_PCT:.0f} % busy with the SUT getting "
                f"under {100 * STARVED_SUT_SHARE:.0f} % of it"
            )
        if not parts:
            return None
        return "; ".join(parts) + " — rerun on a quieter machine (fewer parallel jobs), or give it a longer deadline"

    def to_json(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "drained": self.drained,
            "starved": self.starved,
            "sampled_s": round(self.sampled_s, 3),
            "starved_s": round(self.starved_s, 3),
            "worst_lag_ms": self.worst_lag_ms,
            "extensions": self.extensions,
            "pending": dict(self.pending),
            "reason": self.reason,
        }


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _num(value: Any, spec: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return "?"


def observe(history: History) -> Observation:
    """Read the history's account of its own completeness (linear in its phases and samples)."""
    settled: Mapping[str, Any] | None = None
    watch_end = deadline = None
    extensions = 0
    for wall, name, detail in history.marks:
        if name == SETTLED:
            settled = detail  # the last one counts: a pytest run judges again after more sagas
        elif name in WATCH_ENDS:
            watch_end = wall
            deadline = _seconds(detail.get("deadline_s"), deadline)
        elif name == EXTENDED:
            extensions += 1
            deadline = _seconds(detail.get("deadline_s"), deadline)
    sampled = hungry = 0.0
    worst: float | None = None
    spans: list[tuple[float, float]] = []
    for sample in history.machine:
        sampled += sample.interval_s
        if starved(sample):
            hungry += sample.interval_s
            spans.append((sample.wall - sample.interval_s, sample.wall))
        if sample.loop_lag_p99_ms is not None:
            worst = sample.loop_lag_p99_ms if worst is None else max(worst, sample.loop_lag_p99_ms)
    pending_raw = (settled or {}).get("pending")
    pending = (
        {str(k): int(v) for k, v in pending_raw.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if isinstance(pending_raw, Mapping)
        else {}
    )
    return Observation(settled, sampled, hungry, worst, watch_end, deadline, extensions, pending, tuple(spans))


def _seconds(value: Any, default: float | None) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else default
