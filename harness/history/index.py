"""One pass over a history, per saga: what the client saw, what the events prove.

The checkers read this index, never the raw lines, so all of them together
cost one streaming pass plus work proportional to the number of sagas.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from saga_harness.history.records import (
    CapturedEvent,
    Completion,
    Entry,
    FaultChange,
    Invoke,
    Meta,
    Phase,
    Snapshot,
    StatusSeen,
    from_line,
    parse,
)
from saga_harness.model import Match, SagaModel
from saga_harness.pointer import resolve


@dataclass(frozen=True, slots=True)
class Evidence:
    """One event that proves something about a saga."""

    ref: str  # "history.jsonl:123"
    event_id: str
    type: str
    time: str | None  # the producer's CloudEvent time
    position: int  # order of arrival in the history

    def produced_at(self) -> float:
        """The producer's time if it has one, else the arrival order (for sorting)."""
        if self.time:
            try:
                return datetime.fromisoformat(self.time.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
        return float(self.position)


@dataclass(slots=True)
class SagaRecord:
    saga_id: str
    keys: set[str] = field(default_factory=set)
    trigger: str | None = None
    first_invoke: float | None = None  # wall time of the first request for it
    statuses: list[tuple[float, str | None, str | None, str]] = field(default_factory=list)
    outcome: str | None = None
    outcome_at: float | None = None
    outcome_ref: str | None = None
    done: dict[str, list[Evidence]] = field(default_factory=dict)
    undone: dict[str, list[Evidence]] = field(default_factory=dict)
    # quantity -> role (plus/minus/equals) -> [(key, value, evidence)]
    terms: dict[str, dict[str, list[tuple[str | None, float, Evidence]]]] = field(default_factory=dict)


@dataclass
class KeyRecord:
    """Everything the client saw for one idempotency key."""

    key: str
    trigger: str | None = None
    first_invoke: float | None = None
    answers: list[tuple[str | None, int | None, str]] = field(default_factory=list)  # (saga_id, status, ref)
    requests: set[str] = field(default_factory=set)  # distinct request bodies (canonical JSON)


@dataclass
class History:
    """The index the checkers read."""

    sagas: dict[str, SagaRecord] = field(default_factory=dict)
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    snapshots: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    # State before this run's workload, when the SUT was not fresh (a shared pytest session).
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Entry] = field(default_factory=list)  # each fault window's start and stop (FaultChange)
    phases: dict[str, float] = field(default_factory=dict)  # run marker -> wall time it was first seen
    meta: Meta | None = None  # who the run is (the first meta line)
    entries: int = 0
    events: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    end: float | None = None
    # Every captured event with its history ref, in arrival order; None unless
    # build_index(..., keep_events=True): most checkers never need them and a
    # big history should not hold them twice.
    captured: list[tuple[str, dict[str, Any]]] | None = None

    def saga(self, saga_id: str) -> SagaRecord:
        rec = self.sagas.get(saga_id)
        if rec is None:
            rec = self.sagas[saga_id] = SagaRecord(saga_id)
        return rec


def _path(pointer: str) -> tuple[str, ...]:
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")) if pointer else ()


def _get(doc: Any, path: tuple[str, ...]) -> Any:
    # The hot path of indexing: a pointer pre-split into keys (lists indexed by digits).
    for part in path:
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
        if doc is None:
            return None
    return doc


@dataclass(frozen=True)
class _Compiled:
    role: str
    name: str
    match: Match
    where: tuple[tuple[tuple[str, ...], Any], ...]
    saga_id: tuple[str, ...]


def _compile(model: SagaModel) -> dict[str, list[_Compiled]]:
    return {
        etype: [
            _Compiled(role, name, m, tuple((_path(p), v) for p, v in m.where.items()), _path(m.saga_id))
            for role, name, m in entries
        ]
        for etype, entries in model.matches().items()
    }


def build_index(entries: Iterable[Mapping[str, Any]], model: SagaModel, keep_events: bool = False) -> History:
    """Index the lines of a history (from :func:`~saga_harness.history.read_history`, or
    :attr:`HistoryBuilder.entries <saga_harness.testing.HistoryBuilder>`) by saga, in one pass.

    Each line is read through its record class (:func:`~saga_harness.history.records.parse`),
    the same classes the writers use. With ``keep_events`` the index also keeps every
    captured event as recorded (``History.captured``), for checkers that judge the events themselves.
    """
    # The index only grows and holds no cycles: the cyclic GC would rescan it
    # again and again (quadratic in the history's size) for nothing.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(entries, model, keep_events)
    finally:
        if enabled:
            gc.enable()


def _build(lines: Iterable[Mapping[str, Any]], model: SagaModel, keep_events: bool = False) -> History:
    h = History()
    captured = h.captured = [] if keep_events else None
    lookup = _compile(model)
    terminal = model.states.terminal
    position = 0
    for line in lines:
        h.entries += 1
        wall = line.get("wall", 0.0)
        h.end = wall
        record = parse(line)
        # Most frequent first: this chain runs once per line.
        if isinstance(record, CapturedEvent):
            position += 1
            _event(h, record.event, line["ref"], lookup, position, captured)
        elif isinstance(record, Completion):
            _completion(h, record, wall, line["ref"])
        elif isinstance(record, StatusSeen):
            if not record.saga_id:
                continue
            rec = h.saga(record.saga_id)
            state, outcome = record.state, record.outcome
            if outcome is None and state in terminal:
                outcome = terminal[state]
            rec.statuses.append((wall, state, outcome, line["ref"]))
            if outcome is not None and rec.outcome is None:
                rec.outcome, rec.outcome_at, rec.outcome_ref = outcome, wall, line["ref"]
        elif isinstance(record, Invoke):
            if record.key is None:
                continue
            kr = h.keys.get(record.key) or h.keys.setdefault(record.key, KeyRecord(record.key))
            kr.trigger = kr.trigger or record.trigger
            if kr.first_invoke is None:
                kr.first_invoke = wall
            if record.request is not None:
                kr.requests.add(json.dumps(record.request, sort_keys=True))
        elif isinstance(record, Snapshot):
            if record.baseline:
                h.baselines[record.service] = record.data or {}
            else:
                h.snapshots[record.service] = (record.data or {}, line["ref"])
        elif isinstance(record, FaultChange):
            h.faults.append(from_line(line))  # type: ignore[arg-type] - a fault line parses
        elif isinstance(record, Phase):
            h.phases.setdefault(record.name, wall)
        elif isinstance(record, Meta):
            h.meta = h.meta or record
    _outcomes_from_snapshot(h, model)
    return h


def _event(
    h: History,
    event: dict[str, Any],
    ref: str,
    lookup: dict[str, list[_Compiled]],
    position: int,
    captured: list[tuple[str, dict[str, Any]]] | None,
) -> None:
    """A captured event: evidence of the steps, compensations and quantities the model matches it to."""
    h.events += 1
    etype = str(event.get("type"))
    h.events_by_type[etype] = h.events_by_type.get(etype, 0) + 1
    if captured is not None:
        captured.append((ref, event))
    for c in lookup.get(etype, ()):
        if c.where and any(_get(event, path) != want for path, want in c.where):
            continue
        saga_id = _get(event, c.saga_id)
        if saga_id is None:
            continue
        rec = h.saga(str(saga_id))
        eid = f"{event.get('source')}#{event.get('id')}"
        role, name = c.role, c.name
        if role == "done" or role == "undone":
            bucket = (rec.done if role == "done" else rec.undone).setdefault(name, [])
            if any(e.event_id == eid for e in bucket):
                continue  # the same event delivered twice proves nothing new
            bucket.append(Evidence(ref, eid, etype, event.get("time"), position))
            continue
        per = rec.terms.setdefault(name, {}).setdefault(role, [])
        if any(e.event_id == eid for _k, _v, e in per):
            continue
        ev = Evidence(ref, eid, etype, event.get("time"), position)
        term = c.match
        items = [event] if term.items is None else resolve(event, term.items, [])  # type: ignore[attr-defined]
        for item in items if isinstance(items, list) else []:
            value = resolve(item, term.value, None)  # type: ignore[attr-defined]
            if isinstance(value, (int, float)):
                key = str(resolve(item, term.key, "")) if term.key else None  # type: ignore[attr-defined]
                per.append((key, float(value), ev))


def _completion(h: History, record: Completion, wall: float, ref: str) -> None:
    """An answer to a client request: what the client saw for its key, and the saga it started."""
    key = record.key
    if key is None:
        return
    kr = h.keys.get(key) or h.keys.setdefault(key, KeyRecord(key))
    saga_id = record.saga_id
    kr.answers.append((saga_id, record.status, ref))
    if record.outcome == "ok" and saga_id:
        rec = h.saga(saga_id)
        rec.keys.add(key)
        rec.trigger = rec.trigger or kr.trigger
        if rec.first_invoke is None or (kr.first_invoke or wall) < rec.first_invoke:
            rec.first_invoke = kr.first_invoke or wall


def _outcomes_from_snapshot(h: History, model: SagaModel) -> None:
    """A saga no client saw end (its start answer was lost, say) ends as the final
    snapshot of its state history says."""
    sh = model.state_history
    if sh is None or sh.service not in h.snapshots:
        return
    data, ref = h.snapshots[sh.service]
    items = resolve(data, sh.items, [])
    for item in items if isinstance(items, list) else []:
        sid = resolve(item, sh.saga_id, None) if isinstance(item, dict) else None
        if sid is None:
            continue
        rec = h.sagas.get(str(sid))
        if rec is None or rec.outcome is not None:
            continue
        transitions = resolve(item, sh.transitions, [])
        if isinstance(transitions, list) and transitions:
            last = transitions[-1]
            state = resolve(last, sh.state, None) if isinstance(last, dict) else last
            if state in model.states.terminal:
                rec.outcome, rec.outcome_ref = model.states.terminal[state], ref
