"""What a run covered: the evidence a green verdict rests on.

"Every invariant held" means little if no saga failed (nothing was compensated) or
the faults hit no saga. :func:`measure` says, from the history index and the
verdicts, in one pass over the sagas:

- per step: how many sagas did it, failed at it, compensated it;
- per fault window: how many sagas were in flight while it was active, and how many
  it *touched* (below); a fault that touched none had no effect on this run;
- per trigger: the outcomes seen;
- per checker: how many sagas and facts it examined;
- the observation: whether the evidence settled and whether the machine was starved
  (:mod:`saga_harness.checkers.observation`).

**Touched**, from what the history holds (gathered by the index in its one pass,
:class:`~saga_harness.history.index.FaultTouch`). A saga in flight during a fault
window (its first request before the window stopped, its outcome — if any — after
it started) is touched when:

1. *involved*: during the window or its aftermath
   (:data:`~saga_harness.history.index.FAULT_AFTERMATH_S`), an event of the saga names
   what the fault targets in its ``source`` or ``type`` (the killed process, either end
   of a faulted link, the faulted delivery queue — or any event at all for a fault on
   every queue; :func:`~saga_harness.history.index.fault_names`), or a request of the saga
   got no answer or a 5xx; or
2. *stalled*: it was in flight for at least :data:`STALL_MIN_S` of the window, and the
   harness saw it move not once while the window lasted (no event, no status change).

Limits: the harness sees events, answers and status changes, not the calls between
services, so a saga whose command crossed a faulted link without an event naming
either end counts only if it stalled; a saga that stalled for a reason of its own
during a window counts as touched; where the harness watches no progress during the
workload (a system without events, whose status is read only while converging),
every saga in flight during a window counts as stalled — an upper bound, shown apart
(``stalled`` beside ``involved``); names are matched as text, parts of a queue's name
too (``orchestrator-fraud`` matches ``fraud`` events, and ``order`` matches ``orders``).

Whether a run that covered nothing is judged: it is not made inconclusive. An
inconclusive verdict means this run could not see what it needed to; a fault that hit
nothing, or a checker with nothing to examine, is a property of the workload and the
model that a rerun would repeat exactly. It is said in a warning (the CLI, the report,
``coverage.warnings`` in ``verdicts.json``), so a green run says what it rests on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from saga_harness.history import History, SagaRecord
    from saga_harness.model import SagaModel

FIRST_SAGAS = 5  # touched sagas named per fault
STALL_MIN_S = 1.0  # shorter than a few status polls (200 ms) and a step's round trip, nothing can look stalled


@dataclass(frozen=True)
class StepCoverage:
    step: str
    done: int = 0  # sagas with evidence it was done
    failed: int = 0  # sagas that failed at it (their status's failed_step, else their first step not done)
    compensated: int = 0  # sagas with evidence it was done and undone


@dataclass(frozen=True)
class FaultCoverage:
    id: str
    kind: str
    target: str
    start_s: float  # since the history's first line
    duration_s: float
    in_flight: int = 0  # sagas in flight while it was active
    touched: int = 0  # of which touched (involved or stalled; see the module's docstring)
    involved: int = 0  # evidence of theirs names the faulted component, or a request of theirs failed
    stalled: int = 0  # nothing of theirs was observed while it lasted
    sagas: tuple[str, ...] = ()  # the first touched sagas

    @property
    def no_effect(self) -> bool:
        return self.touched == 0


@dataclass(frozen=True)
class TriggerCoverage:
    trigger: str
    outcomes: dict[str, int] = field(default_factory=dict)  # completed / compensated / failed / unfinished


@dataclass(frozen=True)
class CheckerCoverage:
    checker: str
    sagas: int | None = None  # None: the checker does not say
    facts: int | None = None


@dataclass(frozen=True)
class Coverage:
    """What a run covered (see the module's docstring)."""

    steps: tuple[StepCoverage, ...] = ()
    faults: tuple[FaultCoverage, ...] = ()
    triggers: tuple[TriggerCoverage, ...] = ()
    checkers: tuple[CheckerCoverage, ...] = ()
    observation: dict[str, Any] = field(default_factory=dict)  # Observation.to_json(): settled, starved, why
    warnings: tuple[str, ...] = ()  # what the run did not cover, in plain language

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [asdict(s) for s in self.steps],
            "faults": [{**asdict(f), "sagas": list(f.sagas)} for f in self.faults],
            "triggers": [asdict(t) for t in self.triggers],
            "checkers": [asdict(c) for c in self.checkers],
            "observation": dict(self.observation),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Coverage:
        def rows(key: str) -> list[Mapping[str, Any]]:
            return [r for r in d.get(key) or () if isinstance(r, Mapping)]

        def known(kind: type, row: Mapping[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in row.items() if k in kind.__dataclass_fields__}  # type: ignore[attr-defined]

        return cls(
            tuple(StepCoverage(**known(StepCoverage, r)) for r in rows("steps")),
            tuple(
                FaultCoverage(**{**known(FaultCoverage, r), "sagas": tuple(r.get("sagas") or ())})
                for r in rows("faults")
            ),
            tuple(TriggerCoverage(str(r.get("trigger")), dict(r.get("outcomes") or {})) for r in rows("triggers")),
            tuple(CheckerCoverage(**known(CheckerCoverage, r)) for r in rows("checkers")),
            dict(d.get("observation") or {}),
            tuple(map(str, d.get("warnings") or ())),
        )


def _failed_at(rec: SagaRecord, model: SagaModel) -> str | None:
    """The step a saga that did not complete failed at: the one its status names, else its first step
    with no evidence it was done."""
    from saga_harness.checkers import _fields

    named = (rec.fields or {}).get("failed_step")
    if named not in (None, ""):
        for step in model.steps:
            if _fields.is_step(named, step):
                return step.name
    return next((s.name for s in model.steps if not rec.done.get(s.name)), None)


def _in_flight(rec: SagaRecord, start: float, stop: float) -> bool:
    if rec.first_invoke is None or rec.first_invoke > stop:
        return False
    return rec.outcome_at is None or rec.outcome_at >= start


def _flying_s(rec: SagaRecord, start: float, stop: float) -> float:
    """How long the saga was in flight during the window."""
    if rec.first_invoke is None:
        return 0.0
    until = stop if rec.outcome_at is None else min(stop, rec.outcome_at)
    return until - max(start, rec.first_invoke)


def measure(history: History, model: SagaModel, results: Iterable[Any]) -> Coverage:
    """The run's coverage, from its index and its checkers' verdicts (their ``examined``)."""
    from saga_harness.checkers.observation import observe

    steps = {s.name: [0, 0, 0] for s in model.steps}
    triggers: dict[str, dict[str, int]] = {}
    windows = history.fault_windows()
    in_flight = [0] * len(windows)
    stalled: list[set[str]] = [set() for _ in windows]
    ids = [str(f.get("id") or f"{f.get('kind')}:{f.get('target')}") for _s, _e, f in windows]
    touches = [history.touches.get(i) for i in ids]
    flying: list[set[str]] = [set() for _ in windows]
    for rec in history.sagas.values():
        for name, evs in rec.done.items():
            counts = steps.get(name)
            if counts is not None and evs:
                counts[0] += 1
        for name, evs in rec.undone.items():  # (few sagas undo anything)
            counts = steps.get(name)
            if counts is not None and evs and rec.done.get(name):
                counts[2] += 1
        if rec.outcome in ("compensated", "failed"):
            at = _failed_at(rec, model)
            if at is not None:
                steps[at][1] += 1
        if rec.trigger is not None:
            outcomes = triggers.setdefault(rec.trigger, {})
            key = rec.outcome or "unfinished"
            outcomes[key] = outcomes.get(key, 0) + 1
        for i, (start, stop, _fault) in enumerate(windows):  # (a run has a few dozen windows at most)
            if not _in_flight(rec, start, stop):
                continue
            in_flight[i] += 1
            flying[i].add(rec.saga_id)
            touch = touches[i]
            seen = touch.seen if touch is not None else set()
            if rec.saga_id not in seen and _flying_s(rec, start, stop) >= STALL_MIN_S:
                stalled[i].add(rec.saga_id)
    t0 = history.start if history.start is not None else 0.0
    faults = []
    for i, (start, stop, fault) in enumerate(windows):
        touch = touches[i]
        involved = (touch.involved & flying[i]) if touch is not None else set()
        touched = involved | stalled[i]
        faults.append(
            FaultCoverage(
                ids[i],
                str(fault.get("kind") or ""),
                str(fault.get("target") or ""),
                round(start - t0, 3),
                round(max(0.0, stop - start), 3),
                in_flight[i],
                len(touched),
                len(involved),
                len(stalled[i]),
                tuple(sorted(touched)[:FIRST_SAGAS]),
            )
        )
    checkers = tuple(
        CheckerCoverage(
            r.name,
            r.examined.sagas if r.examined is not None else None,
            r.examined.facts if r.examined is not None else None,
        )
        for r in results
    )
    observation = observe(history)
    coverage = Coverage(
        tuple(StepCoverage(name, *counts) for name, counts in steps.items()),
        tuple(faults),
        tuple(TriggerCoverage(t, dict(sorted(o.items()))) for t, o in sorted(triggers.items())),
        checkers,
        observation.to_json(),
    )
    return replace(coverage, warnings=tuple(warnings(coverage, len(history.sagas))))


def warnings(coverage: Coverage, sagas: int) -> list[str]:
    """What the run did not cover, each in a sentence that says what to change."""
    out: list[str] = []
    if sagas == 0:
        out.append("no saga was started: every check holds on nothing — start sagas (--sagas N)")
    for f in coverage.faults:
        if f.no_effect:
            out.append(
                f"fault {f.id} ({f.kind} {f.target}, {f.duration_s:g} s at {f.start_s:g} s) touched no saga "
                f"({f.in_flight} in flight): it had no effect on this run — schedule it while sagas are in flight, "
                f"on a component they use"
            )
    for c in coverage.checkers:
        if c.sagas == 0 and c.facts == 0:
            out.append(
                f"{c.checker} examined nothing (0 sagas, 0 facts): its ok rests on no evidence — the model "
                f"declares nothing it judges, or no saga reached it (widen the trigger mix)"
            )
    return out
