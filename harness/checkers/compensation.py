"""Compensation: a saga that did not complete undid each completed step exactly
once, in reverse order, and its quantities net to zero."""

from __future__ import annotations

from saga_harness.checkers import register
from saga_harness.checkers.verdict import Verdict, Violation, verdict
from saga_harness.history import History, SagaRecord
from saga_harness.model import SagaModel

NAME = "compensation"


def net(rec: SagaRecord, quantity: str) -> dict[str | None, float]:
    """plus − minus of ``quantity`` for one saga, per key (None when unkeyed)."""
    totals: dict[str | None, float] = {}
    terms = rec.terms.get(quantity, {})
    for role, sign in (("plus", 1.0), ("minus", -1.0)):
        for key, value, _ev in terms.get(role, ()):
            totals[key] = totals.get(key, 0.0) + sign * value
    return totals


def _refs(rec: SagaRecord, quantity: str) -> tuple[str, ...]:
    terms = rec.terms.get(quantity, {})
    return tuple(ev.ref for role in ("plus", "minus") for _k, _v, ev in terms.get(role, ()))


@register(NAME)
def check(history: History, model: SagaModel) -> Verdict:
    out: list[Violation] = []
    checked = 0
    undoable = [s for s in model.steps if s.undone is not None]
    for rec in history.sagas.values():
        if rec.outcome == "completed":
            for step in undoable:
                evs = rec.undone.get(step.name, [])
                if evs:
                    out.append(
                        Violation(
                            NAME,
                            rec.saga_id,
                            step.name,
                            "a completed saga undoes nothing",
                            f"{step.compensation or step.name + ' undone'} happened",
                            tuple(e.ref for e in evs),
                        )
                    )
            continue
        if rec.outcome != "compensated":
            continue  # unfinished or failed sagas are convergence's to report
        checked += 1
        pairs = []
        for step in undoable:
            done, undone = rec.done.get(step.name, []), rec.undone.get(step.name, [])
            comp = step.compensation or f"undo of {step.name}"
            if done and not undone:
                out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        step.name,
                        f"{comp} after {step.name} completed",
                        f"{step.name} completed and was never undone",
                        tuple(e.ref for e in done),
                    )
                )
            elif undone and not done:
                out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        step.name,
                        f"no {comp} without {step.name}",
                        f"{comp} undid a step that never happened",
                        tuple(e.ref for e in undone),
                    )
                )
            elif len(undone) > 1:
                out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        step.name,
                        f"{comp} exactly once",
                        f"{comp} happened {len(undone)} times",
                        tuple(e.ref for e in undone),
                    )
                )
            if done and undone:
                pairs.append(
                    (step.name, min(e.produced_at() for e in done), min(e.produced_at() for e in undone), undone[0].ref)
                )
        want = [name for name, _d, _u, _r in sorted(pairs, key=lambda p: -p[1])]
        got = [name for name, _d, _u, _r in sorted(pairs, key=lambda p: p[2])]
        if want != got:
            out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    got[0],
                    f"undone in reverse order: {', '.join(want)}",
                    f"undone in the order {', '.join(got)}",
                    tuple(r for *_x, r in pairs),
                )
            )
        for q in model.quantities:
            bad = {k: v for k, v in net(rec, q.name).items() if abs(v) > 1e-9}
            if bad:
                shown = ", ".join(f"{k or q.name}={v:g}" for k, v in bad.items())
                out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        None,
                        f"{q.name} nets to zero after compensation",
                        f"left over: {shown}",
                        _refs(rec, q.name),
                    )
                )
    return verdict(NAME, out, compensated_sagas=checked)
