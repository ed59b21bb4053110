"""The history's record types: one frozen dataclass per kind of observation.

A line of ``history.jsonl`` is an envelope — ``mono`` (the writer's monotonic
clock), ``wall`` (unix seconds), ``process`` (who wrote it), ``type`` — and
the fields of one record. Writers (:class:`~saga_harness.history.log.HistoryWriter`,
:class:`~saga_harness.testing.HistoryBuilder`) turn a record into a line with
:func:`to_line`; readers turn a line back into a record with :func:`parse` (or
into an :class:`Entry`, envelope and record, with :func:`from_line`). Both use
the classes below, so the format cannot drift between them. A reader adds
``ref`` (``"history.jsonl:12"``), the line to cite as evidence.

==============  ============================================================
``meta``        :class:`Meta` — who the run is (written first)
``invoke``      :class:`Invoke` — a client request is sent
``ok``/``fail``/``info``  :class:`Completion` — its answer (``info``: no answer,
                outcome unknown — the request may or may not have taken effect)
``event``       :class:`CapturedEvent` — a CloudEvent as it came over the wire
``status``      :class:`StatusSeen` — a saga's state as the harness read it (and chosen ``fields``)
``fault``       :class:`FaultChange` — a fault window starts or stops
``phase``       :class:`Phase` — run markers (workload-start, converged, …)
``snapshot``    :class:`Snapshot` — a service's state (``baseline``: before the workload)
``machine``     :class:`MachineLoad` — how starved the harness and the machine were, about once a second
``call``        :class:`HttpCall` — a request on a link, seen by the HTTP fault proxy (and the fault it got)
==============  ============================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

ENVELOPE = ("mono", "wall", "process", "type", "ref")


@dataclass(frozen=True, slots=True)
class Record:
    """Base of every record; ``TYPE`` is the line's ``type``."""

    TYPE: ClassVar[str] = ""

    @property
    def type(self) -> str:
        return self.TYPE

    def to_json(self) -> dict[str, Any]:
        """The record's fields as the line holds them (the envelope is the writer's)."""
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Meta(Record):
    """Who the run is. ``extra`` holds what a front end adds (workload size, fault schedule, load shape)."""

    TYPE: ClassVar[str] = "meta"
    run_id: str
    sut: str | None = None
    seed: int | None = None
    scenario: str | None = None
    bugs: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    config: str | None = None
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Meta:
        return cls(
            str(d.get("run_id") or ""),
            d.get("sut"),
            d.get("seed"),
            d.get("scenario"),
            d.get("bugs"),
            dict(d.get("env") or {}),
            d.get("config"),
            str(d.get("command") or ""),
            dict(d.get("extra") or {}),
        )


@dataclass(frozen=True, slots=True)
class Invoke(Record):
    """A client request is sent: operation ``f`` (``start_saga``), number ``op`` within its process."""

    TYPE: ClassVar[str] = "invoke"
    f: str
    op: int
    key: str | None = None  # the idempotency key (the saga's client identity, sent or not)
    trigger: str | None = None
    request: Any = None  # the trigger's request values (the same for every step of one saga)
    step: str | None = None  # the start step's name (f start_saga), the setup step's (f setup)
    call: dict[str, Any] | None = None  # what was sent: service, method, path, body

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Invoke:
        call = d.get("call")
        return cls(
            str(d.get("f") or ""),
            int(d.get("op") or 0),
            d.get("key"),
            d.get("trigger"),
            d.get("request"),
            d.get("step"),
            dict(call) if isinstance(call, dict) else None,
        )


@dataclass(frozen=True, slots=True)
class Completion(Record):
    """The answer to an :class:`Invoke` (same ``process`` and ``op``): ``ok`` (2xx with a saga id),
    ``fail`` (an answer that did not start a saga) or ``info`` (no answer: outcome unknown)."""

    outcome: Literal["ok", "fail", "info"]
    f: str
    op: int
    key: str | None = None
    trigger: str | None = None
    status: int | None = None  # HTTP status; None when no answer came
    value: Any = None  # the answer's body (JSON, or text — bounded — when it was not JSON)
    saga_id: str | None = None
    error: str | None = None
    step: str | None = None  # the start step answered (see Invoke.step)
    content_type: str | None = None  # the answer's media type ("application/json", "text/html", "")

    @property
    def type(self) -> str:
        return self.outcome

    def to_json(self) -> dict[str, Any]:
        d = {name: getattr(self, name) for name in self.__slots__}
        del d["outcome"]
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Completion:
        sid = d.get("saga_id")
        return cls(
            d["type"],
            str(d.get("f") or ""),
            int(d.get("op") or 0),
            d.get("key"),
            d.get("trigger"),
            d.get("status"),
            d.get("value"),
            None if sid is None else str(sid),
            d.get("error"),
            d.get("step"),
            d.get("content_type"),
        )


@dataclass(frozen=True, slots=True)
class CapturedEvent(Record):
    """A CloudEvent in structured form, exactly as it came over the wire (nothing filled in)."""

    TYPE: ClassVar[str] = "event"
    event: dict[str, Any]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CapturedEvent:
        event = d.get("event")
        return cls(event if isinstance(event, dict) else {})


@dataclass(frozen=True, slots=True)
class StatusSeen(Record):
    """A saga's state as the harness read it; ``outcome`` once the state is terminal."""

    TYPE: ClassVar[str] = "status"
    saga_id: str
    state: Any = None  # as the SUT gave it (a string, a number, a boolean, null)
    outcome: str | None = None
    # Chosen fields of the status answer, by the names the checkers read: failed_step,
    # error_type, reason, compensations_done, compensations_pending, attempts.
    fields: dict[str, Any] = field(default_factory=dict)
    # Where it was seen: "status" (a status read), "event" (announced by a captured event,
    # [saga.status.from_events]) or "answer" (a start step's answer said how the saga ended,
    # [saga.outcome]: state None, fields["step"] the step).
    source: str = "status"

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StatusSeen:
        return cls(
            str(d.get("saga_id") or ""),
            d.get("state"),
            d.get("outcome"),
            dict(d.get("fields") or {}),
            str(d.get("source") or "status"),
        )


@dataclass(frozen=True, slots=True)
class FaultChange(Record):
    """A fault window starts or stops; ``fault`` is its description (``FaultWindow.describe()``)."""

    TYPE: ClassVar[str] = "fault"
    phase: Literal["start", "stop"]
    fault: dict[str, Any]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FaultChange:
        return cls(d.get("phase", "start"), dict(d.get("fault") or {}))


@dataclass(frozen=True, slots=True)
class Phase(Record):
    """A run marker: workload-start, workload-end, healed, converged, deadline-passed, …"""

    TYPE: ClassVar[str] = "phase"
    name: str
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Phase:
        return cls(str(d.get("name") or ""), dict(d.get("detail") or {}))


@dataclass(frozen=True, slots=True)
class Snapshot(Record):
    """A service's state, read through its snapshot endpoints; ``baseline``: read before the workload."""

    TYPE: ClassVar[str] = "snapshot"
    service: str
    data: Any
    baseline: bool = False

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Snapshot:
        return cls(str(d.get("service") or ""), d.get("data"), bool(d.get("baseline", False)))


@dataclass(frozen=True, slots=True)
class MachineLoad(Record):
    """How busy the machine was over the last ``interval_s`` (about a second), measured by the harness
    during a run: enough to tell a slow system from a starved harness.

    ``loop_lag_*``: how late the harness's own asyncio loop woke a sleeper (its events and polls
    wait that long too); ``cpu_busy_pct``: the whole machine's CPU in use (100 = every core);
    ``sut_cpu_pct``: CPU used by the processes the harness started (100 = one core busy; the sum
    over their process trees); ``harness_cpu_pct``: the harness's own process (100 = one core);
    ``load1``: the one-minute load average; ``cores``: logical CPUs; ``sut_wait_pct``: how long the
    processes the harness started waited in the kernel's run queue for a CPU they were ready to use
    (100 = one core-second a second; from ``/proc/PID/schedstat``). None: not measurable here.
    """

    TYPE: ClassVar[str] = "machine"
    interval_s: float = 0.0
    loop_lag_p99_ms: float = 0.0
    loop_lag_max_ms: float = 0.0
    cpu_busy_pct: float | None = None
    sut_cpu_pct: float | None = None
    load1: float | None = None
    harness_cpu_pct: float | None = None
    cores: int | None = None
    sut_wait_pct: float | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MachineLoad:
        def num(key: str) -> float | None:
            v = d.get(key)
            return None if v is None else float(v)

        cores = d.get("cores")
        return cls(
            float(d.get("interval_s") or 0.0),
            float(d.get("loop_lag_p99_ms") or 0.0),
            float(d.get("loop_lag_max_ms") or 0.0),
            num("cpu_busy_pct"),
            num("sut_cpu_pct"),
            num("load1"),
            num("harness_cpu_pct"),
            None if cores is None else int(cores),
            num("sut_wait_pct"),
        )


@dataclass(frozen=True, slots=True)
class HttpCall(Record):
    """A request one service made to another over a link, as the HTTP fault proxy on the link saw it:
    what the caller got (``status``; None: no answer), the fault it got (``rule``: the fault window's id,
    ``action``), and when (``mono_request``/``mono_answer``: the machine's monotonic clock, the one the
    envelope's ``mono`` uses). ``headers``: the few that tie a call to a saga or an event."""

    TYPE: ClassVar[str] = "call"
    link: str
    seq: int
    method: str
    path: str
    query: str = ""
    status: int | None = None
    rule: str | None = None
    action: str | None = None
    mono_request: float = 0.0
    mono_answer: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body_head: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HttpCall:
        status, answer = d.get("status"), d.get("mono_answer")
        return cls(
            str(d.get("link") or ""),
            int(d.get("seq") or 0),
            str(d.get("method") or ""),
            str(d.get("path") or ""),
            str(d.get("query") or ""),
            None if status is None else int(status),
            d.get("rule"),
            d.get("action"),
            float(d.get("mono_request") or 0.0),
            None if answer is None else float(answer),
            dict(d.get("headers") or {}),
            str(d.get("body_head") or ""),
        )


_BY_TYPE: dict[str, Any] = {
    "meta": Meta,
    "invoke": Invoke,
    "ok": Completion,
    "fail": Completion,
    "info": Completion,
    "event": CapturedEvent,
    "status": StatusSeen,
    "fault": FaultChange,
    "phase": Phase,
    "snapshot": Snapshot,
    "machine": MachineLoad,
    "call": HttpCall,
}
TYPES = tuple(_BY_TYPE)


def parse(line: Mapping[str, Any]) -> Record | None:
    """The record a history line holds (None for a type this version does not know)."""
    cls = _BY_TYPE.get(str(line.get("type")))
    return cls.from_json(line) if cls is not None else None


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a history read back: its envelope and its record."""

    mono: float  # the writer's monotonic clock (seconds)
    wall: float  # unix seconds
    process: str  # who wrote it (runner, client, sink, nemesis, a load worker …)
    ref: str  # where it is, to cite as evidence: "history.jsonl:12", "history.d/worker-1.jsonl:3"
    record: Record


def to_line(record: Record, *, mono: float, wall: float, process: str) -> dict[str, Any]:
    """The JSON object a writer appends for ``record``: the envelope, then the record's fields."""
    return {"mono": mono, "wall": wall, "process": process, "type": record.type, **record.to_json()}


def from_line(line: Mapping[str, Any]) -> Entry | None:
    """The typed form of a line as a reader yields it (None for a type this version does not know)."""
    record = parse(line)
    if record is None:
        return None
    return Entry(
        float(line.get("mono") or 0.0),
        float(line.get("wall") or 0.0),
        str(line.get("process") or ""),
        str(line.get("ref") or ""),
        record,
    )
