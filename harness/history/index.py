"""One pass over a history, per saga: what the client saw, what the evidence proves.

The checkers read this index, never the raw lines, so all of them together
cost one streaming pass plus work proportional to the number of sagas.

Evidence of a step or a quantity comes from four sources (see
:mod:`saga_harness.model`): captured CloudEvents, answers the harness observed
to a saga's start steps, per-saga reads (snapshots holding one entry per saga)
and the status history. Each piece is placed on the harness's own timeline —
the line positions of the merged history — as the interval in which the fact
became true (:class:`Evidence`); :mod:`saga_harness.checkers.order` compares them.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from saga_harness.history.records import (
    CapturedEvent,
    Completion,
    Entry,
    FaultChange,
    HttpCall,
    Invoke,
    MachineLoad,
    Meta,
    Phase,
    Snapshot,
    StatusSeen,
    from_line,
    parse,
)
from saga_harness.model import REGEX, Match, SagaModel, Term, same, state_key, text_matches
from saga_harness.pointer import resolve

# How long after a fault window stops its effects still count as its own: a killed
# process's work is redelivered once it is back, a cut link's retries land after it
# heals (the harness also lets the snapshot settle this long after faults heal).
FAULT_AFTERMATH_S = 3.0


@dataclass(frozen=True, slots=True)
class Evidence:
    """One observation that proves something about a saga.

    The fact became true after line ``after`` and no later than line ``position`` of
    the history (the merged order the harness recorded in): an event at its arrival;
    an answer between its request and the answer; a read or a status since the
    last observation that did not show it."""

    ref: str  # "history.jsonl:123"
    event_id: str  # identity: the same id twice is the same effect seen twice
    type: str  # the event type; "answer STEP", "read NAME", "state X"
    time: str | None  # when the producer says it happened: a CloudEvent's time, or the evidence's ``at``
    position: int  # the line that proves it (1-based, in the merged history)
    # Known to have become true after this line; -1: just before ``position`` (an arrival).
    # (-1 rather than position - 1: one int object per event less in a big history.)
    since: int = -1
    part: str | None = None  # which part of a step it proves (the evidence's ``per``: an order line)

    @property
    def after(self) -> int:
        """The line after which the fact became true."""
        return self.position - 1 if self.since < 0 else self.since

    @property
    def source(self) -> str:
        """event, answer, read or state."""
        if self.since < 0:  # only an event's lower bound is implied
            return "event"
        return self.type.split(" ", 1)[0]


@dataclass(slots=True)
class SagaRecord:
    saga_id: str
    keys: set[str] = field(default_factory=set)
    trigger: str | None = None
    first_invoke: float | None = None  # wall time of the first request for it
    statuses: list[tuple[float, Any, str | None, str]] = field(default_factory=list)
    outcome: str | None = None
    outcome_at: float | None = None
    outcome_ref: str | None = None
    done: dict[str, list[Evidence]] = field(default_factory=dict)
    undone: dict[str, list[Evidence]] = field(default_factory=dict)
    # quantity -> role (plus/minus/equals) -> [(key, value, evidence)]
    terms: dict[str, dict[str, list[tuple[str | None, float, Evidence]]]] = field(default_factory=dict)
    # Chosen fields of its status (failed_step, reason, compensations_done, …): the latest value of each.
    fields: dict[str, Any] | None = None
    fields_ref: str | None = None
    first_position: int = 0  # the line of the first request for it: every fact of it is later
    last_status: int = 0  # the line of its latest status observation
    answered: dict[str, int] | None = None  # start step -> answers the harness got
    unanswered: set[str] | None = None  # start steps with a request that got no answer
    reads: set[str] | None = None  # per-saga reads that read it
    settled: bool = False  # the harness read it in a terminal state
    last_event: float | None = None  # wall time of the latest new evidence of it a captured event brought

    def observed(self, match: Match) -> bool:
        """Could ``match``'s source have shown its evidence for this saga? Absence of evidence
        proves absence only then: an event is always captured; an answer unless a request of
        its step got none; a read only when the service answered one for the saga (below 500);
        the status history never (a poll can miss a state)."""
        source = match.source
        if source == "event":
            return True
        if source == "answer":
            # A step never requested did nothing by its answer; one whose answer was lost may have.
            return not (self.unanswered and match.answer in self.unanswered)
        if source == "read":
            return bool(self.reads and match.read in self.reads)
        return False


@dataclass(slots=True)
class KeyRecord:
    """Everything the client saw for one idempotency key."""

    key: str
    trigger: str | None = None
    first_invoke: float | None = None
    answers: list[tuple[str | None, int | None, str]] = field(default_factory=list)  # (saga_id, status, ref)
    requests: set[str] = field(default_factory=set)  # distinct request bodies (canonical JSON)
    first_position: int = 0  # the line of its first request
    saga_id: str | None = None  # the first saga id an answer for it gave
    steps: dict[str | None, int] | None = None  # answers per start step (None: a one-request start)


@dataclass(frozen=True, slots=True)
class MachineSample:
    """How busy the machine was over one interval (a :class:`~saga_harness.history.MachineLoad`,
    written about every second by the harness): its event loop's lag, the CPU busy and what the SUT
    used, the load average. None: not measured."""

    wall: float  # when the interval ended
    interval_s: float
    loop_lag_p99_ms: float | None = None
    loop_lag_max_ms: float | None = None
    cpu_busy_pct: float | None = None  # the whole machine's CPU in use (100: every core)
    sut_cpu_pct: float | None = None  # the SUT's processes (100: one core)
    load1: float | None = None
    cores: int | None = None
    sut_wait_pct: float | None = None  # the SUT's processes' run-queue wait (100: one core-second a second)


@dataclass(slots=True)
class FaultTouch:
    """What the history shows of the sagas around one fault window, gathered in the same pass:
    ``involved`` — sagas whose evidence during the window or its aftermath (:data:`FAULT_AFTERMATH_S`)
    involves the faulted component (an event whose source or type names it; a request of theirs that
    got no answer or a 5xx); ``seen`` — sagas seen moving (an event, a new status) while the window
    was active. Interpreting them (what "touched" means) is the coverage's job."""

    fault_id: str
    components: tuple[str, ...]  # the names the fault targets (fault_names): a process, a link's ends, a queue
    start: float
    stop: float | None = None
    involved: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)


@dataclass
class History:
    """The index the checkers read."""

    sagas: dict[str, SagaRecord] = field(default_factory=dict)
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    snapshots: dict[str, tuple[Any, str]] = field(default_factory=dict)
    # State before this run's workload, when the SUT was not fresh (a shared pytest session).
    baselines: dict[str, Any] = field(default_factory=dict)
    faults: list[Entry] = field(default_factory=list)  # each fault window's start and stop (FaultChange)
    phases: dict[str, float] = field(default_factory=dict)  # run marker -> wall time it was first seen
    marks: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)  # every phase: (wall, name, detail)
    machine: list[MachineSample] = field(default_factory=list)  # the harness's starvation samples, in order
    touches: dict[str, FaultTouch] = field(default_factory=dict)  # fault id -> the sagas around its window
    meta: Meta | None = None  # who the run is (the first meta line)
    entries: int = 0
    events: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    start: float | None = None  # the first line's wall time
    end: float | None = None
    # Every captured event with its history ref, in arrival order; None unless
    # build_index(..., keep_events=True): most checkers never need them and a
    # big history should not hold them twice.
    captured: list[tuple[str, dict[str, Any]]] | None = None
    # The calls the HTTP fault proxy saw on the run's links (only where it sat on one), with their refs.
    calls: list[tuple[str, HttpCall]] = field(default_factory=list)

    def saga(self, saga_id: str) -> SagaRecord:
        rec = self.sagas.get(saga_id)
        if rec is None:
            rec = self.sagas[saga_id] = SagaRecord(saga_id)
        return rec

    def fault_windows(self) -> list[tuple[float, float, dict[str, Any]]]:
        """Each fault window as (start wall, stop wall, fault), by the harness's clock; a
        window never stopped lasts to the end of the history."""
        open_: dict[str, tuple[float, dict[str, Any]]] = {}
        out: list[tuple[float, float, dict[str, Any]]] = []
        for entry in self.faults:
            rec = entry.record
            if not isinstance(rec, FaultChange):
                continue
            fid = str(rec.fault.get("id") or f"{rec.fault.get('kind')}:{rec.fault.get('target')}")
            if rec.phase == "start":
                open_.setdefault(fid, (entry.wall, rec.fault))
            elif fid in open_:
                start, fault = open_.pop(fid)
                out.append((start, entry.wall, fault))
        end = self.end if self.end is not None else float("inf")
        out.extend((start, max(end, start), fault) for start, fault in open_.values())
        return sorted(out, key=lambda w: w[0])


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


def _where_ok(doc: Any, where: tuple[tuple[tuple[str, ...], Any], ...]) -> bool:
    # Inlined JSON equality (model.same): on the hot path, and true must not equal 1.
    for path, want in where:
        got = _get(doc, path)
        if got != want or (got.__class__ is bool) is not (want.__class__ is bool):
            return False
    return True


@dataclass(frozen=True)
class _Compiled:
    role: str
    name: str
    match: Match
    where: tuple[tuple[tuple[str, ...], Any], ...]
    saga_id: tuple[str, ...]
    pointer: tuple[str, ...] | None = None
    at: tuple[str, ...] | None = None
    per: tuple[str, ...] | None = None


@dataclass
class _Lookup:
    """The model's evidence, by where it comes from (one dictionary lookup per line)."""

    events: dict[str, list[_Compiled]] = field(default_factory=dict)
    answers: dict[str, list[_Compiled]] = field(default_factory=dict)
    reads: dict[str, list[_Compiled]] = field(default_factory=dict)
    states: list[_Compiled] = field(default_factory=list)


def _compile(model: SagaModel) -> _Lookup:
    out = _Lookup()
    for role, name, m in model.evidence():
        c = _Compiled(
            role,
            name,
            m,
            tuple((_path(p), v) for p, v in m.where.items()),
            _path(m.saga_id),
            _path(m.pointer) if m.pointer is not None else None,
            _path(m.at) if m.at is not None else None,
            _path(m.per) if m.per is not None else None,
        )
        if m.event is not None:
            out.events.setdefault(m.event, []).append(c)
        elif m.answer is not None:
            out.answers.setdefault(m.answer, []).append(c)
        elif m.read is not None:
            out.reads.setdefault(m.read, []).append(c)
        else:
            out.states.append(c)
    return out


@dataclass
class _Pass:
    """What one pass keeps besides the index: requests in flight, answers waiting for their saga."""

    lookup: _Lookup
    invokes: dict[tuple[str, int], int] = field(default_factory=dict)  # (process, op) -> line of the request
    open: dict[str, FaultTouch] = field(default_factory=dict)  # fault windows active (or in their aftermath)
    deferred: list[tuple[str, Completion, str, int, int, str]] = field(default_factory=list)
    read_miss: dict[tuple[str, str, str, str], int] = field(default_factory=dict)  # last read that did not show it


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
    ctx = _Pass(_compile(model))
    events, answers, reads = ctx.lookup.events, ctx.lookup.answers, ctx.lookup.reads
    terminal = model.states.terminal
    for line in lines:
        h.entries += 1
        position = h.entries
        wall = line.get("wall", 0.0)
        h.end = wall
        if position == 1:
            h.start = wall
        record = parse(line)
        if ctx.open:
            _expire(h, ctx, wall)
        # Most frequent first: this chain runs once per line.
        if isinstance(record, CapturedEvent):
            _event(h, record.event, line["ref"], events, position, captured, wall, ctx)
        elif isinstance(record, Completion):
            _completion(h, ctx, record, line, wall, position)
        elif isinstance(record, StatusSeen):
            if not record.saga_id:
                continue
            rec = h.saga(record.saga_id)
            if ctx.open:
                _seen(ctx, record.saga_id, wall)
            state, outcome, source = record.state, record.outcome, record.source
            if outcome is None and terminal:
                outcome = terminal.get(state_key(state))
            if source != "event" or _news(rec, state):
                rec.statuses.append((wall, state, outcome, line["ref"]))
            if outcome is not None and source == "status":
                rec.settled = True
            if outcome is not None and rec.outcome is None:
                rec.outcome, rec.outcome_at, rec.outcome_ref = outcome, wall, line["ref"]
            if record.fields:
                rec.fields = {**(rec.fields or {}), **record.fields}
                rec.fields_ref = line["ref"]
            # An answer that said how the saga ended carries no state: it shows none, and hides none.
            if source != "answer":
                if ctx.lookup.states:
                    _state(rec, ctx.lookup.states, state, position, line["ref"])
                rec.last_status = position
        elif isinstance(record, Invoke):
            if answers:
                ctx.invokes[(str(line.get("process") or ""), record.op)] = position
            if record.key is None:
                continue
            kr = h.keys.get(record.key) or h.keys.setdefault(record.key, KeyRecord(record.key))
            kr.trigger = kr.trigger or record.trigger
            if kr.first_invoke is None:
                kr.first_invoke, kr.first_position = wall, position
            if record.request is not None:
                kr.requests.add(json.dumps(record.request, sort_keys=True))
        elif isinstance(record, Snapshot):
            if record.baseline:
                h.baselines[record.service] = record.data or {}
            else:
                h.snapshots[record.service] = (record.data or {}, line["ref"])
                if record.service in reads:
                    _read(h, ctx, record.service, record.data, position, line["ref"])
        elif isinstance(record, FaultChange):
            h.faults.append(from_line(line))  # type: ignore[arg-type] - a fault line parses
            _fault(h, ctx, record, wall)
        elif isinstance(record, Phase):
            h.phases.setdefault(record.name, wall)
            h.marks.append((wall, record.name, record.detail))
        elif isinstance(record, Meta):
            h.meta = h.meta or record
        elif isinstance(record, MachineLoad):
            h.machine.append(_machine(record, wall))
        elif isinstance(record, HttpCall):
            h.calls.append((line["ref"], record))
    h.touches.update(ctx.open)
    for key, completion, step, after, position, ref in ctx.deferred:
        kr = h.keys.get(key)
        if kr is not None and kr.saga_id is not None:
            _answer(h.saga(kr.saga_id), answers[step], completion, step, after, position, ref)
    _outcomes_from_snapshot(h, model)
    return h


def _event(
    h: History,
    event: dict[str, Any],
    ref: str,
    lookup: dict[str, list[_Compiled]],
    position: int,
    captured: list[tuple[str, dict[str, Any]]] | None,
    wall: float,
    ctx: _Pass,
) -> None:
    """A captured event: evidence of the steps, compensations and quantities the model matches it to."""
    h.events += 1
    etype = str(event.get("type"))
    h.events_by_type[etype] = h.events_by_type.get(etype, 0) + 1
    if captured is not None:
        captured.append((ref, event))
    for c in lookup.get(etype, ()):
        if c.where and not _where_ok(event, c.where):
            continue
        saga_id = _get(event, c.saga_id)
        if saga_id is None:
            continue
        rec = h.saga(str(saga_id))
        if ctx.open:
            _touch(ctx, rec.saga_id, wall, f"{event.get('source')} {etype}".lower())
        eid = f"{event.get('source')}#{event.get('id')}"
        role, name = c.role, c.name
        if role == "done" or role == "undone":
            bucket = (rec.done if role == "done" else rec.undone).setdefault(name, [])
            if any(e.event_id == eid for e in bucket):
                continue  # the same event delivered twice proves nothing new
            time = _time(event, c) if c.at else event.get("time")
            bucket.append(Evidence(ref, eid, etype, time, position, -1, _part(event, c)))
            rec.last_event = wall
            continue
        per = rec.terms.setdefault(name, {}).setdefault(role, [])
        if any(e.event_id == eid for _k, _v, e in per):
            continue
        rec.last_event = wall
        ev = Evidence(ref, eid, etype, _time(event, c) if c.at else event.get("time"), position)
        term: Term = c.match  # type: ignore[assignment] - quantity roles hold terms
        items = [event] if term.items is None else resolve(event, term.items, [])
        for item in items if isinstance(items, list) else []:
            value = resolve(item, term.value, None)
            if isinstance(value, (int, float)):
                key = str(resolve(item, term.key, "")) if term.key else None
                per.append((key, float(value), ev))


def _completion(
    h: History, ctx: _Pass, record: Completion, line: Mapping[str, Any], wall: float, position: int
) -> None:
    """An answer to a client request: what the client saw for its key, the saga it started,
    and — for a start step the model names — evidence."""
    ref = line["ref"]
    key = record.key
    saga_id = record.saga_id
    if key is not None:
        kr = h.keys.get(key) or h.keys.setdefault(key, KeyRecord(key))
        kr.answers.append((saga_id, record.status, ref))
        steps = kr.steps if kr.steps is not None else {}
        steps[record.step] = steps.get(record.step, 0) + 1
        kr.steps = steps
        if saga_id and kr.saga_id is None:
            kr.saga_id = saga_id
        if record.outcome == "ok" and saga_id:
            rec = h.saga(saga_id)
            rec.keys.add(key)
            rec.trigger = rec.trigger or kr.trigger
            if rec.first_invoke is None or (kr.first_invoke or wall) < rec.first_invoke:
                rec.first_invoke = kr.first_invoke or wall
                rec.first_position = kr.first_position
        if ctx.open and kr.saga_id is not None:
            # An answer is no progress of the saga (its start is answered before it moves); a request
            # of it that failed while the fault was on involves it.
            if record.outcome == "info" or (record.status is not None and record.status >= 500):
                _touch(ctx, kr.saga_id, wall, None, progress=False)
    answers = ctx.lookup.answers
    if not answers:
        return
    after = ctx.invokes.pop((str(line.get("process") or ""), record.op), position - 1)
    # The step the request belongs to: the record's, or the line's when the record class
    # does not carry it; a request with no step is known by its operation.
    step = record.step or record.f
    comps = answers.get(step)
    if comps is None:
        return
    sid = saga_id or (h.keys[key].saga_id if key is not None and key in h.keys else None)
    if sid is None:
        if key is not None:  # its saga id may come with a later answer for the same key
            ctx.deferred.append((key, record, step, after, position, ref))
        return
    _answer(h.saga(sid), comps, record, step, after, position, ref)


def _answer(
    rec: SagaRecord, comps: list[_Compiled], record: Completion, step: str, after: int, position: int, ref: str
) -> None:
    if record.outcome == "info" or record.status is None:
        if rec.unanswered is None:
            rec.unanswered = set()
        rec.unanswered.add(step)
        return
    if rec.answered is None:
        rec.answered = {}
    rec.answered[step] = rec.answered.get(step, 0) + 1
    body = record.value
    for c in comps:
        if not _body_ok(c, record.status, body):
            continue
        # "replay": matching answers to one saga's requests are one effect seen again.
        part = _part(body, c)
        eid = (f"answer:{step}" if c.match.repeats == "replay" else f"answer:{ref}") + (f"#{part}" if part else "")
        ev = Evidence(ref, eid, f"answer {step}", _time(body, c), position, after, part)
        _add(rec, c, ev, body, replace=False)


def _read(h: History, ctx: _Pass, name: str, data: Any, position: int, ref: str) -> None:
    """A per-saga read: ``[{"saga_id", "status", "body"}, …]``; evidence of the sagas it shows."""
    comps = ctx.lookup.reads[name]
    for entry in data if isinstance(data, list) else ():
        if not isinstance(entry, dict) or entry.get("saga_id") is None:
            continue
        sid = str(entry["saga_id"])
        rec = h.sagas.get(sid)
        if rec is None:
            continue  # a saga this history never started
        status, body = entry.get("status"), entry.get("body")
        if isinstance(status, int) and status < 500:  # an answer of the service, not an outage
            if rec.reads is None:
                rec.reads = set()
            rec.reads.add(name)
        for c in comps:
            miss = (sid, name, c.role, c.name)
            if not _body_ok(c, status, body):
                ctx.read_miss[miss] = position
                continue
            part = _part(body, c)
            eid = f"read:{name}" + (f"#{part}" if part else "")
            since = ctx.read_miss.get(miss, rec.first_position)
            ev = Evidence(ref, eid, f"read {name}", _time(body, c), position, since, part)
            # A read shows state: the latest one says what a quantity is, however often it was read.
            _add(rec, c, ev, body, replace=True)


def _news(rec: SagaRecord, state: Any) -> bool:
    """Does a state announced by an event say something the status history lacks? Not when
    the state was seen already (a redelivery), nor after the harness read the saga ended: the
    event announces a state entered earlier, so it cannot show the saga leaving its end."""
    if rec.settled:
        return False
    key = state_key(state)
    return all(state_key(s) != key for _w, s, _o, _r in rec.statuses)


def _state(rec: SagaRecord, comps: list[_Compiled], state: Any, position: int, ref: str) -> None:
    """The saga seen in ``state``: evidence for the steps the model proves by it (once each)."""
    for c in comps:
        if c.match.accepts_state(state):
            after = rec.last_status or rec.first_position
            bucket = (rec.done if c.role == "done" else rec.undone).setdefault(c.name, [])
            if not bucket or all(e.source != "state" for e in bucket):
                bucket.append(Evidence(ref, "state", f"state {state_key(state)}", None, position, after))


def _part(doc: Any, c: _Compiled) -> str | None:
    """Which part of its step the evidence proves (its ``per``), as text."""
    if c.per is None:
        return None
    value = _get(doc, c.per) if c.per else doc
    return None if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _time(doc: Any, c: _Compiled) -> str | None:
    """When the system says the fact happened (the evidence's ``at``), as text."""
    if c.at is None:
        return None
    value = _get(doc, c.at) if c.at else doc
    if isinstance(value, bool) or value is None:
        return None
    return value if isinstance(value, str) else repr(value)


def _body_ok(c: _Compiled, status: int | None, body: Any) -> bool:
    """An answer's or read's status and body are what the evidence asks for."""
    m = c.match
    if not m.accepts_status(status):
        return False
    if c.where and not _where_ok(body, c.where):
        return False
    if c.pointer is not None:
        value = _get(body, c.pointer) if c.pointer else body
        if m.in_ is not None:
            if not any(same(value, want) for want in m.in_):
                return False
        elif not value:  # a pointer alone: the value there is truthy (not null, false, 0, "", [] or {})
            return False
    return m.text is None or text_matches(m.text, body)


def _add(rec: SagaRecord, c: _Compiled, ev: Evidence, body: Any, replace: bool) -> None:
    """Evidence from an answer or a read: a step done/undone, or a quantity's term."""
    if c.role == "done" or c.role == "undone":
        bucket = (rec.done if c.role == "done" else rec.undone).setdefault(c.name, [])
        if not any(e.event_id == ev.event_id for e in bucket):
            bucket.append(ev)
        return
    per = rec.terms.setdefault(c.name, {}).setdefault(c.role, [])
    if any(e.event_id == ev.event_id for _k, _v, e in per):
        if not replace:
            return
        per[:] = [t for t in per if t[2].event_id != ev.event_id]
    term: Term = c.match  # type: ignore[assignment] - quantity roles hold terms
    if term.value.startswith(REGEX):
        text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        found = re.search(term.value[len(REGEX) :], text)
        number = _number(found.group(1) if found and found.groups() else found.group(0) if found else None)
        if number is not None:
            per.append((None, number, ev))
        return
    items = [body] if term.items is None else resolve(body, term.items, [])
    for item in items if isinstance(items, list) else []:
        number = _number(resolve(item, term.value, None))
        if number is not None:
            key = str(resolve(item, term.key, "")) if term.key else None
            per.append((key, number, ev))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _outcomes_from_snapshot(h: History, model: SagaModel) -> None:
    """A saga no client saw end (its start answer was lost, say) ends as the final
    snapshot of its state history says."""
    sh = model.state_history
    if sh is None or sh.service not in h.snapshots:
        return
    data, ref = h.snapshots[sh.service]
    items = resolve(data, sh.items, [])
    terminal = model.states.terminal
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
            outcome = terminal.get(state_key(state))
            if outcome is not None:
                rec.outcome, rec.outcome_ref = outcome, ref


def _fault(h: History, ctx: _Pass, record: FaultChange, wall: float) -> None:
    """A fault window starts (watched from now on) or stops (watched for its aftermath)."""
    fault = record.fault
    fid = str(fault.get("id") or f"{fault.get('kind')}:{fault.get('target')}")
    if record.phase == "start":
        if fid not in ctx.open and fid not in h.touches:
            ctx.open[fid] = FaultTouch(fid, fault_names(str(fault.get("target") or "")), wall)
    elif fid in ctx.open and ctx.open[fid].stop is None:
        ctx.open[fid].stop = wall


def fault_names(target: str) -> tuple[str, ...]:
    """The names a fault's target stands for, as an event's source or type would say them: a process
    (``payment``), both ends of a link (``taskqueue->payment``), or a delivery queue
    (``eventbus:orchestrator-fraud``: the queue's name and its parts — the queue, not the component
    every delivery passes through; ``eventbus:*``: every event, ``*``). Parts shorter than three
    letters are dropped: they would match anything."""
    _component, sep, queue = target.partition(":")
    if sep and "->" not in target:
        if queue.strip() in ("", "*"):
            return ("*",)
        parts = [queue]
    else:
        parts = target.split("->")
    names: set[str] = set()
    for part in parts:
        part = part.strip().lower()
        if part and part != "*":
            names.add(part)
            names.update(p for p in re.split(r"[-_.]", part) if len(p) >= 3)
    return tuple(sorted(names))


def _expire(h: History, ctx: _Pass, wall: float) -> None:
    """Stop watching the windows whose aftermath is over."""
    for fid, touch in list(ctx.open.items()):
        if touch.stop is not None and wall > touch.stop + FAULT_AFTERMATH_S:
            h.touches[fid] = ctx.open.pop(fid)


def _seen(ctx: _Pass, saga_id: str, wall: float) -> None:
    """Saga ``saga_id`` was seen moving at ``wall`` (a new status): during the windows active then."""
    for touch in ctx.open.values():
        if touch.stop is None or wall <= touch.stop:
            touch.seen.add(saga_id)


def _touch(ctx: _Pass, saga_id: str, wall: float, text: str | None, progress: bool = True) -> None:
    """Evidence of ``saga_id`` at ``wall``: involves a watched fault when ``text`` (an event's source
    and type) names a component it targets, or always when ``text`` is None (a failed request);
    ``progress``: it shows the saga moving (an event does, a failed request does not)."""
    for touch in ctx.open.values():
        if progress and (touch.stop is None or wall <= touch.stop):
            touch.seen.add(saga_id)
        if text is None or touch.components == ("*",) or any(name in text for name in touch.components):
            touch.involved.add(saga_id)


def _machine(record: MachineLoad, wall: float) -> MachineSample:
    """A starvation sample, as the checkers read it."""
    return MachineSample(
        wall,
        record.interval_s or 1.0,
        record.loop_lag_p99_ms,
        record.loop_lag_max_ms,
        record.cpu_busy_pct,
        record.sut_cpu_pct,
        record.load1,
        record.cores,
        record.sut_wait_pct,
    )
