"""Outcome oracle: a saga started with a trigger ends as the trigger demands.

A trigger accepts a set of outcomes, and another set (``under_faults``) for a saga
whose life — first request to outcome, by the harness's clock — overlaps a fault
window. Where it declares ``fails_at``, a saga that did not complete must have
failed there: every step it waits for done (in order: the compensation checker judges
order on every saga), no step that waits for it done, and — where the status records them —
``failed_step`` naming that step, ``error_type`` and ``reason`` the ones declared
(text, or ``"re:REGEX"``). A saga judged by ``under_faults`` is not asked where it
failed: a fault may stop it anywhere. A field the run never recorded is not judged
(counted in ``fields_unrecorded``); one recorded empty is a violation.

Proved by evidence present: a wrong outcome seen, a step done after the one that must
fail, a recorded field that says otherwise. Inferred from evidence absent (held back when
the run's evidence was not complete): a step before the failing one with no evidence it
was done.
"""

from __future__ import annotations

from typing import Any

from saga_harness.checkers import _fields, register
from saga_harness.checkers.observation import observe
from saga_harness.checkers.verdict import Examined, Verdict, Violation, verdict
from saga_harness.history import History, SagaRecord
from saga_harness.model import SagaModel, TriggerExpectation, text_matches

NAME = "outcome"


def overlaps_fault(rec: SagaRecord, windows: list[tuple[float, float, dict[str, Any]]], end: float | None) -> bool:
    """Did the saga's life (first request to outcome) overlap a fault window? Unknown ends
    count as overlapping: a saga is never judged more strictly for what was not seen."""
    start = rec.first_invoke if rec.first_invoke is not None else float("-inf")
    stop = rec.outcome_at if rec.outcome_at is not None else (end if end is not None else float("inf"))
    return any(ws <= stop and we >= start for ws, we, _f in windows)


class _Judge:
    def __init__(self, history: History, model: SagaModel) -> None:
        self.model = model
        self.windows = history.fault_windows()
        self.end = history.end
        self.out: list[Violation] = []
        self.by_trigger: dict[str, dict[str, int]] = {}
        self.under_faults = self.relaxed = self.shaped = self.unrecorded = 0
        self.sagas = self.facts = 0

    def saga(self, rec: SagaRecord) -> None:
        if rec.trigger is None or rec.outcome is None:
            return
        self.sagas += 1
        self.facts += 1 + len(rec.done)  # its outcome, and each step seen done
        counts = self.by_trigger.setdefault(rec.trigger, {})
        counts[rec.outcome] = counts.get(rec.outcome, 0) + 1
        want = self.model.expectation(rec.trigger)
        if want is None:
            return
        faulted = bool(self.windows) and overlaps_fault(rec, self.windows, self.end)
        self.under_faults += faulted
        if rec.outcome not in want.accepted(faulted):
            during = ", during a fault" if faulted and want.under_faults is not None else ""
            self.out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    None,
                    f"{want.describe(faulted)} (trigger {rec.trigger!r}{during})",
                    f"{rec.outcome}",
                    (rec.outcome_ref or "",),
                    cause=f"trigger {rec.trigger!r} ended {rec.outcome}, not {want.describe(faulted)}{during}",
                )
            )
            return
        if rec.outcome == "completed":
            return
        if faulted and want.under_faults is not None:
            self.relaxed += 1
            return
        if want.fails_at is not None:
            self._fails_at(rec, want)
        for key in ("error_type", "reason"):
            self._field(rec, want, key)

    def _fails_at(self, rec: SagaRecord, want: TriggerExpectation) -> None:
        at = want.fails_at
        self.shaped += 1
        steps = self.model.steps
        place = self.model.step_index()[at]  # type: ignore[index] - the model checks fails_at names a step
        before = self.model.precedence()
        for step in steps[:place]:
            if step.name not in before[at]:
                continue  # a branch beside it: it may or may not have been done
            if not rec.done.get(step.name) and rec.observed(step.done):
                self.out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        step.name,
                        f"{step.name} done before the saga failed at {at} (trigger {rec.trigger!r})",
                        f"no evidence it was done: no {step.done.describe()}",
                        (rec.outcome_ref or "",),
                        basis="absent",
                        cause=f"trigger {rec.trigger!r} failed at {at} without evidence of {step.name} before it",
                    )
                )
        for step in steps[place + 1 :]:
            if at not in before[step.name]:
                continue  # it does not wait for the step that failed
            evs = rec.done.get(step.name)
            if evs:
                self.out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        step.name,
                        f"nothing done after {at}, where trigger {rec.trigger!r} must fail",
                        f"{step.name} was done",
                        tuple(e.ref for e in evs),
                        cause=f"trigger {rec.trigger!r} went past {at}: {step.name} was done",
                    )
                )
        fields = rec.fields or {}
        if "failed_step" not in fields:
            self.unrecorded += 1
            return
        named = fields["failed_step"]
        if not _fields.is_step(named, steps[place]):
            self.out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    at,
                    f"the saga names {at} as the step that failed (trigger {rec.trigger!r})",
                    f"failed_step = {named!r}" if named not in (None, "") else "it names no failed step",
                    (rec.fields_ref or "",),
                    cause=f"trigger {rec.trigger!r}: failed_step does not name {at}",
                )
            )

    def _field(self, rec: SagaRecord, want: TriggerExpectation, key: str) -> None:
        expected = getattr(want, key)
        if expected is None:
            return
        fields = rec.fields or {}
        if key not in fields:
            self.unrecorded += 1
            return
        value = fields[key]
        if not text_matches(expected, value):
            what = key.replace("_", " ")
            self.out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    want.fails_at,
                    f"{what} {expected!r} (trigger {rec.trigger!r})",
                    f"{key} = {value!r}" if value not in (None, "") else f"it gives no {what}",
                    (rec.fields_ref or "",),
                    cause=f"trigger {rec.trigger!r}: {what} is not {expected!r}",
                )
            )


@register(NAME)
def check(history: History, model: SagaModel) -> Verdict:
    judge = _Judge(history, model)
    for rec in history.sagas.values():
        judge.saga(rec)
    return verdict(
        NAME,
        judge.out,
        observation=observe(history),
        examined=Examined(judge.sagas, judge.facts),
        by_trigger=judge.by_trigger,
        during_faults=judge.under_faults,
        judged_under_faults=judge.relaxed,
        fails_at_checked=judge.shaped,
        fields_unrecorded=judge.unrecorded,
    )
