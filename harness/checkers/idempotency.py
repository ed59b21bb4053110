"""Idempotency: one key, one saga, one answer; no effect applied twice.

A step's effect counts once per distinct piece of evidence: a CloudEvent by its
(source, id), an answer by its request when the evidence says ``repeats = "effect"``
(by default resent requests' answers are one effect: a system replays its answer),
a read or a state once — per part, for a step done once per order line (``per``).

Every violation here is proved by evidence that is there (two sagas answered for one key,
two distinct effects, a record applied twice): none is held back on a starved run."""

from __future__ import annotations

from saga_harness.checkers import register
from saga_harness.checkers._parts import by_part, label
from saga_harness.checkers._snapshot import records
from saga_harness.checkers.verdict import Examined, Verdict, Violation, verdict
from saga_harness.history import Evidence, History
from saga_harness.model import SagaModel
from saga_harness.pointer import resolve

NAME = "idempotency"


def _observations(evs: list[Evidence]) -> str:
    kinds = {e.source for e in evs}
    return "events" if kinds == {"event"} else "answers" if kinds == {"answer"} else "observations"


@register(NAME)
def check(history: History, model: SagaModel) -> Verdict:
    out: list[Violation] = []
    resent = facts = 0
    for key, kr in history.keys.items():
        facts += len(kr.answers)
        ok = [(sid, ref) for sid, status, ref in kr.answers if sid and status is not None and status < 300]
        # Resent: a step requested again with the key (one saga's several start steps are not resends).
        resent += any(n > 1 for n in kr.steps.values()) if kr.steps else len(kr.answers) > 1
        ids = sorted({sid for sid, _ in ok})
        if len(ids) > 1:
            out.append(
                Violation(
                    NAME,
                    ids[0],
                    None,
                    f"one saga for idempotency key {key!r}",
                    f"{len(ids)} sagas were started: {', '.join(ids)}",
                    tuple(r for _, r in ok),
                    cause="one idempotency key started more than one saga",
                )
            )
    for rec in history.sagas.values():
        for step, evs in rec.done.items():
            facts += len(evs)
            if len(evs) < 2:
                continue
            for part, same in by_part(evs).items():
                if len(same) > 1:
                    kind = _observations(same)
                    out.append(
                        Violation(
                            NAME,
                            rec.saga_id,
                            step,
                            f"{step}{label(part)} takes effect once",
                            f"{len(same)} distinct {kind} prove it took effect: " + ", ".join(e.event_id for e in same),
                            tuple(e.ref for e in same),
                            cause=f"{step} took effect more than once (distinct {kind})",
                        )
                    )
    for rule in model.projections:
        by_saga, ref = records(history, rule)
        for sid, items in by_saga.items():
            facts += len(items)
            if rule.unique:
                values = [resolve(i, rule.unique, None) for i in items]
                dupes = sorted({str(v) for v in values if v is not None and values.count(v) > 1})
                if dupes:
                    out.append(
                        Violation(
                            NAME,
                            sid,
                            rule.name,
                            f"{rule.name} applied once per event ({rule.unique})",
                            f"{rule.service} applied the same event more than once: {', '.join(dupes)}",
                            (ref,) if ref else (),
                            cause=f"{rule.service} applied one event more than once ({rule.name})",
                        )
                    )
                    continue
            if history.sagas.get(sid) and history.sagas[sid].outcome == "completed" and len(items) > rule.per_completed:
                out.append(
                    Violation(
                        NAME,
                        sid,
                        rule.name,
                        f"{rule.per_completed} {rule.name} per completed saga",
                        f"{len(items)} in {rule.service}",
                        (ref,) if ref else (),
                        cause=f"more than {rule.per_completed} {rule.name} per completed saga in {rule.service}",
                    )
                )
    return verdict(
        NAME,
        out,
        examined=Examined(len(history.sagas), facts),
        keys=len(history.keys),
        resent_keys=resent,
    )
