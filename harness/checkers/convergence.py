"""Convergence: every saga ends, every service agrees on how, and the side effects
match the completed sagas. Also measures time-to-converge."""

from __future__ import annotations

from saga_harness.checkers import register
from saga_harness.checkers._snapshot import records
from saga_harness.checkers.verdict import Verdict, Violation, verdict
from saga_harness.history import History
from saga_harness.model import SagaModel
from saga_harness.pointer import resolve

NAME = "convergence"


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    values = sorted(values)

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 4)

    return {"p50": at(0.50), "p99": at(0.99), "max": round(values[-1], 4)}


@register(NAME)
def check(history: History, model: SagaModel) -> Verdict:
    out: list[Violation] = []
    times: list[float] = []
    for rec in history.sagas.values():
        if rec.outcome is None:
            last = rec.statuses[-1] if rec.statuses else None
            actual = f"still {last[1]} at the end of the run" if last else "never seen in a terminal state"
            out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    None,
                    "a terminal outcome within the deadline",
                    actual,
                    (last[3],) if last else tuple(e.ref for evs in rec.done.values() for e in evs)[:3],
                )
            )
            continue
        if rec.first_invoke is not None and rec.outcome_at is not None:
            times.append(max(0.0, rec.outcome_at - rec.first_invoke))
        if rec.outcome == "completed":
            for step in model.steps:
                # Missing evidence proves a step missing only where it could have shown (an
                # answer that never came, a saga never read, a state a poll missed prove nothing).
                if not rec.done.get(step.name) and rec.observed(step.done):
                    out.append(
                        Violation(
                            NAME,
                            rec.saga_id,
                            step.name,
                            f"a completed saga shows {step.name} happened",
                            f"no {step.done.describe()} for it",
                            (rec.outcome_ref or "",),
                        )
                    )
    for rule in model.agreements:
        by_saga, ref = records(history, rule)
        for rec in history.sagas.values():
            allowed = (
                rule.completed
                if rec.outcome == "completed"
                else (rule.compensated if rec.outcome == "compensated" else None)
            )
            if not allowed:
                continue
            values = [resolve(r, rule.field, None) for r in by_saga.get(rec.saga_id, [])]
            if (not values and rule.required) or any(v not in allowed for v in values):
                out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        rule.name,
                        f"{rule.service} agrees the saga {rec.outcome}: {rule.field} in {allowed}",
                        f"{rule.service} says {values or 'nothing'}",
                        (ref or "", rec.outcome_ref or ""),
                    )
                )
    for rule in model.projections:
        by_saga, ref = records(history, rule)
        for rec in history.sagas.values():
            n = len(by_saga.get(rec.saga_id, []))
            if rec.outcome == "completed" and n < rule.per_completed:
                want = f"{rule.per_completed} {rule.name} for a completed saga"
                out.append(
                    Violation(
                        NAME, rec.saga_id, rule.name, want, f"{n} in {rule.service}", (ref or "", rec.outcome_ref or "")
                    )
                )
            elif rec.outcome in ("compensated", "failed") and n:
                out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        rule.name,
                        f"no {rule.name} for a saga that did not complete",
                        f"{n} in {rule.service}",
                        (ref or "",),
                    )
                )
        known_before: set[str] = set()
        if rule.service in history.baselines:
            for item in resolve(history.baselines[rule.service], rule.items, []) or []:
                sid = resolve(item, rule.saga_id, None) if isinstance(item, dict) else None
                if sid is not None:
                    known_before.add(str(sid))
        stray = sorted(set(by_saga) - set(history.sagas) - known_before)
        for sid in stray[:20]:
            out.append(
                Violation(
                    NAME,
                    sid,
                    rule.name,
                    f"{rule.name} only for sagas that were started",
                    f"{rule.service} has one for an unknown saga",
                    (ref or "",),
                )
            )
    return verdict(
        NAME,
        out,
        convergence_s=percentiles(times),
        converged=len(times),
        unfinished=sum(1 for r in history.sagas.values() if r.outcome is None),
    )
