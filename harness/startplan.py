"""How a saga is started and seen, as data: the pure half of talking to a saga system.

A system may start a saga with one request or with several (create a user, add funds,
create an order, add an item, check out), answer in JSON or in text, carry ids in URL
paths, and say how a saga ended in a status read, in an event or in the answer itself.
This module holds everything about that which needs no network, so the two clients
that do the HTTP — the runner (aiohttp) and the locustfile (Locust's client) — share
one implementation:

- templates (:func:`fill`): ``{key}``, ``{seed}``, ``{i}``, ``{seq100}``, ``{rand100}``,
  the trigger's request values (``{quantity}``, ``{request.quantity}``), pool members'
  values (``{user.user_id}``) and values captured from earlier answers (``{order_id}``);
- answers (:func:`decode_answer`): status, content type, JSON value or text (bounded);
- extraction (:func:`extract`): a JSON pointer (``/order_id``) or a regex over the text
  (``re:credit updated to: (\\d+)``, the first group);
- the start sequence (:class:`StartPlan`, :class:`StartSequence`): which steps run, in
  which order, what each captures, where the saga id comes from, which step a resend
  replays; pool setup steps (``once_per``) run once per pool member;
- pools (:func:`draw_members`): seeded, replayable assignment of members to sagas;
- status (:class:`StatusSpec`): typed states (``true``, ``1``, ``null`` match JSON
  values), chosen fields recorded, states announced by events (:class:`EventStates`);
- outcomes from answers (:class:`OutcomeRule`).

Nothing here does I/O; a client calls :meth:`StartSequence.request` for the next request,
sends it, and hands the answer back with :meth:`StartSequence.took`.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from saga_harness.pointer import resolve

__all__ = [
    "BUILTINS",
    "Answer",
    "EventStates",
    "Lookup",
    "OutcomeRule",
    "Pool",
    "Request",
    "StartPlan",
    "StartSequence",
    "StartTally",
    "StatusReading",
    "StatusSpec",
    "Step",
    "StepResult",
    "TemplateError",
    "decode_answer",
    "draw_members",
    "extract",
    "fill",
    "member_values",
    "outcome_of",
    "placeholders",
    "saga_variables",
    "state_key",
]

TEXT_LIMIT = 4000  # characters of a text answer kept in the history (an HTML error page can be long)
BUILTINS = ("key", "seed", "i", "seq100", "rand100", "n")
MISSING: Any = object()

# {name}, {name.field}, {name:spec}; {{ and }} are literal braces.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)(?::([^{}]*))?\}")


class TemplateError(ValueError):
    """A template names a value that is not known where it is filled in."""


# -- templates ---------------------------------------------------------------------------


def placeholders(value: Any) -> set[str]:
    """The dotted names a template uses (recursively through lists and tables)."""
    if isinstance(value, str):
        return {m.group(1) for m in _PLACEHOLDER.finditer(value) if m.group(1)}
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    return set()


def lookup(variables: Mapping[str, Any], dotted: str) -> Any:
    """The value ``a.b.c`` names in ``variables`` (tables walked by key); MISSING when absent."""
    node: Any = variables
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return MISSING
    return node


def as_text(value: Any) -> str:
    """A value as it goes into a path, header or string: JSON spellings for booleans and null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def fill(value: Any, variables: Mapping[str, Any], *, partial: bool = False, where: str = "template") -> Any:
    """``value`` with its ``{placeholders}`` filled from ``variables``.

    A string that is one placeholder and nothing else takes the value's own type (a
    number stays a number in a JSON body). ``partial``: an unknown name is left as it is
    (for a second pass once more is known); otherwise it is a :class:`TemplateError`.
    """
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) and not whole.group(2):
            found = lookup(variables, whole.group(1))
            if found is not MISSING:
                return _copy(found)
            if partial:
                return value
            raise _unknown(whole.group(1), variables, where)

        def sub(m: re.Match[str]) -> str:
            if m.group(0) in ("{{", "}}"):
                return m.group(0) if partial else m.group(0)[0]
            name, spec = m.group(1), m.group(2)
            found = lookup(variables, name)
            if found is MISSING:
                if partial:
                    return m.group(0)
                raise _unknown(name, variables, where)
            if spec:
                try:
                    return format(found, spec)
                except (ValueError, TypeError):
                    return as_text(found)
            return as_text(found)

        return _PLACEHOLDER.sub(sub, value) if "{" in value or "}" in value else value
    if isinstance(value, list):
        return [fill(v, variables, partial=partial, where=where) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, variables, partial=partial, where=f"{where}.{k}") for k, v in value.items()}
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _unknown(name: str, variables: Mapping[str, Any], where: str) -> TemplateError:
    known = sorted(k for k in variables if k != "request")
    return TemplateError(f"{where}: {{{name}}} is not known here; known: {', '.join(known) or 'nothing'}")


# -- answers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer as the harness keeps it: status, content type, and the body as JSON
    (``is_json``) or as text."""

    status: int
    content_type: str = ""
    json: Any = None
    is_json: bool = False
    text: str = ""

    def value(self) -> Any:
        """What the history records: the JSON value, or the text cut to :data:`TEXT_LIMIT` characters."""
        if self.is_json:
            return self.json
        return self.text if len(self.text) <= TEXT_LIMIT else self.text[:TEXT_LIMIT] + "…"

    def document(self) -> Any:
        """The body as JSON when it is JSON (also when mislabelled as text); MISSING otherwise."""
        if self.is_json:
            return self.json
        stripped = self.text.strip()
        if stripped[:1] in ("{", "["):
            try:
                return json.loads(stripped)
            except ValueError:
                return MISSING
        return MISSING

    @classmethod
    def of_document(cls, doc: Any, status: int = 200) -> Answer:
        """An answer wrapping a JSON document already parsed (an event, a status body)."""
        return cls(status, "application/json", doc, True, "")


def decode_answer(status: int, content_type: str | None, body: bytes) -> Answer:
    """An answer from its raw parts: JSON when it says so (or says nothing and parses), else text.
    Never raises: an empty body, an HTML error page or broken JSON is text."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    text = body.decode("utf-8", errors="replace")
    if ("json" in ctype or not ctype) and text.strip():
        try:
            return Answer(status, ctype, json.loads(text), True, "")
        except ValueError:
            pass
    return Answer(status, ctype, None, False, text)


def extract(spec: str, answer: Answer) -> Any:
    """The value ``spec`` names in ``answer``: a JSON pointer (``/a/b``, ``""`` for the whole
    body), or ``re:REGEX`` searched in the text (its first group, else the whole match).
    MISSING when it is not there."""
    if spec.startswith("re:"):
        text = answer.text if not answer.is_json else json.dumps(answer.json)
        m = re.search(spec[3:], text, re.MULTILINE)
        if m is None:
            return MISSING
        return m.group(1) if m.groups() else m.group(0)
    doc = answer.document()
    if doc is MISSING:
        return MISSING
    return resolve(doc, spec, MISSING)


def is_extractor(spec: str) -> bool:
    """Whether ``spec`` is a pointer or a regex (otherwise, for a saga id, a capture name or a template)."""
    return spec == "" or spec.startswith("/") or spec.startswith("re:")


# -- typed states ------------------------------------------------------------------------


def state_key(state: Any) -> str:
    """How a state (a string, a boolean, a number, null) is written as a key in a config:
    ``true``/``false``/``null`` and numbers as JSON spells them, strings as they are."""
    return state if isinstance(state, str) else json.dumps(state)


def outcome_of(state: Any, terminal: Mapping[str, str]) -> str | None:
    """The outcome a terminal state means (None while the saga runs, or for None/absent states)."""
    if isinstance(state, (dict, list)):
        return None
    return terminal.get(state_key(state))


# -- the plan ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One request of a saga's start (or of a pool member's setup, with ``once_per``)."""

    name: str
    service: str
    path: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # a JSON template; None: no body
    idempotency_header: str | None = None
    capture: Mapping[str, str] = field(default_factory=dict)  # name -> pointer or re:
    saga_id: str | None = None  # pointer, re:, a capture name, or a template
    expect: tuple[int, ...] = ()  # accepted statuses; empty: any 2xx
    once_per: str | None = None  # a pool kind: run once per member of its pools
    when: str | None = None  # run only when this value (dotted name) is there and truthy
    retry_unknown: bool = False  # resend with the same key when no answer came
    timeout_s: float | None = None

    def accepts(self, status: int) -> bool:
        """Whether ``status`` lets the sequence go on."""
        return status in self.expect if self.expect else 200 <= status < 300


@dataclass(frozen=True)
class Pool:
    """``size`` members of a ``kind`` (a user, an item), each with ``values`` and what its setup captured."""

    name: str
    kind: str
    size: int = 1
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutcomeRule:
    """A step's answer that says how the saga ended: ``status`` (any of), ``text`` (a regex
    searched in the text), ``pointer`` (with ``equals``: that value; without: present)."""

    step: str
    outcome: str
    status: tuple[int, ...] = ()
    text: str | None = None
    pointer: str | None = None
    equals: Any = None
    has_equals: bool = False
    record: Mapping[str, str] = field(default_factory=dict)  # field -> pointer or re:

    def matches(self, answer: Answer) -> bool:
        """Whether ``answer`` is one this rule describes."""
        if self.status and answer.status not in self.status:
            return False
        if self.text is not None:
            text = answer.text if not answer.is_json else json.dumps(answer.json)
            if re.search(self.text.removeprefix("re:"), text, re.MULTILINE) is None:
                return False
        if self.pointer is not None:
            found = extract(self.pointer, answer)
            if found is MISSING or (self.has_equals and found != self.equals):
                return False
        return True


@dataclass(frozen=True)
class StatusReading:
    """A status read, interpreted: the state as the system gave it, its outcome, the chosen fields."""

    state: Any
    outcome: str | None
    fields: Mapping[str, Any] = field(default_factory=dict)


def record_fields(record: Mapping[str, str], answer: Answer) -> dict[str, Any]:
    """The chosen fields present in ``answer`` (absent ones are left out)."""
    out = {}
    for name, spec in record.items():
        value = extract(spec, answer)
        if value is not MISSING:
            out[name] = value
    return out


@dataclass(frozen=True)
class EventStates:
    """States announced by events: where an event holds its saga id and its state (pointers),
    and optionally which values announce which state (``states``: e.g. event type -> state)."""

    saga_id: str
    state: str = "/type"
    states: Mapping[str, Any] = field(default_factory=dict)
    record: Mapping[str, str] = field(default_factory=dict)

    def read(self, event: Mapping[str, Any], terminal: Mapping[str, str]) -> tuple[str, StatusReading] | None:
        """(saga id, reading) when ``event`` announces a state; None otherwise."""
        doc = Answer.of_document(event)
        saga_id = extract(self.saga_id, doc)
        value = extract(self.state, doc)
        if saga_id in (MISSING, None) or value is MISSING:
            return None
        if self.states:
            key = state_key(value) if not isinstance(value, (dict, list)) else None
            if key not in self.states:
                return None
            value = self.states[key]
        return str(saga_id), StatusReading(value, outcome_of(value, terminal), record_fields(self.record, doc))


@dataclass(frozen=True)
class StatusSpec:
    """How a saga's status is read: ``path`` (with ``{saga_id}``) on ``service``, the state's
    pointer, terminal states -> outcome, fields to record, and whether to read while the
    start is still in flight."""

    service: str
    path: str
    state: str
    terminal: Mapping[str, str]
    record: Mapping[str, str] = field(default_factory=dict)
    during_start: bool = True
    found: tuple[int, ...] = (200,)
    from_events: EventStates | None = None

    def read(self, answer: Answer) -> StatusReading | None:
        """The reading an answer gives; None when the saga is not (yet) found there."""
        if answer.status not in self.found:
            return None
        state = extract(self.state, answer)
        state = None if state is MISSING else state
        return StatusReading(state, outcome_of(state, self.terminal), record_fields(self.record, answer))


@dataclass(frozen=True)
class Lookup:
    """A request that finds a saga whose start answer was lost (by the key, or a captured value)."""

    service: str
    path: str
    saga_id: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    found: tuple[int, ...] = (200,)


@dataclass(frozen=True)
class Request:
    """One HTTP request to send, fully rendered: ``service`` names where (the client maps it to a URL)."""

    step: str
    service: str
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any = None  # JSON; None: no body
    timeout_s: float | None = None

    def describe(self) -> dict[str, Any]:
        """What the history records of the call."""
        out: dict[str, Any] = {"service": self.service, "method": self.method, "path": self.path}
        if self.body is not None:
            out["body"] = self.body
        return out


@dataclass(frozen=True)
class StepResult:
    """What one answer did to the sequence: ``ok`` (go on), the saga id once known, captured values."""

    ok: bool
    saga_id: str | None
    captured: Mapping[str, Any]
    error: str | None = None


@dataclass(frozen=True)
class StartPlan:
    """A system's saga start: its steps in order, its pools, the step a resend replays, the
    rules reading an outcome from an answer, how status is read and how a lost start is found."""

    steps: tuple[Step, ...]
    pools: Mapping[str, Pool] = field(default_factory=dict)
    resend: str | None = None  # default: the last saga step
    outcomes: tuple[OutcomeRule, ...] = ()
    status: StatusSpec | None = None
    lookup: Lookup | None = None

    @property
    def saga_steps(self) -> tuple[Step, ...]:
        """The steps run for every saga (not the pools' setup)."""
        return tuple(s for s in self.steps if s.once_per is None)

    def setup_steps(self, kind: str) -> tuple[Step, ...]:
        """The steps run once per member of a pool of ``kind``."""
        return tuple(s for s in self.steps if s.once_per == kind)

    @property
    def resend_step(self) -> Step:
        """The step a duplicate resubmission replays."""
        steps = self.saga_steps
        if self.resend is not None:
            for s in steps:
                if s.name == self.resend:
                    return s
        return steps[-1]

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def rules_for(self, step: str) -> tuple[OutcomeRule, ...]:
        """The outcome rules reading ``step``'s answer."""
        return tuple(r for r in self.outcomes if r.step == step)

    def outcome(self, step: str, answer: Answer) -> tuple[str, dict[str, Any]] | None:
        """(outcome, recorded fields) the first matching rule reads from ``step``'s answer; None if none."""
        for rule in self.rules_for(step):
            if rule.matches(answer):
                return rule.outcome, record_fields(rule.record, answer)
        return None

    @classmethod
    def single(cls, start: Mapping[str, Any], service: str = "client") -> StartPlan:
        """A one-request start from the plain description a SUT plugin gives
        (:class:`saga_harness.sut.SagaApi` ``start``: path, method, idempotency_header, saga_id, headers)."""
        return cls(
            (
                Step(
                    name="start",
                    service=service,
                    path=str(start.get("path", "/sagas")),
                    method=str(start.get("method", "POST")),
                    headers=dict(start.get("headers") or {}),
                    body="{request}",
                    idempotency_header=start.get("idempotency_header", "Idempotency-Key"),
                    saga_id=str(start.get("saga_id", "/saga_id")),
                    retry_unknown=True,
                ),
            )
        )

    # -- to and from JSON (the plan reaches Locust's processes through their environment) ---
    def to_json(self) -> dict[str, Any]:
        """The plan as plain JSON."""
        return {
            "steps": [_step_json(s) for s in self.steps],
            "pools": {n: {"kind": p.kind, "size": p.size, "values": dict(p.values)} for n, p in self.pools.items()},
            "resend": self.resend,
            "outcomes": [
                {
                    "step": r.step,
                    "outcome": r.outcome,
                    "status": list(r.status),
                    "text": r.text,
                    "pointer": r.pointer,
                    "equals": r.equals,
                    "has_equals": r.has_equals,
                    "record": dict(r.record),
                }
                for r in self.outcomes
            ],
            "status": _status_json(self.status) if self.status else None,
            "lookup": (
                {
                    "service": self.lookup.service,
                    "path": self.lookup.path,
                    "saga_id": self.lookup.saga_id,
                    "method": self.lookup.method,
                    "headers": dict(self.lookup.headers),
                    "found": list(self.lookup.found),
                }
                if self.lookup
                else None
            ),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StartPlan:
        """The plan :meth:`to_json` wrote."""
        status = d.get("status")
        lookup_ = d.get("lookup")
        return cls(
            tuple(
                Step(**{**s, "expect": tuple(s.get("expect") or ()), "headers": dict(s.get("headers") or {})})
                for s in d["steps"]
            ),
            {n: Pool(n, p["kind"], p["size"], p.get("values") or {}) for n, p in (d.get("pools") or {}).items()},
            d.get("resend"),
            tuple(OutcomeRule(**{**r, "status": tuple(r.get("status") or ())}) for r in d.get("outcomes") or ()),
            _status_from_json(status) if status else None,
            Lookup(**{**lookup_, "found": tuple(lookup_.get("found") or (200,))}) if lookup_ else None,
        )


def _step_json(s: Step) -> dict[str, Any]:
    return {
        "name": s.name,
        "service": s.service,
        "path": s.path,
        "method": s.method,
        "headers": dict(s.headers),
        "body": s.body,
        "idempotency_header": s.idempotency_header,
        "capture": dict(s.capture),
        "saga_id": s.saga_id,
        "expect": list(s.expect),
        "once_per": s.once_per,
        "when": s.when,
        "retry_unknown": s.retry_unknown,
        "timeout_s": s.timeout_s,
    }


def _status_json(s: StatusSpec) -> dict[str, Any]:
    ev = s.from_events
    return {
        "service": s.service,
        "path": s.path,
        "state": s.state,
        "terminal": dict(s.terminal),
        "record": dict(s.record),
        "during_start": s.during_start,
        "found": list(s.found),
        "from_events": (
            {"saga_id": ev.saga_id, "state": ev.state, "states": dict(ev.states), "record": dict(ev.record)}
            if ev
            else None
        ),
    }


def _status_from_json(d: Mapping[str, Any]) -> StatusSpec:
    ev = d.get("from_events")
    return StatusSpec(
        d["service"],
        d["path"],
        d["state"],
        dict(d["terminal"]),
        dict(d.get("record") or {}),
        bool(d.get("during_start", True)),
        tuple(d.get("found") or (200,)),
        EventStates(ev["saga_id"], ev["state"], ev.get("states") or {}, ev.get("record") or {}) if ev else None,
    )


# -- pools -------------------------------------------------------------------------------


def member_values(pool: Pool, n: int, seed: int = 0) -> dict[str, Any]:
    """Member ``n`` of ``pool`` before its setup: its constant values (templates over ``{n}``,
    ``{seed}``, ``{pool}``), and ``n`` and ``pool`` themselves."""
    base = {"n": n, "seed": seed, "pool": pool.name}
    return {**fill(dict(pool.values), base, partial=True), "n": n, "pool": pool.name}


def draw_members(uses: Mapping[str, str], pools: Mapping[str, Pool], rng: random.Random) -> dict[str, tuple[str, int]]:
    """Which member of which pool each name a trigger uses gets: ``alias -> (pool, index)``, drawn from ``rng``."""
    return {alias: (pool, rng.randrange(pools[pool].size)) for alias, pool in sorted(uses.items())}


def saga_variables(
    *,
    key: str,
    seed: int,
    i: int,
    seq100: int,
    rand100: int,
    request: Any,
    members: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The names a saga's step templates may use: the built-ins, the trigger's request (as
    ``request`` and, for a table, each of its keys), and each drawn member by its alias and,
    unless taken, by its pool's kind (``alias -> (kind, values)``)."""
    out: dict[str, Any] = {}
    if isinstance(request, Mapping):
        out.update(request)
    out["request"] = request
    members = members or {}
    for _alias, (kind, values) in members.items():
        out.setdefault(kind, dict(values))
    for alias, (_kind, values) in members.items():
        out[alias] = dict(values)
    out.update({"key": key, "seed": seed, "i": i, "seq100": seq100, "rand100": rand100})
    return out


# -- one walk through the steps ------------------------------------------------------------


class StartSequence:
    """One walk through ``steps`` with ``variables``: the steps that run (their ``when``
    holds), each request rendered, each answer taken in (captures, the saga id).

    ``capture_into``: where captured values go — a pool kind while setting up a member
    (``{user.user_id}`` afterwards), else the top level (``{order_id}``).
    """

    def __init__(
        self, steps: Iterable[Step], variables: Mapping[str, Any], *, key: str | None, capture_into: str | None = None
    ) -> None:
        self.steps = tuple(steps)
        self.variables: dict[str, Any] = dict(variables)
        self.key = key
        self.capture_into = capture_into
        self.saga_id: str | None = None
        self.saga_id_from: str | None = None  # the step that gave it

    def runs(self) -> Iterator[Step]:
        """The steps that run, in order (a step whose ``when`` does not hold is skipped)."""
        for step in self.steps:
            if step.when is None or _truthy(lookup(self.variables, step.when)):
                yield step

    def request(self, step: Step) -> Request:
        """``step`` rendered with what is known now (TemplateError when a name is not known)."""
        where = f"step {step.name!r}"
        headers = {k: str(fill(v, self.variables, where=f"{where} header {k}")) for k, v in step.headers.items()}
        if step.idempotency_header and self.key is not None:
            headers[step.idempotency_header] = self.key
        body = fill(step.body, self.variables, where=f"{where} body") if step.body is not None else None
        path = fill(step.path, self.variables, where=f"{where} path")
        self._saga_id_by_template(step)
        return Request(step.name, step.service, step.method, as_text(path), headers, body, step.timeout_s)

    def _saga_id_by_template(self, step: Step) -> None:
        # A saga id the client chose (a template over the key or the request) is known before the answer.
        spec = step.saga_id
        if self.saga_id is None and spec and not is_extractor(spec) and "{" in spec:
            self.saga_id = as_text(fill(spec, self.variables, where=f"step {step.name!r} saga_id"))
            self.saga_id_from = step.name

    def took(self, step: Step, answer: Answer) -> StepResult:
        """Take ``step``'s answer: outside ``expect`` it ends the sequence; else its captures
        and the saga id (when this step gives it) are kept."""
        if not step.accepts(answer.status):
            return StepResult(False, self.saga_id, {}, f"HTTP {answer.status}")
        captured = {}
        for name, spec in step.capture.items():
            value = extract(spec, answer)
            if value is not MISSING:
                captured[name] = value
        target = self.variables.setdefault(self.capture_into, {}) if self.capture_into else self.variables
        target.update(captured)
        # The saga id this answer names: a resend answered with another id than the first
        # answer's (a second saga for one key) is recorded as it answered.
        answered = self.saga_id
        spec = step.saga_id
        if spec and not (self.saga_id is not None and self.saga_id_from == step.name and "{" in spec):
            if is_extractor(spec):
                found = extract(spec, answer)
            elif "{" in spec:
                found = fill(spec, self.variables, partial=True)
            else:
                found = lookup(self.variables, spec)
            if found in (MISSING, None, ""):
                return StepResult(False, self.saga_id, captured, f"no saga id at {spec!r} in the answer")
            answered = as_text(found)
            if self.saga_id is None:
                self.saga_id, self.saga_id_from = answered, step.name
        missing = [n for n in step.capture if n not in captured]
        if missing:
            where = ", ".join(f"{n} ({step.capture[n]})" for n in missing)
            return StepResult(False, answered, captured, f"nothing to capture for {where} in the answer")
        return StepResult(True, answered, captured)


def _truthy(value: Any) -> bool:
    return value is not MISSING and value not in (None, False, 0, "", "0", "false") and value != {}


# -- how the starts went, from the history -----------------------------------------------------


class StartTally:
    """Counts a history's starts per idempotency key, line by line (:meth:`add`), as the run's
    stats show them: sagas, started, failed, unanswered, found_later, lost."""

    def __init__(self) -> None:
        self._keys: dict[str, dict[str, Any]] = {}

    def add(self, line: Mapping[str, Any]) -> None:
        """Take one history line (anything but a start's completion is ignored)."""
        kind = line.get("type")
        if kind not in ("ok", "fail", "info") or line.get("key") is None:
            return
        f = line.get("f")
        if f not in ("start_saga", "lookup_saga"):
            return
        k = self._keys.setdefault(str(line["key"]), {"id": False, "fail": False, "last": None, "found": False})
        if line.get("saga_id") and kind != "info":
            k["id"] = True
        if f == "lookup_saga":
            k["found"] = k["found"] or (kind == "ok" and bool(line.get("saga_id")))
            return
        k["fail"] = k["fail"] or kind == "fail"
        k["last"] = kind

    def counts(self) -> dict[str, int]:
        """The counts so far."""
        keys = self._keys.values()
        return {
            "sagas": len(self._keys),
            "started": sum(1 for k in keys if k["id"]),
            "failed": sum(1 for k in keys if k["fail"]),
            "unanswered": sum(1 for k in keys if k["last"] == "info"),
            "found_later": sum(1 for k in keys if k["found"]),
            "lost": sum(1 for k in keys if not k["id"]),
        }
