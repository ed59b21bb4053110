"""The saga model: what the checkers know of a saga system, and all they know.

It says, in terms of evidence in the history, which steps a saga has and how
each one shows it happened and was undone, which quantities must net to zero,
which states may follow which, which side effects must match the completed
sagas, and what each trigger demands. Nothing in a checker is specific to one
system: a second system is a second model.

Evidence (:class:`Match`) names exactly one source:

- ``event = TYPE``: a captured CloudEvent of that type (``where`` conditions,
  ``saga_id`` pointer);
- ``answer = STEP``: an HTTP answer the harness observed to a request of the
  saga's start step STEP (``status``, ``text``, ``pointer`` + ``equals``/``in``);
- ``read = NAME``: a per-saga read (a snapshot named NAME holding one entry per
  saga: ``{"saga_id", "status", "body"}``), judged by ``pointer`` + ``equals``/``in``
  (a ``pointer`` alone: the value there is truthy);
- ``state = X`` / ``states = [X, …]``: the saga was seen in that state.

Any but a state may also say when the system records the fact happened (``at``, a
pointer), which part of a step it proves (``per``: a step done once per order
line), and for answers whether a repeat is another effect (``repeats``). A step may
say which steps it waits for (``after``: steps side by side); ``event_order`` says
how far the events' arrival orders them. Absence of evidence proves absence only
where its source could have shown it (an answer that came, a saga that was read).
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

Outcome = Literal["completed", "compensated", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("completed", "compensated", "failed")
Source = Literal["event", "answer", "read", "state"]
REGEX = "re:"


def state_key(value: Any) -> str:
    """A state as a TOML key names it: a string as it is, any other JSON value as JSON
    (``true``, ``1``, ``null``) — so ``true = "completed"`` matches the JSON value true."""
    return value if isinstance(value, str) else json.dumps(value)


def same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` (Python's ``True == 1`` is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def text_matches(expected: str, text: Any) -> bool:
    """``expected`` is ``"re:REGEX"`` (searched in ``text``) or a text ``text`` must equal (trimmed)."""
    if text is None:
        return False
    text = text if isinstance(text, str) else json.dumps(text, separators=(",", ":"))
    if expected.startswith(REGEX):
        return re.search(expected[len(REGEX) :], text) is not None
    return text.strip() == expected.strip()


def _error(message: str) -> PydanticCustomError:
    # A custom error's message is shown as it is: a ValueError's gets "Value error, " before it.
    return PydanticCustomError("saga_model", message)


def _close(word: str, options: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" — did you mean {close[0]!r}?" if close else ""


def _check_regex(key: str, value: Any) -> None:
    if isinstance(value, str) and value.startswith(REGEX):
        try:
            re.compile(value[len(REGEX) :])
        except re.error as exc:
            raise _error(f"`{key}` = {value!r} is not a valid regular expression ({exc})") from None


def _check_pointer(key: str, value: Any) -> None:
    if isinstance(value, str) and value and not value.startswith("/"):
        raise _error(f'`{key}` = {value!r} is not a JSON pointer: pointers start with "/", e.g. "/{value}"')


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- evidence ------------------------------------------------------------------------------
_SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "event": ("where", "saga_id", "at", "per"),
    "answer": ("status", "text", "pointer", "equals", "in", "where", "repeats", "at", "per"),
    "read": ("status", "text", "pointer", "equals", "in", "where", "at", "per"),
    "state": (),
}
_SOURCE_HELP = {
    "event": "`event` = TYPE (a CloudEvent), with `where` (pointer -> value), `saga_id` (pointer to the saga id), "
    "`at` and `per`",
    "answer": "`answer` = STEP (an answer to a request of that [saga.start] step), with `status`, `text` "
    '("re:REGEX" or the whole text), `pointer` + `equals`/`in`, `where`, `repeats`, `at` and `per`',
    "read": "`read` = NAME (a per-saga read), with `status`, `pointer` + `equals`/`in`, `text`, `where`, `at` "
    "and `per`",
    "state": "`state` = X or `states` = [X, ...] (the saga seen in that state)",
}
_DEFAULTS: dict[str, Any] = {"where": {}, "saga_id": "/data/saga_id", "repeats": "replay"}
# Every key a piece of evidence may have, and the quantity terms' own.
EVIDENCE_KEYS = ("event", "answer", "read", "state", "states", *sorted({k for v in _SOURCE_KEYS.values() for k in v}))
TERM_KEYS = ("value", "items", "key")


def _evidence(data: dict[str, Any], term: bool) -> dict[str, Any]:
    """Check which keys go together, and normalise ``state``/``equals``/``status`` to lists.

    A mistake found here is raised before pydantic looks for unknown keys: its message names
    them too (a misspelt ``pointr`` is why ``equals`` has no ``pointer``)."""
    try:
        return _evidence_keys(data, term)
    except PydanticCustomError as exc:
        known = (*EVIDENCE_KEYS, *(TERM_KEYS if term else ()))
        unknown = [k for k in data if k not in known]
        if not unknown:
            raise
        hints = "; ".join(f"`{k}` is not a key{_close(k, known)}" for k in unknown)
        raise _error(f"{exc.message()} ({hints})") from None


def _evidence_keys(data: dict[str, Any], term: bool) -> dict[str, Any]:
    what = "a quantity term" if term else "evidence"
    if "state" in data and "states" in data:
        raise _error("give `state` (one state) or `states` (a list of states), not both")
    sources = [s for s in ("event", "answer", "read") if data.get(s) is not None]
    if "state" in data or data.get("states") is not None:
        sources.append("state")
    if len(sources) != 1:
        got = f" (got {' and '.join(f'`{s}`' for s in sources)})" if sources else ""
        options = ("event", "answer", "read") if term else ("event", "answer", "read", "state")
        raise _error(f"{what} needs exactly one source{got}. Sources: " + "; ".join(_SOURCE_HELP[s] for s in options))
    src = sources[0]
    if term and src == "state":
        raise _error(
            "a quantity term needs a number, and the status history has none: take it from an `event`, "
            "an `answer` or a `read` (`value` = a pointer to it)"
        )
    for key, value in data.items():
        if key in (src, "states") or key in TERM_KEYS or key in _SOURCE_KEYS[src] or key not in EVIDENCE_KEYS:
            continue  # unknown keys are pydantic's to report (with "did you mean")
        if value is None or (key in _DEFAULTS and value == _DEFAULTS[key]):
            continue
        owners = " or ".join(f"`{s}`" for s, keys in _SOURCE_KEYS.items() if key in keys)
        raise _error(f"`{key}` goes with {owners}, not with `{src}`. With `{src}`: {_SOURCE_HELP[src]}")
    out = dict(data)
    if out.get("in") is None:
        out.pop("in", None)
    if "equals" in out and "in" in out:
        raise _error("give `equals` (one value) or `in` (a list of values), not both")
    if ("equals" in out or "in" in out) and not out.get("pointer"):
        raise _error('`equals` / `in` test the value at `pointer`: give `pointer` too (e.g. pointer = "/status")')
    if "equals" in out:
        out["in"] = [out.pop("equals")]
    if "state" in out:
        out["states"] = [out.pop("state")]
    if isinstance(out.get("status"), int):
        out["status"] = [out["status"]]
    for key in ("pointer", "saga_id", "at", "per"):
        _check_pointer(key, out.get(key))
    for pointer in out.get("where") or {}:
        _check_pointer("where", pointer)
    _check_regex("text", out.get("text"))
    if term:
        value = out.get("value")
        if isinstance(value, str) and value.startswith(REGEX):
            if src == "event":
                raise _error('an event term\'s `value` is a JSON pointer (e.g. "/data/amount"), not a regex')
            _check_regex("value", value)
        else:
            _check_pointer("value", value)
        for key in ("items", "key"):
            _check_pointer(key, out.get(key))
    return out


class Match(_Frozen):
    """Evidence that something happened to a saga, from exactly one source (see the module's doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    event: str | None = Field(default=None, description="a CloudEvent type")
    where: dict[str, Any] = Field(default_factory=dict, description="conditions: JSON pointer -> required value")
    saga_id: str = Field(default="/data/saga_id", description="pointer to the saga id in the event")
    answer: str | None = Field(default=None, description="a [saga.start] step: an answer to its request")
    read: str | None = Field(default=None, description="a per-saga read's name")
    states: list[Any] | None = Field(default=None, description="the saga seen in one of these states (`state`: one)")
    status: list[int] | None = Field(default=None, description="accepted HTTP statuses of the answer or read (2xx)")
    text: str | None = Field(default=None, description='the answer\'s text: "re:REGEX" (searched) or the whole text')
    pointer: str | None = Field(
        default=None,
        description="a pointer into the answer's or read's JSON body: its value must be in `in` (`equals`), or, "
        "alone, truthy (not null, false, 0 or empty)",
    )
    in_: list[Any] | None = Field(default=None, alias="in", description="accepted values at `pointer` (`equals`: one)")
    at: str | None = Field(
        default=None,
        description="a pointer to when the system says it happened (epoch seconds or an ISO time), e.g. a read's "
        "/released_at: it orders facts the harness's own observations cannot (two reads taken together); an "
        "event's replaces its CloudEvent time",
    )
    per: str | None = Field(
        default=None,
        description="a pointer to what tells one part of the step from another (an order line's /data/sku): the "
        "step takes effect once per part, and each part done is undone",
    )
    repeats: Literal["replay", "effect"] = Field(
        default="replay",
        description='answers: "replay" — matching answers to one saga\'s resent requests are one effect (a system '
        'that replays its answer); "effect" — each is one more effect (a system that answers a repeat differently)',
    )

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, data: Any) -> Any:
        return _evidence(data, term=False) if isinstance(data, dict) else data

    @property
    def source(self) -> Source:
        """Where the evidence comes from: ``event``, ``answer``, ``read`` or ``state``."""
        if self.event is not None:
            return "event"
        if self.answer is not None:
            return "answer"
        if self.read is not None:
            return "read"
        return "state"

    def describe(self) -> str:
        """The evidence in a few words, for messages (an event: its type)."""
        if self.event is not None:
            return self.event
        cond = ""
        if self.pointer is not None:
            values = self.in_ or []
            cond = f" {self.pointer}" + (
                f" = {json.dumps(values[0])}" if len(values) == 1 else f" in {json.dumps(values)}"
            )
        if self.text is not None:
            cond += f" {self.text!r}"
        if self.answer is not None:
            status = "/".join(map(str, self.status)) if self.status else "2xx"
            return f"answer {status} to {self.answer}{cond}"
        if self.read is not None:
            return f"read {self.read}{cond}"
        shown = ", ".join(state_key(s) for s in self.states or [])
        return f"state {shown}" if len(self.states or []) == 1 else f"one of the states {shown}"

    def accepts_status(self, status: int | None) -> bool:
        """An answer's or read's HTTP status is one this evidence accepts (default: 2xx)."""
        if status is None:
            return False
        return status in self.status if self.status else 200 <= status < 300

    def accepts_state(self, state: Any) -> bool:
        """The saga seen in ``state`` is this evidence (states compare as their TOML keys)."""
        key = state_key(state)
        return any(state_key(s) == key for s in self.states or ())


class Term(Match):
    """A number evidence contributes: ``value`` (a pointer; an answer's or read's text:
    ``"re:REGEX"``, its first group). With ``items``, each element of that list contributes
    ``value`` under its ``key`` (e.g. quantity per SKU). A read contributes what the
    saga's latest read says, however often it was read."""

    value: str = Field(description="pointer to the number (an answer's or read's text: \"re:REGEX\", its first group)")
    items: str | None = Field(default=None, description="pointer to a list: each element contributes `value`")
    key: str | None = Field(default=None, description="with `items`: pointer to each element's key (e.g. /sku)")

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, data: Any) -> Any:
        return _evidence(data, term=True) if isinstance(data, dict) else data


class Step(_Frozen):
    """One forward step: the evidence it was ``done`` and, when it can be undone, ``undone``."""

    name: str = Field(description="the step's name (triggers' `fails_at`, messages)")
    done: Match = Field(description="the evidence it was done (one source: event, answer, read or state)")
    undone: Match | None = Field(
        default=None, description="the evidence it was undone; none: nothing to undo (a check, the last step)"
    )
    compensation: str | None = Field(
        default=None,
        description="the compensation's name, for messages; the status's compensations_done/_pending may use it",
    )
    after: list[str] | None = Field(
        default=None,
        description="the steps that must be done before it (earlier in the list); default: the one just before "
        'it. after = [] for a step that runs beside the earlier ones (a fan-out), after = ["payment"] for one '
        "that waits for payment only",
    )


class Quantity(_Frozen):
    """``sum(plus) - sum(minus)`` per saga: zero unless the saga completed; when it
    completed and ``completed_equals`` is given, equal to that term's value."""

    name: str = Field(description="the quantity's name (balances, messages)")
    plus: list[Term] = Field(description="terms that add to it (a charge, a reservation)")
    minus: list[Term] = Field(default_factory=list, description="terms that take from it (a refund, a release)")
    completed_equals: Term | None = Field(
        default=None, description="what it must come to for a completed saga (e.g. the order's total)"
    )


class Records(_Frozen):
    """A list of records in one service's final snapshot."""

    service: str = Field(description="the snapshot's name (a service's, or a per-saga / per-member read's)")
    items: str = Field(description='pointer to the list of records ("" : the snapshot is the list)')
    saga_id: str = Field(default="/saga_id", description="pointer to the saga id in a record")
    where: dict[str, Any] = Field(default_factory=dict, description="only records with these values (pointer -> value)")


class Projection(Records):
    """A side effect: ``per_completed`` records per completed saga, none for the others;
    ``unique`` (a pointer) must not repeat — a consumer that does not dedupe repeats it."""

    name: str = Field(description="the side effect's name (messages)")
    per_completed: int = Field(default=1, description="records per completed saga")
    unique: str | None = Field(default=None, description="pointer to a value that must not repeat (an event id)")


class Agreement(Records):
    """A service's view of each saga's outcome: ``field`` must be one of the values
    listed for the saga's outcome."""

    name: str = Field(description="the agreement's name (messages)")
    field: str = Field(description="pointer to the service's view of the outcome in a record")
    completed: list[Any] = Field(default_factory=list, description="values meaning completed")
    compensated: list[Any] = Field(default_factory=list, description="values meaning compensated")
    required: bool = Field(default=True, description="must the service have a record of every such saga?")


class StateHistory(Records):
    """Where a snapshot keeps each saga's state transitions, in order."""

    transitions: str = Field(description="pointer to a record's list of transitions, in order")
    state: str = Field(default="/state", description="pointer to the state in a transition")


class NonNegative(_Frozen):
    """A number in a snapshot that must never be below zero (stock, credit)."""

    name: str = Field(description="the rule's name (messages)")
    service: str = Field(description="the snapshot's name")
    items: str = Field(description='pointer to the list of records ("": the snapshot is the list)')
    field: str = Field(description="pointer to the number in a record")
    key: str = Field(description="pointer to what names a record (messages)")


class Balance(_Frozen):
    """A snapshot number equal to a quantity's net summed over every saga: ``value`` (one
    number), or per ``key`` of the ``items`` list, ``plus`` minus ``minus`` (pointers; either
    may be left out — ``minus = "/credit"`` alone: credit fell by the quantity). With a baseline
    snapshot, what this run changed."""

    name: str = Field(description="the balance's name (messages)")
    service: str = Field(description="the snapshot's name")
    quantity: str = Field(description="the quantity whose net it must equal")
    value: str | None = Field(default=None, description="pointer to one number")
    items: str | None = Field(default=None, description='or: pointer to a list of records ("": the snapshot)')
    key: str | None = Field(default=None, description="with `items`: pointer to a record's key")
    plus: str | None = Field(default=None, description="with `items`: pointer to a number that grows with it")
    minus: str | None = Field(default=None, description="with `items`: pointer to a number that falls with it")

    @model_validator(mode="after")
    def _shape(self) -> Balance:
        if (self.value is None) == (self.items is None):
            raise _error(f"balance {self.name!r}: give `value` (one number) or `items` + `key` + `plus`")
        if self.items is not None and (self.key is None or (self.plus is None and self.minus is None)):
            raise _error(f"balance {self.name!r}: with `items`, give `key` and `plus` and/or `minus`")
        return self


class StateMachine(_Frozen):
    """The states a saga may pass through. A state that is not a string is named by its JSON
    (``true``, ``1``, ``null``)."""

    initial: list[Any] = Field(default_factory=list, description="the states a saga may start in")
    terminal: dict[str, Outcome] = Field(default_factory=dict, description="terminal state -> its outcome")
    transitions: dict[str, list[Any]] = Field(default_factory=dict, description="state -> the states that may follow")


class Convergence(_Frozen):
    """How convergence is judged over time: a saga stuck is a violation, a slow one is measured."""

    objective_s: float | None = Field(
        default=None,
        gt=0,
        description="the time-to-converge objective, per saga (first request to outcome): a saga slower than "
        "this is reported as slow, not as a violation; default: the run's convergence deadline as recorded "
        "(30 s when the history does not say)",
    )
    quiet_s: float = Field(
        default=10.0,
        gt=0,
        description="an unfinished saga with no state change, event or retry for this long before observation "
        "ended is stuck (a violation); one that moved within it is still progressing: slow, and inconclusive "
        "for that saga. Longer than the longest pause the system takes on purpose (a retry's backoff)",
    )


# -- triggers ------------------------------------------------------------------------------
def _outcomes(value: Any, key: str) -> Any:
    """One outcome or a list; "any" is every outcome. Kept in the order completed, compensated, failed."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        return value  # pydantic says what is wrong with it
    out: set[str] = set()
    for item in items:
        if item == "any":
            out.update(OUTCOMES)
        elif item in OUTCOMES:
            out.add(item)
        else:
            raise _error(
                f"`{key}`: {item!r} is not an outcome; outcomes: completed, compensated, failed, any"
                + _close(item, (*OUTCOMES, "any"))
            )
    if not out:
        raise _error(f"`{key}` accepts no outcome: give at least one of completed, compensated, failed, any")
    return tuple(o for o in OUTCOMES if o in out)


class TriggerExpectation(_Frozen):
    """What a trigger demands of the sagas it starts.

    ``outcome``: the accepted outcomes (one, a list, or "any"); ``under_faults``: the
    ones accepted instead when the saga's life overlaps a fault window (None: the same);
    ``fails_at``: the step where it must fail; ``reason`` / ``error_type``: what its
    status must record (text, or ``"re:REGEX"``). A plain string is an outcome."""

    outcome: tuple[Outcome, ...] = Field(description='the outcome demanded, or a list of accepted ones ("any": all)')
    under_faults: tuple[Outcome, ...] | None = Field(
        default=None, description="the outcomes accepted instead when the saga's life overlaps a fault window"
    )
    fails_at: str | None = Field(default=None, description="the step where a saga that does not complete must fail")
    reason: str | None = Field(default=None, description='the reason its status must record (text, or "re:REGEX")')
    error_type: str | None = Field(
        default=None, description='the error type its status must record (text, or "re:REGEX")'
    )

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"outcome": data}
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "outcome" in data:
            data["outcome"] = _outcomes(data["outcome"], "outcome")
        if data.get("under_faults") is not None:
            data["under_faults"] = _outcomes(data["under_faults"], "under_faults")
        for key in ("reason", "error_type"):
            _check_regex(key, data.get(key))
        return data

    @model_validator(mode="after")
    def _fails_somewhere(self) -> TriggerExpectation:
        if self.fails_at is not None and self.outcome == ("completed",):
            raise _error(f"fails_at = {self.fails_at!r}: a saga that must fail cannot demand outcome completed")
        return self

    def accepted(self, faulted: bool) -> tuple[Outcome, ...]:
        """The outcomes accepted; ``faulted``: the saga's life overlapped a fault window."""
        return self.under_faults if faulted and self.under_faults is not None else self.outcome

    def describe(self, faulted: bool = False) -> str:
        accepted = self.accepted(faulted)
        if len(accepted) == len(OUTCOMES):
            return "any outcome"
        return accepted[0] if len(accepted) == 1 else "one of " + ", ".join(accepted)


class SagaModel(_Frozen):
    """Everything a checker knows of a saga system."""

    steps: list[Step] = Field(default_factory=list, description="the forward steps, in order (optional)")
    states: StateMachine = Field(default_factory=StateMachine, description="the state machine")
    state_history: StateHistory | None = Field(
        default=None, description="where a snapshot keeps each saga's transitions"
    )
    quantities: list[Quantity] = Field(default_factory=list, description="numbers that net to zero unless completed")
    projections: list[Projection] = Field(default_factory=list, description="side effects of completed sagas")
    agreements: list[Agreement] = Field(default_factory=list, description="services' views of each saga's outcome")
    non_negative: list[NonNegative] = Field(default_factory=list, description="numbers never below zero")
    balances: list[Balance] = Field(default_factory=list, description="snapshot numbers equal to a quantity's net")
    triggers: dict[str, TriggerExpectation] = Field(
        default_factory=dict, description="trigger -> what it demands (over [triggers.NAME]'s own)"
    )
    convergence: Convergence = Field(
        default_factory=Convergence, description="the time-to-converge objective and when a saga is stuck"
    )
    event_order: Literal["auto", "arrival", "time"] = Field(
        default="auto",
        description="how far the events' arrival orders them where their producer's times cannot (the same "
        'second): "arrival" — they arrive in the order they happened (an event log read in order); "time" — '
        'the delivery reorders them (a bus pushing side by side): never; "auto" — unless the run shows an '
        "event stamped later arriving first",
    )
    # CloudEvent schema folders (absolute paths) merged over the bundled ones for the contracts checker.
    event_schemas: list[str] = Field(default_factory=list, description="set by the harness from [contracts]")

    @field_validator("triggers")
    @classmethod
    def _known_steps(cls, triggers: dict[str, TriggerExpectation], info: ValidationInfo) -> Any:
        if "steps" not in info.data:
            return triggers  # the steps are wrong themselves: said already
        steps = [s.name for s in info.data["steps"]]
        for name, t in triggers.items():
            if t.fails_at is not None and t.fails_at not in steps:
                known = f"; steps: {', '.join(steps)}" if steps else "; [model.steps] declares none"
                raise _error(
                    f"trigger {name!r}: fails_at = {t.fails_at!r} is not a step{_close(t.fails_at, steps)}{known}"
                )
        return triggers

    @model_validator(mode="after")
    def _consistent(self) -> SagaModel:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise _error(f"step names repeat: {names}")
        for i, step in enumerate(self.steps):
            for name in step.after or ():
                if name not in names[:i]:
                    where = "a later step" if name in names else "not a step"
                    raise _error(
                        f"step {step.name!r}: after = {name!r} is {where}{_close(name, names[:i])}; "
                        f"a step waits for steps listed before it: {', '.join(names[:i]) or 'none'}"
                    )
        known = {q.name for q in self.quantities}
        for b in self.balances:
            if b.quantity not in known:
                raise _error(
                    f"balance {b.name!r} names quantity {b.quantity!r}{_close(b.quantity, known)}; "
                    f"quantities: {sorted(known)}"
                )
        for state, nexts in self.states.transitions.items():
            if state in self.states.terminal and nexts:
                raise _error(f"terminal state {state!r} cannot have transitions {nexts}")
        return self

    def matches(self) -> dict[str, list[tuple[str, str, Match]]]:
        """Event type → (role, name, match) for every piece of event evidence (one lookup per event).

        Roles: ``done``/``undone`` (name: the step), ``plus``/``minus``/``equals`` (name: the quantity)."""
        out: dict[str, list[tuple[str, str, Match]]] = {}
        for role, name, m in self.evidence():
            if m.event is not None:
                out.setdefault(m.event, []).append((role, name, m))
        return out

    def evidence(self) -> list[tuple[str, str, Match]]:
        """Every piece of evidence, of every source: (role, name, match), as :meth:`matches`."""
        out: list[tuple[str, str, Match]] = []
        for step in self.steps:
            out.append(("done", step.name, step.done))
            if step.undone is not None:
                out.append(("undone", step.name, step.undone))
        for q in self.quantities:
            for role, terms in (("plus", q.plus), ("minus", q.minus)):
                out.extend((role, q.name, t) for t in terms)
            if q.completed_equals is not None:
                out.append(("equals", q.name, q.completed_equals))
        return out

    def expectation(self, trigger: str | None) -> TriggerExpectation | None:
        """What ``trigger`` demands (None: nothing). A plain outcome put in by ``model_copy`` counts too."""
        if trigger is None:
            return None
        want = self.triggers.get(trigger)
        if want is None or isinstance(want, TriggerExpectation):
            return want
        return TriggerExpectation.model_validate(want)

    def step_index(self) -> dict[str, int]:
        """Step name → its place in the forward order."""
        return {s.name: i for i, s in enumerate(self.steps)}

    def precedence(self) -> dict[str, frozenset[str]]:
        """Step name → the steps that must be done before it (its ``after``, transitively)."""
        out: dict[str, frozenset[str]] = {}
        for i, step in enumerate(self.steps):
            direct = step.after if step.after is not None else [s.name for s in self.steps[i - 1 : i]]
            out[step.name] = frozenset(direct).union(*(out[d] for d in direct))
        return out

    @property
    def sequential(self) -> bool:
        """Every step waits for the one before it (no ``after`` says otherwise)."""
        return all(s.after is None for s in self.steps)
