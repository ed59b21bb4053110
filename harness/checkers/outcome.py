"""Outcome oracle: a saga started with a trigger ends as the trigger demands."""

from __future__ import annotations

from saga_harness.checkers import register
from saga_harness.checkers.verdict import Verdict, Violation, verdict
from saga_harness.history import History
from saga_harness.model import SagaModel

NAME = "outcome"


@register(NAME)
def check(history: History, model: SagaModel) -> Verdict:
    out: list[Violation] = []
    by_trigger: dict[str, dict[str, int]] = {}
    for rec in history.sagas.values():
        if rec.trigger is None or rec.outcome is None:
            continue
        counts = by_trigger.setdefault(rec.trigger, {})
        counts[rec.outcome] = counts.get(rec.outcome, 0) + 1
        want = model.triggers.get(rec.trigger)
        if want not in (None, "any") and rec.outcome != want:
            out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    None,
                    f"{want} (trigger {rec.trigger!r})",
                    f"{rec.outcome}",
                    (rec.outcome_ref or "",),
                )
            )
    return verdict(NAME, out, by_trigger=by_trigger)
