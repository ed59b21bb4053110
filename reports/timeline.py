"""From a run directory to the report's figures: one streaming pass over the history.

Pure data: per-second throughput and in-flight counts, fault windows, time to
converge, outcomes by trigger, and the history lines that concern each saga a
violation names (for its swimlane).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saga_harness.history import read_history


@dataclass
class Figures:
    start: float | None = None
    end: float | None = None
    started_per_s: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    finished_per_s: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    latency_ms: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))  # request latencies
    faults: list[dict[str, Any]] = field(default_factory=list)
    converge_s: list[float] = field(default_factory=list)
    by_trigger: dict[str, dict[str, int]] = field(default_factory=dict)
    traces: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    entries: int = 0

    @property
    def duration(self) -> float:
        return max(0.0, (self.end or 0) - (self.start or 0))


def _saga_of(entry: dict[str, Any]) -> str | None:
    if entry.get("saga_id"):
        return str(entry["saga_id"])
    event = entry.get("event")
    if isinstance(event, dict):
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        for key in ("sagaid",):
            if event.get(key):
                return str(event[key])
        for key in ("saga_id", "trip_id", "order_id"):
            if data.get(key):
                return str(data[key])
    return None


def compute(run_dir: Path, trace_sagas: set[str], max_trace: int = 400) -> Figures:
    """Everything the report plots, in one pass over the run's history."""
    f = Figures()
    invoked: dict[tuple[str, Any], float] = {}
    first_invoke: dict[str, float] = {}
    saga_key: dict[str, str] = {}
    key_trigger: dict[str, str] = {}
    finished: set[str] = set()
    open_faults: dict[str, dict[str, Any]] = {}
    for entry in read_history(run_dir):
        f.entries += 1
        wall = entry.get("wall", 0.0)
        if f.start is None:
            f.start = wall
        f.end = wall
        sec = int(wall - f.start)
        kind = entry.get("type")
        if kind == "invoke":
            key = entry.get("key")
            invoked[(entry.get("process"), entry.get("op"))] = wall
            if key and key not in first_invoke:
                first_invoke[key] = wall
                key_trigger[key] = entry.get("trigger") or "?"
                f.started_per_s[sec] += 1
        elif kind in ("ok", "fail", "info"):
            t0 = invoked.pop((entry.get("process"), entry.get("op")), None)
            if t0 is not None:
                f.latency_ms[sec].append((wall - t0) * 1000)
            if kind == "ok" and entry.get("saga_id") and entry.get("key"):
                saga_key.setdefault(str(entry["saga_id"]), str(entry["key"]))
        elif kind == "status" and entry.get("outcome") and entry.get("saga_id") not in finished:
            sid = str(entry["saga_id"])
            finished.add(sid)
            f.finished_per_s[sec] += 1
            key = saga_key.get(sid)
            if key in first_invoke:
                f.converge_s.append(wall - first_invoke[key])
                trig = f.by_trigger.setdefault(key_trigger.get(key, "?"), {})
                trig[entry["outcome"]] = trig.get(entry["outcome"], 0) + 1
        elif kind == "fault":
            fault = entry.get("fault") or {}
            fid = str(fault.get("id"))
            if entry.get("phase") == "start":
                open_faults[fid] = {**fault, "start": wall - f.start}
            elif fid in open_faults:
                f.faults.append({**open_faults.pop(fid), "end": wall - f.start})
        if trace_sagas and kind in ("event", "status", "ok", "fail", "info", "invoke"):
            sid = _saga_of(entry)
            if sid in trace_sagas and len(f.traces.setdefault(sid, [])) < max_trace:
                f.traces[sid].append(entry)
    for fault in open_faults.values():
        f.faults.append({**fault, "end": f.duration})
    return f
