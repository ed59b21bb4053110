"""Convergence: every saga ends, every service agrees on how, and the side effects
match the completed sagas. Also measures time-to-converge.

**Slow is not stuck.** A saga without an outcome when observation ended is judged by
when it last moved — a new state or status fields (a retry counts), or new evidence an
event brought — against the quiet window (``[model.convergence] quiet_s``) before the
harness stopped watching (the ``converged`` / ``deadline-passed`` phase, else the
history's end):

- **stuck**: it did not move for the whole window — a violation, inferred from absent
  progress, so held back as inconclusive when the run's evidence was not complete — unless
  the window holds ``quiet_s`` of time the machine was not starved and the evidence had
  drained: then the harness saw it stand still, and it stands whatever the rest of the run;
- **still progressing**: it moved within the window — *slow*, not lost: inconclusive
  for that saga (observation ended while it was moving), reported against the
  time-to-converge objective.

Sagas that ended are timed (first request to outcome); one slower than the objective
(``[model.convergence] objective_s``, default the run's deadline) is reported as slow,
a note, not a violation.

**Observation gaps.** A completed saga with no evidence of a step it must have done is
a violation only where the snapshots do not prove it completed: where a service agrees
it completed (an agreement's record) or a side effect of its completion is there (a
projection's record), the missing event is an observation gap — counted and reported,
not a violation.
"""

from __future__ import annotations

from typing import Any

from saga_harness.checkers import register
from saga_harness.checkers._snapshot import records
from saga_harness.checkers.observation import Observation, observe
from saga_harness.checkers.verdict import Examined, Verdict, Violation, verdict
from saga_harness.history import History, SagaRecord
from saga_harness.model import Agreement, Projection, SagaModel, state_key
from saga_harness.pointer import resolve

NAME = "convergence"
# The objective when neither the model nor the history gives one: the CLI's default deadline.
DEFAULT_OBJECTIVE_S = 30.0


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    values = sorted(values)

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 4)

    return {"p50": at(0.50), "p99": at(0.99), "max": round(values[-1], 4)}


def last_moved(rec: SagaRecord) -> float | None:
    """When the saga last moved, by the harness's clock: its latest status observation (a new state
    or new fields — the harness records one only when something changed), or new evidence an event
    brought; else its first request."""
    moments = [m for m in (rec.statuses[-1][0] if rec.statuses else None, rec.last_event) if m is not None]
    if moments:
        return max(moments)
    return rec.first_invoke


class _Judge:
    def __init__(self, history: History, model: SagaModel) -> None:
        self.history = history
        self.model = model
        self.obs: Observation = observe(history)
        self.quiet = model.convergence.quiet_s
        self.objective = model.convergence.objective_s or self.obs.deadline_s or DEFAULT_OBJECTIVE_S
        self.end = self.obs.watch_end if self.obs.watch_end is not None else history.end
        self.out: list[Violation] = []
        self.times: list[float] = []
        self.stuck = self.moving = self.slow = self.gaps = self.facts = 0
        self.agreed: dict[str, tuple[dict[str, list[dict[str, Any]]], str | None]] = {
            rule.name: records(history, rule) for rule in (*model.agreements, *model.projections)
        }

    def corroborated(self, rec: SagaRecord) -> bool:
        """Do the final snapshots prove the saga completed? A service agrees (an agreement's records for
        it all say completed), or a side effect of its completion is there (a projection's record)."""
        for rule in self.model.agreements:
            values = [resolve(r, rule.field, None) for r in self.agreed[rule.name][0].get(rec.saga_id, [])]
            if values and all(v in rule.completed for v in values):
                return True
        return any(self.agreed[rule.name][0].get(rec.saga_id) for rule in self.model.projections)

    def unfinished(self, rec: SagaRecord) -> None:
        last = rec.statuses[-1] if rec.statuses else None
        state = f"{state_key(last[1])}" if last is not None else None
        moved = last_moved(rec)
        idle = (self.end - moved) if self.end is not None and moved is not None else None
        refs = (last[3],) if last else tuple(e.ref for evs in rec.done.values() for e in evs)[:3]
        age = (
            f", {self.end - rec.first_invoke:.1f} s after its first request"
            if self.end is not None and rec.first_invoke is not None
            else ""
        )
        where = f"in {state}" if state is not None else "with no state seen"
        if idle is None or idle >= self.quiet:
            self.stuck += 1
            quiet = f"no state change, event or retry for {idle:.1f} s" if idle is not None else "never seen to move"
            # Seen standing still for a whole quiet window while the machine was not starved (the
            # harness polling on time, the SUT getting the CPU it asked for) and with nothing left
            # arriving: its status, read again and again, proves it stuck — a busy run elsewhere
            # does not excuse it.
            clear = self.obs.clear_s(moved, self.end) if moved is not None and self.end is not None else 0.0
            seen = not self.obs.complete and self.obs.drained and clear >= self.quiet
            if seen and clear < (idle or 0.0):
                quiet += f" ({clear:.1f} s of it on a machine that was not starved)"
            self.out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    None,
                    "a terminal outcome within the deadline",
                    f"stuck {where}: {quiet} before observation ended{age}",
                    refs,
                    basis="present" if seen else "absent",
                    cause=f"stuck {where}: no progress for {self.quiet:g} s or more before observation ended",
                )
            )
            return
        self.moving += 1
        self.out.append(
            Violation(
                NAME,
                rec.saga_id,
                None,
                f"a terminal outcome within the {self.objective:g} s objective",
                f"still progressing {where} when observation ended: it last moved {idle:.1f} s before the end, "
                f"within the {self.quiet:g} s quiet window{age}",
                refs,
                basis="absent",
                cause=f"still progressing {where} when observation ended (slow, not stuck)",
                kind="slow",
                reason="still progressing when observation ended: slow, not stuck — give it a longer deadline",
            )
        )

    def finished(self, rec: SagaRecord) -> None:
        if rec.first_invoke is not None and rec.outcome_at is not None:
            took = max(0.0, rec.outcome_at - rec.first_invoke)
            self.times.append(took)
            if took > self.objective:
                self.slow += 1
                self.out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        None,
                        f"converged within the {self.objective:g} s time-to-converge objective",
                        f"{rec.outcome} after {took:.1f} s",
                        (rec.outcome_ref or "",),
                        cause=f"took longer than the {self.objective:g} s time-to-converge objective",
                        kind="slow",
                    )
                )
        if rec.outcome != "completed":
            return
        proven: bool | None = None
        for step in self.model.steps:
            evs = rec.done.get(step.name)
            if evs:
                self.facts += len(evs)
                continue
            # Missing evidence proves a step missing only where it could have shown (an
            # answer that never came, a saga never read, a state a poll missed prove nothing).
            if not rec.observed(step.done):
                continue
            if proven is None:
                proven = self.corroborated(rec)
            what = step.done.describe()
            self.out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    step.name,
                    f"a completed saga shows {step.name} happened",
                    f"no {what} for it" + ("; the final snapshots show the saga completed" if proven else ""),
                    (rec.outcome_ref or "",),
                    basis="absent",
                    cause=(
                        f"no {what} captured for completed sagas the final snapshots show completed"
                        if proven
                        else f"completed without evidence of {step.name}: no {what}"
                    ),
                    kind="gap" if proven else "violation",
                )
            )
            self.gaps += bool(proven)

    def agreements(self, rule: Agreement) -> None:
        by_saga, ref = self.agreed[rule.name]
        for rec in self.history.sagas.values():
            allowed = (
                rule.completed
                if rec.outcome == "completed"
                else (rule.compensated if rec.outcome == "compensated" else None)
            )
            if not allowed:
                continue
            values = [resolve(r, rule.field, None) for r in by_saga.get(rec.saga_id, [])]
            self.facts += len(values)
            wrong = [v for v in values if v not in allowed]
            if wrong or (not values and rule.required):
                self.out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        rule.name,
                        f"{rule.service} agrees the saga {rec.outcome}: {rule.field} in {allowed}",
                        f"{rule.service} says {values or 'nothing'}",
                        (ref or "", rec.outcome_ref or ""),
                        # A wrong value is there to see; a missing record may not have landed yet.
                        basis="present" if wrong else "absent",
                        cause=(
                            f"{rule.service} says {rule.field} = {wrong[0]!r} for {rec.outcome} sagas"
                            if wrong
                            else f"{rule.service} has no record of {rec.outcome} sagas"
                        ),
                    )
                )

    def projections(self, rule: Projection) -> None:
        by_saga, ref = self.agreed[rule.name]
        for rec in self.history.sagas.values():
            n = len(by_saga.get(rec.saga_id, []))
            self.facts += n
            if rec.outcome == "completed" and n < rule.per_completed:
                want = f"{rule.per_completed} {rule.name} for a completed saga"
                self.out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        rule.name,
                        want,
                        f"{n} in {rule.service}",
                        (ref or "", rec.outcome_ref or ""),
                        basis="absent",
                        cause=f"completed sagas lack their {rule.name} in {rule.service}",
                    )
                )
            elif rec.outcome in ("compensated", "failed") and n:
                self.out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        rule.name,
                        f"no {rule.name} for a saga that did not complete",
                        f"{n} in {rule.service}",
                        (ref or "",),
                        cause=f"{rule.name} in {rule.service} for sagas that did not complete",
                    )
                )
        known_before: set[str] = set()
        if rule.service in self.history.baselines:
            for item in resolve(self.history.baselines[rule.service], rule.items, []) or []:
                sid = resolve(item, rule.saga_id, None) if isinstance(item, dict) else None
                if sid is not None:
                    known_before.add(str(sid))
        stray = sorted(set(by_saga) - set(self.history.sagas) - known_before)
        # Every stray record is an instance: its finding counts them all (the CLI and report list the first).
        for sid in stray:
            self.out.append(
                Violation(
                    NAME,
                    sid,
                    rule.name,
                    f"{rule.name} only for sagas that were started",
                    f"{rule.service} has one for an unknown saga",
                    (ref or "",),
                    cause=f"{rule.name} in {rule.service} for sagas this run never started",
                )
            )


@register(NAME)
def check(history: History, model: SagaModel) -> Verdict:
    judge = _Judge(history, model)
    for rec in history.sagas.values():
        judge.facts += len(rec.statuses)
        if rec.outcome is None:
            judge.unfinished(rec)
        else:
            judge.finished(rec)
    for rule in model.agreements:
        judge.agreements(rule)
    for rule in model.projections:
        judge.projections(rule)
    return verdict(
        NAME,
        judge.out,
        observation=judge.obs,
        examined=Examined(len(history.sagas), judge.facts),
        convergence_s=percentiles(judge.times),
        converged=len(judge.times),
        unfinished=judge.stuck + judge.moving,
        stuck=judge.stuck,
        still_progressing=judge.moving,
        slow=judge.slow,
        objective_s=judge.objective,
        quiet_s=judge.quiet,
        observation_gaps=judge.gaps,
    )
