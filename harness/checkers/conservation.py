"""Conservation: money and stock are neither made nor lost.

A quantity whose terms come from answers or reads is judged for a saga only where
they could have shown (every answer came, the saga was read); a balance only when
they could for every saga (else counted in ``unobservable``, not flagged).

Proved by evidence present: a number below zero in a snapshot; a completed saga whose
terms add up to *more* than it must (more money seen moving than the order's total).
Inferred from evidence absent (held back when the run's evidence was not complete): a
completed saga's terms adding up to less (a term not seen yet), and a balance that differs
from the net of the terms (the snapshot and the events may be apart by what is in flight) —
unless the run recorded that its evidence settled: then nothing more was coming, and both
are proved (a busy machine slows a system down, it does not change its final state)."""

from __future__ import annotations

from typing import Any

from saga_harness.checkers import register
from saga_harness.checkers.compensation import net, observed, unseen_terms
from saga_harness.checkers.observation import observe
from saga_harness.checkers.verdict import Basis, Examined, Verdict, Violation, verdict
from saga_harness.history import History
from saga_harness.model import Balance, SagaModel
from saga_harness.pointer import resolve

NAME = "conservation"


def _expr(b: Balance) -> str:
    if b.plus and b.minus:
        return f"{b.plus} - {b.minus}"
    return b.plus or f"-{b.minus}"


@register(NAME)
def check(history: History, model: SagaModel) -> Verdict:
    out: list[Violation] = []
    obs = observe(history)
    # Once the run recorded that its evidence settled (nothing arriving, nothing pending, the last
    # snapshots agreeing), a term missing from a saga or a balance is missing for good: a starved
    # machine made the run slower, not its final state different. Before that, held back as absent.
    short: Basis = "present" if obs.settled is not None and obs.drained else "absent"
    totals: dict[str, dict[str | None, float]] = {q.name: {} for q in model.quantities}
    unseen = {q.name: unseen_terms(q) for q in model.quantities}
    unknown: dict[str, int] = {}  # quantity -> sagas whose terms could not all show
    sagas = facts = unknown_items = 0
    for rec in history.sagas.values():
        if rec.terms:
            sagas += 1
            facts += len(rec.terms)  # a fact: one saga's net of one quantity
        for q in model.quantities:
            n = net(rec, q.name)
            for k, v in n.items():
                totals[q.name][k] = totals[q.name].get(k, 0.0) + v
            if unseen[q.name] and not observed(rec, unseen[q.name]):
                unknown[q.name] = unknown.get(q.name, 0) + 1
                continue
            if rec.outcome == "completed" and q.completed_equals is not None:
                want = sum(v for _k, v, _e in rec.terms.get(q.name, {}).get("equals", ()))
                got = sum(n.values())
                if abs(want - got) > 1e-9:
                    refs = tuple(
                        e.ref
                        for role in ("plus", "minus", "equals")
                        for _k, _v, e in rec.terms.get(q.name, {}).get(role, ())
                    )
                    out.append(
                        Violation(
                            NAME,
                            rec.saga_id,
                            None,
                            f"{q.name} of a completed saga = {want:g}",
                            f"{q.name} = {got:g}",
                            refs,
                            basis="present" if got > want else short,
                            cause=(
                                f"more {q.name} than a completed saga's total"
                                if got > want
                                else f"less {q.name} than a completed saga's total"
                            ),
                        )
                    )
    for rule in model.non_negative:
        snap = history.snapshots.get(rule.service)
        if snap is None:
            continue
        data, ref = snap
        for item in resolve(data, rule.items, []) or []:
            facts += 1
            value = resolve(item, rule.field, None)
            if isinstance(value, (int, float)) and value < 0:
                out.append(
                    Violation(
                        NAME,
                        None,
                        rule.name,
                        f"{rule.field} >= 0 for {resolve(item, rule.key, '?')}",
                        f"{value}",
                        (ref,),
                        cause=f"{rule.name} below zero in {rule.service}",
                    )
                )
    for b in model.balances:
        snap = history.snapshots.get(b.service)
        if snap is None or unknown.get(b.quantity):
            continue
        data, ref = snap
        base = history.baselines.get(b.service)
        if b.value is not None:
            got = resolve(data, b.value, None)
            if base is not None and isinstance(got, (int, float)):
                got -= resolve(base, b.value, 0) or 0  # what this run changed
            want = sum(totals[b.quantity].values())
            facts += 1
            if isinstance(got, (int, float)) and abs(got - want) > 1e-9:
                out.append(
                    Violation(
                        NAME,
                        None,
                        b.name,
                        f"{b.service} {b.value} = {want:g} (net {b.quantity})",
                        f"{got}",
                        (ref,),
                        basis=short,
                        cause=f"{b.service} {b.value} differs from the net {b.quantity}",
                    )
                )
            continue
        per_key = totals[b.quantity]

        def level(item: Any, b: Balance = b) -> Any:
            return (resolve(item, b.plus, 0) if b.plus else 0) - (resolve(item, b.minus, 0) if b.minus else 0)

        base_items = (resolve(base, b.items, []) or []) if base is not None else []
        before = {str(resolve(i, b.key, "")): level(i) for i in base_items}  # type: ignore[union-attr]
        # A read the service did not answer (an outage, a 5xx) says nothing of the item's level: an item
        # read so, before or after, is not judged (it is not zero).
        unread = {_member(i) for i in base_items if _unanswered(i)}  # type: ignore[union-attr]
        for item in resolve(data, b.items, []) or []:  # type: ignore[arg-type]
            key = str(resolve(item, b.key, ""))  # type: ignore[arg-type]
            if _unanswered(item) or _member(item) in unread:
                unknown_items += 1
                continue
            facts += 1
            got = level(item) - before.get(key, 0)
            want = per_key.get(key, 0.0)
            if abs(got - want) > 1e-9:
                out.append(
                    Violation(
                        NAME,
                        None,
                        b.name,
                        f"{b.service} {key}: {_expr(b)} = {want:g} (net {b.quantity})",
                        f"{got:g}",
                        (ref,),
                        basis=short,
                        cause=f"{b.name}: {b.service} differs from the net {b.quantity}",
                    )
                )
    return verdict(
        NAME,
        out,
        observation=obs,
        examined=Examined(sagas, facts),
        quantities={q: round(sum(v.values()), 4) for q, v in totals.items()},
        unobservable=unknown,
        **({"unread_items": unknown_items} if unknown_items else {}),
    )


def _member(item: Any) -> tuple[Any, Any]:
    """Which pool member a per-value read was of (its body may not say: a failed read has none)."""
    return (item.get("pool"), item.get("member")) if isinstance(item, dict) else (None, None)


def _unanswered(item: Any) -> bool:
    """A per-value read the service did not answer: no status (the connection failed) or a 5xx."""
    if not isinstance(item, dict) or "status" not in item:
        return False  # a record of the service's own snapshot, not a read of ours
    status = item.get("status")
    return status is None or (isinstance(status, int) and status >= 500)
