"""From a run directory to the report's figures: one streaming pass over the history.

Pure data: per-second throughput and in-flight counts, fault windows, time to
converge, outcomes by trigger, and the history entries that concern each saga a
violation names (for its swimlane). Each line is read through its record class
(:func:`~saga_harness.history.parse`); the lines of a traced saga are kept typed
(:class:`~saga_harness.history.Entry`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from saga_harness.history import (
    CapturedEvent,
    Completion,
    Entry,
    FaultChange,
    Invoke,
    Record,
    StatusSeen,
    from_line,
    parse,
    read_history,
)

# Where an event names its saga when the report has no model to ask: the CloudEvent
# extension first, then the data fields the bundled systems use.
EVENT_SAGA_FIELDS = ("saga_id", "trip_id", "order_id")


@dataclass(frozen=True)
class FaultSpan:
    """A fault window on the run's clock (seconds since the history's first line)."""

    id: str
    kind: str
    target: str
    start: float
    end: float


@dataclass
class Figures:
    start: float | None = None
    end: float | None = None
    started_per_s: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    finished_per_s: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    latency_ms: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))  # request latencies
    faults: list[FaultSpan] = field(default_factory=list)
    converge_s: list[float] = field(default_factory=list)
    by_trigger: dict[str, dict[str, int]] = field(default_factory=dict)
    traces: dict[str, list[Entry]] = field(default_factory=dict)
    entries: int = 0

    @property
    def duration(self) -> float:
        return max(0.0, (self.end or 0) - (self.start or 0))


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


def compute(run_dir: Path, trace_sagas: set[str], max_trace: int = 400) -> Figures:
    """Everything the report plots, in one pass over the run's history."""
    f = Figures()
    invoked: dict[tuple[str, int], float] = {}
    first_invoke: dict[str, float] = {}
    saga_key: dict[str, str] = {}
    key_trigger: dict[str, str] = {}
    finished: set[str] = set()
    open_faults: dict[str, tuple[dict[str, object], float]] = {}
    for line in read_history(run_dir):
        f.entries += 1
        record = parse(line)
        if record is None:
            continue  # a type this version does not know
        wall = line.get("wall", 0.0)
        if f.start is None:
            f.start = wall
        f.end = wall
        sec = int(wall - f.start)
        if isinstance(record, Invoke):
            invoked[(line.get("process", ""), record.op)] = wall
            if record.key and record.key not in first_invoke:
                first_invoke[record.key] = wall
                key_trigger[record.key] = record.trigger or "?"
                f.started_per_s[sec] += 1
        elif isinstance(record, Completion):
            t0 = invoked.pop((line.get("process", ""), record.op), None)
            if t0 is not None:
                f.latency_ms[sec].append((wall - t0) * 1000)
            if record.outcome == "ok" and record.saga_id and record.key:
                saga_key.setdefault(record.saga_id, record.key)
        elif isinstance(record, StatusSeen) and record.outcome and record.saga_id not in finished:
            finished.add(record.saga_id)
            f.finished_per_s[sec] += 1
            key = saga_key.get(record.saga_id)
            if key in first_invoke:
                f.converge_s.append(wall - first_invoke[key])
                trig = f.by_trigger.setdefault(key_trigger.get(key, "?"), {})
                trig[record.outcome] = trig.get(record.outcome, 0) + 1
        elif isinstance(record, FaultChange):
            fid = str(record.fault.get("id"))
            if record.phase == "start":
                open_faults[fid] = (record.fault, wall - f.start)
            elif fid in open_faults:
                fault, start = open_faults.pop(fid)
                f.faults.append(_span(fault, start, wall - f.start))
        if trace_sagas and isinstance(record, (CapturedEvent, StatusSeen, Completion, Invoke)):
            sid = saga_of(record)
            if sid in trace_sagas and len(f.traces.setdefault(sid, [])) < max_trace:
                f.traces[sid].append(from_line(line))  # type: ignore[arg-type] - parsed above, not None
    for fault, start in open_faults.values():
        f.faults.append(_span(fault, start, f.duration))
    return f
