"""Compensation, and the saga's shape: each saga did its steps in the declared order;
a saga that did not complete undid each done step exactly once, in reverse order,
and its quantities net to zero; nothing is undone without its step.

Sagas that end ``failed`` are judged too. The rule: a failed saga must have undone
what it did, like a compensated one, or say it could not — name the step (or its
compensation) in its status's ``compensations_pending``. A system that reports
"failed" both after compensating and when a compensation itself failed is then
checked either way; a saga that declares a compensation pending is not asked to
net its quantities to zero. A compensated saga must have none pending.

Where the system shows what it did (``compensations_done``, ``attempts``), a retried
compensation must have taken effect once: listed once, proved once.

Order is judged by :mod:`saga_harness.checkers._order` (the harness's own timeline; events
by arrival where their producer's times cannot tell, unless deliveries reorder — never by a
producer's timestamps alone); a saga whose order the evidence cannot settle
is counted (``order_unknown``), not flagged. So is a step whose undoing its evidence
could not have shown, or a quantity whose terms could not (an answer that never came,
a saga never read): ``undo_unobservable``.

Proved by evidence present (never held back): steps done or undone in the wrong order,
an undo in a completed saga, an undo without its step, an undo that took effect twice,
a compensated saga listing a compensation pending. Inferred from evidence absent (held
back as inconclusive when the run's evidence was not complete): a step done and never
undone, a quantity that does not net to zero.
"""

from __future__ import annotations

from typing import Any

from saga_harness.checkers import _fields, register
from saga_harness.checkers._order import Orderer, earliest
from saga_harness.checkers._parts import by_part, label
from saga_harness.checkers.observation import observe
from saga_harness.checkers.verdict import Basis, Examined, Verdict, Violation, verdict
from saga_harness.history import Evidence, History, SagaRecord
from saga_harness.model import Quantity, SagaModel, Step, Term

NAME = "compensation"


def net(rec: SagaRecord, quantity: str) -> dict[str | None, float]:
    """plus − minus of ``quantity`` for one saga, per key (None when unkeyed)."""
    totals: dict[str | None, float] = {}
    terms = rec.terms.get(quantity, {})
    for role, sign in (("plus", 1.0), ("minus", -1.0)):
        for key, value, _ev in terms.get(role, ()):
            totals[key] = totals.get(key, 0.0) + sign * value
    return totals


def unseen_terms(quantity: Quantity) -> list[Term]:
    """The terms of ``quantity`` that may fail to show for a saga (answers, reads: not events)."""
    terms = [*quantity.plus, *quantity.minus, *((quantity.completed_equals,) if quantity.completed_equals else ())]
    return [t for t in terms if t.event is None]


def observed(rec: SagaRecord, terms: list[Term]) -> bool:
    """Could every one of ``terms`` (:func:`unseen_terms`) have shown for this saga? A lost answer
    or a saga never read leaves a net unknown: judged, it would look like money appearing."""
    return all(rec.observed(t) for t in terms)


def _refs(rec: SagaRecord, quantity: str) -> tuple[str, ...]:
    terms = rec.terms.get(quantity, {})
    return tuple(ev.ref for role in ("plus", "minus") for _k, _v, ev in terms.get(role, ()))


class _Judge:
    """One pass over the sagas, keeping the counts the verdict reports."""

    def __init__(self, history: History, model: SagaModel) -> None:
        self.model = model
        obs = observe(history)
        self.obs = obs
        # Once the run recorded that its evidence settled and drained (nothing arriving, nothing pending,
        # the last snapshots agreeing), an undo that never showed never happened: a starved machine made
        # the run slower, not its final state different. Before that, held back as absent.
        self.absent: Basis = "present" if obs.settled is not None and obs.drained else "absent"
        self.order = Orderer(history, model)
        self.before = model.precedence()  # step -> the steps it waits for
        self.index = model.step_index()
        self.undoable = [s for s in model.steps if s.undone is not None]
        self.unseen = {q.name: unseen_terms(q) for q in model.quantities}
        self.out: list[Violation] = []
        self.compensated = self.failed = self.forward = self.pending = self.unobservable = 0
        self.sagas = self.facts = 0
        self.unknown: list[str] = []

    def saga(self, rec: SagaRecord) -> None:
        if rec.outcome is not None or rec.done:
            self.sagas += 1
            self.facts += len(rec.done) + len(rec.undone)  # a fact: a step seen done, or undone
        unknown = self._forward(rec)
        if rec.outcome == "completed":
            self._completed(rec)
        elif rec.outcome in ("compensated", "failed"):
            unknown = self._undone(rec) or unknown
        if unknown:
            self.unknown.append(rec.saga_id)

    def _forward(self, rec: SagaRecord) -> bool:
        """Steps done in the declared order; True when the evidence cannot tell."""
        if len(rec.done) < 2:
            return False
        done = [(s.name, earliest(rec.done[s.name])) for s in self.model.steps if rec.done.get(s.name)]
        if len(done) < 2:
            return False
        self.forward += 1
        seen = self.order.in_order(done, lambda a, b: a in self.before[b])
        if seen.violated:
            first, early = seen.reversed_pairs[0]
            expected = (
                f"steps done in order: {', '.join(n for n, _ in done)}"
                if self.model.sequential
                else f"{early} done after {first} (it waits for {', '.join(sorted(self.before[early]))})"
            )
            self.out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    early,
                    expected,
                    f"done in the order {', '.join(seen.observed)} ({early} before {first})",
                    seen.evidence,
                    cause=f"{early} done before {first}, which it waits for",
                )
            )
        return seen.status == "unknown"

    def _completed(self, rec: SagaRecord) -> None:
        for step in self.undoable:
            evs = rec.undone.get(step.name, [])
            if evs:
                self.out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        step.name,
                        "a completed saga undoes nothing",
                        f"{step.compensation or step.name + ' undone'} happened",
                        tuple(e.ref for e in evs),
                        cause=f"completed sagas undid {step.name}",
                    )
                )

    def _undone(self, rec: SagaRecord) -> bool:
        failed = rec.outcome == "failed"
        if failed:
            self.failed += 1
        else:
            self.compensated += 1
        fields = rec.fields or {}
        pending = fields.get("compensations_pending")
        if not failed and _fields.names(pending):
            self.out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    None,
                    "a compensated saga has no compensation pending",
                    f"its status lists pending: {', '.join(_fields.names(pending))}",
                    (rec.fields_ref or rec.outcome_ref or "",),
                    cause="compensated sagas still list a compensation pending",
                )
            )
        declared = failed and bool(_fields.names(pending))
        pairs: list[tuple[str, Evidence]] = []
        for step in self.undoable:
            self._step(rec, step, failed, pending)
            done, undone = rec.done.get(step.name, []), rec.undone.get(step.name, [])
            if done and undone:
                pairs.append((step.name, earliest(undone)))
        unknown = self._reverse(rec, pairs)
        if not declared:
            self._nets(rec)
        return unknown

    def _step(self, rec: SagaRecord, step: Step, failed: bool, pending: Any) -> None:
        done, undone = rec.done.get(step.name, []), rec.undone.get(step.name, [])
        fields = rec.fields or {}
        tries = _fields.attempts_of(fields.get("attempts"), step)
        tried = f" (the system shows {tries} attempts)" if tries is not None else ""
        if step.undone is None:
            return
        if step.done.per is not None and step.undone.per is not None:
            # A step done once per part (an order line): each part done is undone, once.
            done_parts, undone_parts = by_part(done), by_part(undone)
            for part in sorted({*done_parts, *undone_parts}, key=str):
                did, undid = done_parts.get(part, []), undone_parts.get(part, [])
                self._undo(rec, step, failed, pending, part, did, undid, tried)
        else:
            self._undo(rec, step, failed, pending, None, done, undone, tried)
        listed = _fields.lists(fields.get("compensations_done"), step)
        if listed > 1:
            comp = step.compensation or f"undo of {step.name}"
            self.out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    step.name,
                    f"{comp} takes effect once" + (", however often it was retried" if tried else ""),
                    f"compensations_done lists it {listed} times{tried}",
                    (rec.fields_ref or "",),
                    cause=f"{comp} listed more than once in compensations_done",
                )
            )

    def _undo(
        self,
        rec: SagaRecord,
        step: Step,
        failed: bool,
        pending: Any,
        part: str | None,
        done: list[Evidence],
        undone: list[Evidence],
        tried: str,
    ) -> None:
        """One step (or one part of it): undone once if done, and not undone if not done."""
        comp = (step.compensation or f"undo of {step.name}") + label(part)
        what = step.name + label(part)
        if done and not undone:
            if failed and _fields.lists(pending, step):
                self.pending += 1  # the system says it could not undo it
            elif not rec.observed(step.undone):  # type: ignore[arg-type] - an undoable step
                self.unobservable += 1  # its evidence could not have shown it (no answer, never read)
            else:
                expected = (
                    f"{comp} after {what} was done, or the failed saga's status naming it in compensations_pending"
                    if failed
                    else f"{comp} after {what} completed"
                )
                actual = (
                    f"the saga failed with {what} done, never undone, and says nothing of it"
                    if failed
                    else f"{what} completed and was never undone"
                )
                self.out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        step.name,
                        expected,
                        actual,
                        tuple(e.ref for e in done),
                        basis=self.absent,
                        cause=(
                            f"{step.name} done and never undone, and the failed sagas say nothing of it"
                            if failed
                            else f"{step.name} done and never undone in compensated sagas"
                        ),
                    )
                )
        elif undone and not done:
            if rec.observed(step.done):
                self.out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        step.name,
                        f"no {comp} without {what}",
                        f"{comp} undid a step that never happened",
                        tuple(e.ref for e in undone),
                        cause=f"{step.compensation or 'undo of ' + step.name} without {step.name}",
                    )
                )
        for upart, same in by_part(undone).items():
            if len(same) > 1:
                comp_once = (step.compensation or f"undo of {step.name}") + label(upart)
                self.out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        step.name,
                        f"{comp_once} exactly once" + (", however often it was retried" if tried else ""),
                        f"{comp_once} happened {len(same)} times{tried}",
                        tuple(e.ref for e in same),
                        cause=f"{step.compensation or 'undo of ' + step.name} took effect more than once",
                    )
                )

    def _reverse(self, rec: SagaRecord, pairs: list[tuple[str, Evidence]]) -> bool:
        """Done steps undone in the reverse of the forward order; True when the evidence cannot tell."""
        if len(pairs) < 2:
            return False
        expected = sorted(pairs, key=lambda p: -self.index[p[0]])
        # A step is undone before the steps it waited for (a fan-out's branches: in any order).
        seen = self.order.in_order(expected, lambda a, b: b in self.before[a])
        if seen.violated:
            self.out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    seen.observed[0],
                    f"undone in reverse order: {', '.join(n for n, _ in expected)}",
                    f"undone in the order {', '.join(seen.observed)}",
                    seen.evidence,
                    cause=f"undone in the order {', '.join(seen.observed)}, not the reverse of the forward order",
                )
            )
        return seen.status == "unknown"

    def _nets(self, rec: SagaRecord) -> None:
        for q in self.model.quantities:
            if not observed(rec, self.unseen[q.name]):
                self.unobservable += 1
                continue
            bad = {k: v for k, v in net(rec, q.name).items() if abs(v) > 1e-9}
            if bad:
                shown = ", ".join(f"{k or q.name}={v:g}" for k, v in bad.items())
                self.out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        None,
                        f"{q.name} nets to zero after compensation",
                        f"left over: {shown}",
                        _refs(rec, q.name),
                        basis=self.absent,
                        cause=f"{q.name} does not net to zero after compensation",
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
        observation=judge.obs,
        examined=Examined(judge.sagas, judge.facts),
        compensated_sagas=judge.compensated,
        failed_sagas=judge.failed,
        forward_order_checked=judge.forward,
        order_unknown=len(judge.unknown),
        order_unknown_sagas=judge.unknown[:10],
        declared_pending=judge.pending,
        undo_unobservable=judge.unobservable,
    )
