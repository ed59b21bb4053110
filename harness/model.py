"""The saga model: what the checkers know of a saga system, and all they know.

It says, in terms of evidence in the history — events by type, fields of the
final snapshots — which steps a saga has and how each one shows it happened and
was undone, which quantities must net to zero, which states may follow which,
and which side effects must match the completed sagas. Nothing in a checker is
specific to one system: a second system is a second model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Outcome = Literal["completed", "compensated", "failed"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Frozen):
    """An event that is evidence: its ``type``, optional ``where`` conditions
    (JSON pointer → required value), and where its saga id sits."""

    event: str
    where: dict[str, Any] = Field(default_factory=dict)
    saga_id: str = "/data/saga_id"


class Term(Match):
    """A number an event contributes: ``value`` (pointer). With ``items``, each element
    of that list contributes ``value`` under its ``key`` (e.g. quantity per SKU)."""

    value: str
    items: str | None = None
    key: str | None = None


class Step(_Frozen):
    name: str
    done: Match
    undone: Match | None = None  # None: nothing to undo (e.g. a read-only check)
    compensation: str | None = None  # the compensation's name, for messages


class Quantity(_Frozen):
    """``sum(plus) - sum(minus)`` per saga: zero unless the saga completed; when it
    completed and ``completed_equals`` is given, equal to that term's value."""

    name: str
    plus: list[Term]
    minus: list[Term] = Field(default_factory=list)
    completed_equals: Term | None = None


class Records(_Frozen):
    """A list of records in one service's final snapshot."""

    service: str
    items: str
    saga_id: str = "/saga_id"
    where: dict[str, Any] = Field(default_factory=dict)


class Projection(Records):
    """A side effect: ``per_completed`` records per completed saga, none for the others;
    ``unique`` (a pointer) must not repeat — a consumer that does not dedupe repeats it."""

    name: str
    per_completed: int = 1
    unique: str | None = None


class Agreement(Records):
    """A service's view of each saga's outcome: ``field`` must be one of the values
    listed for the saga's outcome."""

    name: str
    field: str
    completed: list[Any] = Field(default_factory=list)
    compensated: list[Any] = Field(default_factory=list)
    required: bool = Field(default=True, description="must the service have a record of every such saga?")


class StateHistory(Records):
    """Where a snapshot keeps each saga's state transitions, in order."""

    transitions: str
    state: str = "/state"


class NonNegative(_Frozen):
    name: str
    service: str
    items: str
    field: str
    key: str


class Balance(_Frozen):
    """A snapshot number equal to a quantity's net summed over every saga
    (``key``/``items`` given: per key, with ``value`` = ``plus`` minus ``minus`` pointers)."""

    name: str
    service: str
    quantity: str
    value: str | None = None  # pointer to a single number
    items: str | None = None
    key: str | None = None
    plus: str | None = None
    minus: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Balance:
        if (self.value is None) == (self.items is None):
            raise ValueError(f"balance {self.name!r}: give `value` (one number) or `items` + `key` + `plus`")
        if self.items is not None and (self.key is None or self.plus is None):
            raise ValueError(f"balance {self.name!r}: with `items`, give `key` and `plus` (and `minus`)")
        return self


class StateMachine(_Frozen):
    initial: list[str] = Field(default_factory=list)
    terminal: dict[str, Outcome] = Field(default_factory=dict)
    transitions: dict[str, list[str]] = Field(default_factory=dict)


class SagaModel(_Frozen):
    steps: list[Step]
    states: StateMachine = Field(default_factory=StateMachine)
    state_history: StateHistory | None = None
    quantities: list[Quantity] = Field(default_factory=list)
    projections: list[Projection] = Field(default_factory=list)
    agreements: list[Agreement] = Field(default_factory=list)
    non_negative: list[NonNegative] = Field(default_factory=list)
    balances: list[Balance] = Field(default_factory=list)
    triggers: dict[str, Outcome | Literal["any"]] = Field(default_factory=dict)
    # CloudEvent schema folders (absolute paths) merged over the bundled ones for the contracts checker.
    event_schemas: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> SagaModel:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names repeat: {names}")
        known = {q.name for q in self.quantities}
        for b in self.balances:
            if b.quantity not in known:
                raise ValueError(f"balance {b.name!r} names quantity {b.quantity!r}; quantities: {sorted(known)}")
        for state, nexts in self.states.transitions.items():
            if state in self.states.terminal and nexts:
                raise ValueError(f"terminal state {state!r} cannot have transitions {nexts}")
        return self

    def matches(self) -> dict[str, list[tuple[str, str, Match]]]:
        """Event type → (role, name, match) for every piece of evidence (one lookup per event)."""
        out: dict[str, list[tuple[str, str, Match]]] = {}
        for step in self.steps:
            out.setdefault(step.done.event, []).append(("done", step.name, step.done))
            if step.undone is not None:
                out.setdefault(step.undone.event, []).append(("undone", step.name, step.undone))
        for q in self.quantities:
            for role, terms in (("plus", q.plus), ("minus", q.minus)):
                for t in terms:
                    out.setdefault(t.event, []).append((role, q.name, t))
            if q.completed_equals is not None:
                out.setdefault(q.completed_equals.event, []).append(("equals", q.name, q.completed_equals))
        return out
