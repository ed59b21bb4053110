"""Sometimes-assertions (in the Antithesis sense): what a run must see at least once, or it proved
nothing. A chaos run that never compensated the step it meant to exercise, or whose lost answer never
hit the call it was aimed at, is green for no reason: it is *vacuous*, and fails as such.

What a run asks for is in its ``meta`` (``extra["sometimes"]``, written by the scenario's driver),
each a mapping with exactly one of:

- ``compensated: STEP`` — some saga undid STEP (evidence of its undo in the history);
- ``outcome: OUTCOME`` — some saga ended so;
- ``action: ACTION`` — the HTTP fault proxy gave some call that fault (``lose_answer``, ``status``,
  …; narrowed by ``link``, ``method`` and a glob on ``path``).

``label`` names it in messages. A run that asked for nothing is not judged by it (no row), unless the
check is named; then it is ``ok`` and examined nothing. An unmet
assertion is inferred from absent evidence: held back as inconclusive when the run's evidence did not
settle (:mod:`saga_harness.checkers.observation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from saga_harness.checkers import register
from saga_harness.checkers.observation import observe
from saga_harness.checkers.verdict import Examined, Verdict, Violation, verdict
from saga_harness.history import History, HttpCall
from saga_harness.model import SagaModel

NAME = "sometimes"


def describe(spec: Mapping[str, Any]) -> str:
    """The assertion in words (its ``label`` when it has one)."""
    if spec.get("label"):
        return str(spec["label"])
    if spec.get("compensated"):
        return f"compensation of {spec['compensated']}"
    if spec.get("outcome"):
        return f"a saga {spec['outcome']}"
    where = " ".join(x for x in (spec.get("method", "*"), spec.get("path", "*")) if x != "*") or "any call"
    link = f" on {spec['link']}" if spec.get("link") else ""
    return f"a {str(spec.get('action')).replace('_', ' ')} on {where}{link}"


def _call_matches(call: HttpCall, spec: Mapping[str, Any]) -> bool:
    return (
        call.action == spec.get("action")
        and (not spec.get("link") or call.link == spec["link"])
        and (spec.get("method", "*") == "*" or call.method.upper() == str(spec["method"]).upper())
        and fnmatchcase(call.path, str(spec.get("path", "*")))
    )


def witnesses(history: History, spec: Mapping[str, Any]) -> list[str]:
    """The history lines (or saga ids, for outcomes) showing ``spec`` happened; empty: it never did."""
    if spec.get("compensated"):
        step = str(spec["compensated"])
        return [e.ref for rec in history.sagas.values() for e in rec.undone.get(step, ())][:5]
    if spec.get("outcome"):
        return [sid for sid, rec in history.sagas.items() if rec.outcome == spec["outcome"]][:5]
    return [ref for ref, call in history.calls if _call_matches(call, spec)][:5]


def asked(history: History) -> bool:
    """Did the run state any sometimes-assertion?"""
    return bool(history.meta and history.meta.extra.get("sometimes"))


@register(NAME, applies=asked)
def check(history: History, model: SagaModel) -> Verdict:
    """Each sometimes-assertion of the run: met, or a violation saying the run was vacuous."""
    specs = list((history.meta.extra.get("sometimes") if history.meta else None) or [])
    violations = []
    met = 0
    for spec in specs:
        seen = witnesses(history, spec)
        if seen:
            met += 1
            continue
        what = describe(spec)
        violations.append(
            Violation(
                NAME,
                None,
                spec.get("compensated"),
                f"at least once: {what}",
                "it never happened: the run is vacuous (it exercised nothing of what it was meant to); "
                "move the fault onto a call the workload makes, or widen it",
                basis="absent",
                cause=f"never: {what}",
            )
        )
    examined = Examined(len(history.sagas), len(specs)) if specs else None
    return verdict(NAME, violations, observation=observe(history), examined=examined, asked=len(specs), met=met)
