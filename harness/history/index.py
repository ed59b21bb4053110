"""One pass over a history, per saga: what the client saw, what the events prove.

The checkers read this index, never the raw lines, so all of them together
cost one streaming pass plus work proportional to the number of sagas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.model import Match, SagaModel
from harness.pointer import resolve


@dataclass(frozen=True)
class Evidence:
    """One event that proves something about a saga."""

    ref: str  # "history.jsonl:123"
    event_id: str
    type: str
    time: str | None  # the producer's CloudEvent time
    position: int  # order of arrival in the history
    event: dict[str, Any] = field(repr=False, compare=False, hash=False)

    def produced_at(self) -> float:
        """The producer's time if it has one, else the arrival order (for sorting)."""
        if self.time:
            try:
                return datetime.fromisoformat(self.time.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
        return float(self.position)


@dataclass
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
    faults: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    entries: int = 0
    events: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    event_entries: list[dict[str, Any]] = field(default_factory=list)  # kept only when asked for
    end: float | None = None

    def saga(self, saga_id: str) -> SagaRecord:
        rec = self.sagas.get(saga_id)
        if rec is None:
            rec = self.sagas[saga_id] = SagaRecord(saga_id)
        return rec


def _matches(event: dict[str, Any], match: Match) -> bool:
    for pointer, want in match.where.items():
        if resolve(event, pointer, None) != want:
            return False
    return True


def build_index(entries: Iterable[dict[str, Any]], model: SagaModel, keep_events: bool = False) -> History:
    """Index ``entries`` (from :func:`~harness.history.read_history`) by saga, in one pass."""
    import json

    h = History()
    lookup = model.matches()
    terminal = model.states.terminal
    seen: set[tuple[str, str, str, str]] = set()  # (saga, role, name, event id) counted once
    position = 0
    for entry in entries:
        h.entries += 1
        kind = entry.get("type")
        wall = entry.get("wall", 0.0)
        h.end = wall
        if kind == "event":
            event = entry.get("event") or {}
            position += 1
            h.events += 1
            etype = str(event.get("type"))
            h.events_by_type[etype] = h.events_by_type.get(etype, 0) + 1
            if keep_events:
                h.event_entries.append(entry)
            for role, name, match in lookup.get(etype, ()):
                if not _matches(event, match):
                    continue
                saga_id = resolve(event, match.saga_id, None)
                if saga_id is None:
                    continue
                saga_id = str(saga_id)
                eid = f"{event.get('source')}#{event.get('id')}"
                if (saga_id, role, name, eid) in seen:
                    continue  # the same event delivered twice proves nothing new
                seen.add((saga_id, role, name, eid))
                ev = Evidence(entry["ref"], eid, etype, event.get("time"), position, event)
                rec = h.saga(saga_id)
                if role == "done":
                    rec.done.setdefault(name, []).append(ev)
                elif role == "undone":
                    rec.undone.setdefault(name, []).append(ev)
                else:
                    term = match  # a Term
                    per = rec.terms.setdefault(name, {})
                    items = [event] if term.items is None else resolve(event, term.items, [])  # type: ignore[attr-defined]
                    for item in items if isinstance(items, list) else []:
                        value = resolve(item, term.value, None)  # type: ignore[attr-defined]
                        if isinstance(value, (int, float)):
                            key = str(resolve(item, term.key, "")) if term.key else None  # type: ignore[attr-defined]
                            per.setdefault(role, []).append((key, float(value), ev))
        elif kind == "invoke":
            key = entry.get("key")
            if key is None:
                continue
            kr = h.keys.get(key) or h.keys.setdefault(key, KeyRecord(key))
            kr.trigger = kr.trigger or entry.get("trigger")
            if kr.first_invoke is None:
                kr.first_invoke = wall
            if "request" in entry:
                kr.requests.add(json.dumps(entry["request"], sort_keys=True))
        elif kind in ("ok", "fail", "info"):
            key = entry.get("key")
            if key is None:
                continue
            kr = h.keys.get(key) or h.keys.setdefault(key, KeyRecord(key))
            saga_id = entry.get("saga_id")
            kr.answers.append((saga_id, entry.get("status"), entry["ref"]))
            if kind == "ok" and saga_id:
                rec = h.saga(str(saga_id))
                rec.keys.add(key)
                rec.trigger = rec.trigger or kr.trigger
                if rec.first_invoke is None or (kr.first_invoke or wall) < rec.first_invoke:
                    rec.first_invoke = kr.first_invoke or wall
        elif kind == "status":
            saga_id = entry.get("saga_id")
            if not saga_id:
                continue
            rec = h.saga(str(saga_id))
            state, outcome = entry.get("state"), entry.get("outcome")
            if outcome is None and state in terminal:
                outcome = terminal[state]
            rec.statuses.append((wall, state, outcome, entry["ref"]))
            if outcome is not None and rec.outcome is None:
                rec.outcome, rec.outcome_at, rec.outcome_ref = outcome, wall, entry["ref"]
        elif kind == "snapshot":
            h.snapshots[str(entry.get("service"))] = (entry.get("data") or {}, entry["ref"])
        elif kind == "fault":
            h.faults.append(entry)
        elif kind == "phase":
            h.phases.setdefault(str(entry.get("name")), wall)
        elif kind == "meta":
            h.meta.update({k: v for k, v in entry.items() if k not in ("type", "ref")})
    return h
