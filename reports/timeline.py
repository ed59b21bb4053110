"""From a run directory to the report's figures: one streaming pass over the history.

Pure data: when sagas started and finished and how long requests took (the plots bin
them, with a bucket width fitted to the run's length), fault windows, time to
converge, outcomes by trigger, and the history entries that concern each saga a
finding names (for its swimlane). Each line is read through its record class
(:func:`~saga_harness.history.parse`); the lines of a traced saga are kept typed
(:class:`~saga_harness.history.Entry`).

The run's clock starts at the workload's start (the ``workload-start`` phase), not at the
history's first line: what came before it (the SUT starting, baseline snapshots) is
start-up, measured (:attr:`Figures.startup_s`) and left out of the plots. A history
without that phase starts at its first line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saga_harness.history import (
    CapturedEvent,
    Completion,
    Entry,
    FaultChange,
    Invoke,
    Phase,
    Record,
    StatusSeen,
    from_line,
    parse,
    read_history,
)

# Where an event names its saga when the report has no model to ask: the CloudEvent
# extension first, then the data fields the bundled systems use.
EVENT_SAGA_FIELDS = ("saga_id", "trip_id", "order_id")
WORKLOAD_START = "workload-start"  # the phase the run's clock starts at


@dataclass(frozen=True)
class FaultSpan:
    """A fault window on the run's clock (seconds since the workload started; negative: before it)."""

    id: str
    kind: str
    target: str
    start: float
    end: float


@dataclass
class Figures:
    """What the report plots. Times are unix seconds (``start``, ``end``, ``workload_start``) or
    seconds on the run's clock (:attr:`origin`: the workload's start)."""

    start: float | None = None  # the history's first line
    end: float | None = None  # its last
    workload_start: float | None = None  # the workload-start phase (None: not recorded)
    started: list[float] = field(default_factory=list)  # each saga's first request, run's clock
    finished: list[float] = field(default_factory=list)  # each saga's first terminal status, run's clock
    latency: list[tuple[float, float]] = field(default_factory=list)  # (answered at, request latency s)
    faults: list[FaultSpan] = field(default_factory=list)
    converge_s: list[float] = field(default_factory=list)
    by_trigger: dict[str, dict[str, int]] = field(default_factory=dict)
    traces: dict[str, list[Entry]] = field(default_factory=dict)
    entries: int = 0

    @property
    def origin(self) -> float:
        """The run clock's zero, in unix seconds: the workload's start, else the history's first line."""
        return self.workload_start if self.workload_start is not None else (self.start or 0.0)

    @property
    def startup_s(self) -> float:
        """How long the run took to reach its workload (0 when the history does not say)."""
        return max(0.0, self.origin - (self.start if self.start is not None else self.origin))

    @property
    def duration(self) -> float:
        """From the workload's start to the history's last line."""
        return max(0.0, (self.end or 0) - self.origin)


def saga_of(record: Record) -> str | None:
    """The saga a record concerns, when it says so."""
    if isinstance(record, (Completion, StatusSeen)):
        return record.saga_id or None
    if isinstance(record, CapturedEvent):
        event = record.event
        if event.get("sagaid"):
            return str(event["sagaid"])
        data = event.get("data")
        if isinstance(data, dict):
            for key in EVENT_SAGA_FIELDS:
                if data.get(key):
                    return str(data[key])
    return None


def _span(fault: dict[str, object], start: float, end: float) -> FaultSpan:
    return FaultSpan(str(fault.get("id")), str(fault.get("kind")), str(fault.get("target")), start, end)


def _trace(f: Figures, saga_id: str, line: dict[str, Any], max_trace: int) -> None:
    lines = f.traces.setdefault(saga_id, [])
    if len(lines) < max_trace:
        lines.append(from_line(line))  # type: ignore[arg-type] - a known type: parsed before


def compute(run_dir: Path, trace_sagas: set[str], max_trace: int = 400) -> Figures:
    """Everything the report plots, in one pass over the run's history."""
    f = Figures()
    invoked: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}  # a request awaiting its answer
    first_invoke: dict[str, float] = {}
    saga_key: dict[str, str] = {}
    key_trigger: dict[str, str] = {}
    finished: set[str] = set()
    started: list[float] = []
    ended: list[float] = []
    latency: list[tuple[float, float]] = []
    faults: list[tuple[dict[str, object], float, float]] = []
    open_faults: dict[str, tuple[dict[str, object], float]] = {}
    lo, hi = math.inf, -math.inf
    for line in read_history(run_dir):
        f.entries += 1
        wall = line.get("wall", 0.0)
        if wall < lo:
            lo = wall
        if wall > hi:
            hi = wall
        if line.get("type") == "event":  # most lines: plotted only in a traced saga's swimlane
            if trace_sagas:
                sid = saga_of(CapturedEvent.from_json(line))
                if sid in trace_sagas:
                    _trace(f, sid, line, max_trace)
            continue
        record = parse(line)
        if record is None:
            continue  # a type this version does not know
        if isinstance(record, Invoke):
            invoked[(line.get("process", ""), record.op)] = (wall, line)
            if record.key and record.key not in first_invoke:
                first_invoke[record.key] = wall
                key_trigger[record.key] = record.trigger or "?"
                started.append(wall)
        elif isinstance(record, Completion):
            sent = invoked.pop((line.get("process", ""), record.op), None)
            if sent is not None:
                latency.append((wall, wall - sent[0]))
                if record.saga_id in trace_sagas:  # the request a traced saga's answer answers
                    _trace(f, record.saga_id, sent[1], max_trace)
            if record.outcome == "ok" and record.saga_id and record.key:
                saga_key.setdefault(record.saga_id, record.key)
        elif isinstance(record, StatusSeen) and record.outcome and record.saga_id not in finished:
            finished.add(record.saga_id)
            ended.append(wall)
            key = saga_key.get(record.saga_id)
            if key in first_invoke:
                f.converge_s.append(wall - first_invoke[key])
                trig = f.by_trigger.setdefault(key_trigger.get(key, "?"), {})
                trig[record.outcome] = trig.get(record.outcome, 0) + 1
        elif isinstance(record, FaultChange):
            fid = str(record.fault.get("id"))
            if record.phase == "start":
                open_faults[fid] = (record.fault, wall)
            elif fid in open_faults:
                fault, start = open_faults.pop(fid)
                faults.append((fault, start, wall))
        elif isinstance(record, Phase) and record.name == WORKLOAD_START and f.workload_start is None:
            f.workload_start = wall
        if trace_sagas and isinstance(record, (StatusSeen, Completion)):
            sid = saga_of(record)
            if sid in trace_sagas:
                _trace(f, sid, line, max_trace)
    if f.entries:
        f.start, f.end = lo, hi
    t0 = f.origin
    for fault, start in open_faults.values():
        faults.append((fault, start, f.end or start))
    f.faults = [_span(fault, a - t0, b - t0) for fault, a, b in faults]
    f.started = [w - t0 for w in started]
    f.finished = [w - t0 for w in ended]
    f.latency = [(w - t0, s) for w, s in latency]
    return f
