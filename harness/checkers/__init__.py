"""Checkers: pure functions ``check(history, model) -> Verdict``, registered by name.

A verdict's status is ``ok``, ``violated`` (proved by evidence) or ``inconclusive``
(the run could not support a verdict); see :mod:`saga_harness.checkers.verdict`.
Build one with :func:`verdict`, marking each violation inferred from *absent* evidence
(``basis="absent"``) and passing the run's :func:`~saga_harness.checkers.observation.observe`:
such violations are held back when the evidence was not complete.

``history`` is the per-saga index (:class:`saga_harness.history.History`); no
checker does I/O or reads a clock. Register one with :func:`register`, or, from
another package, through the entry-point group ``saga_harness.checkers``;
:func:`run_checks` indexes a history once and runs them::

    @register("no_orphans")
    def check(history: History, model: SagaModel) -> Verdict:
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any

from saga_harness.checkers.coverage import measure
from saga_harness.checkers.verdict import RunInfo, RunStats, Verdict, Verdicts, Violation, verdict
from saga_harness.history import History, build_index
from saga_harness.model import SagaModel

Checker = Callable[[History, SagaModel], Verdict]
_REGISTRY: dict[str, Checker] = {}
# A checker that judges only what a run asked for (the sometimes-assertions): unless named, it runs
# only on the histories this says it applies to — a run that asked nothing shows no row for it.
_APPLIES: dict[str, Callable[[History], bool]] = {}


def register(name: str, applies: Callable[[History], bool] | None = None) -> Callable[[Checker], Checker]:
    """Register a checker under ``name`` (a name is taken once); ``applies``: run it, when checkers are
    not named, only on the histories it says yes to (default: every history)."""

    def deco(fn: Checker) -> Checker:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"a checker named {name!r} is already registered ({_REGISTRY[name].__module__})")
        _REGISTRY[name] = fn
        if applies is not None:
            _APPLIES[name] = applies
        return fn

    return deco


def checkers() -> dict[str, Checker]:
    """Every registered checker, built-in ones first, then entry points."""
    # Imported here, not at the top: each built-in checker module registers itself with
    # this module's `register`, so it can only be imported once this module is complete.
    from saga_harness.checkers import (  # noqa: F401
        compensation,
        conservation,
        convergence,
        idempotency,
        outcome,
        sometimes,
        state_machine,
    )

    for ep in entry_points(group="saga_harness.checkers"):
        if ep.name not in _REGISTRY:
            register(ep.name)(ep.load())
    return dict(_REGISTRY)


DEFAULT = ("idempotency", "compensation", "convergence", "state_machine", "outcome", "conservation", "contracts")
# Checkers that judge the captured events themselves: the index keeps the events only for them.
NEEDS_EVENTS = frozenset({"contracts"})


def run_checks(
    entries: Iterable[dict[str, Any]] | History, model: SagaModel, names: Iterable[str] | None = None
) -> Verdicts:
    """Index the history once, run each checker, and summarise the run."""
    available = checkers()
    wanted = list(names) if names is not None else list(available)
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise ValueError(f"unknown checker(s) {unknown}; known: {sorted(available)}")
    if isinstance(entries, History):
        history = entries
    else:
        history = build_index(entries, model, keep_events=not NEEDS_EVENTS.isdisjoint(wanted))
    if names is None:
        wanted = [n for n in wanted if n not in _APPLIES or _APPLIES[n](history)]
    results = tuple(available[n](history, model) for n in wanted)
    return Verdicts(results, summary(history, results), coverage=measure(history, model, results))


def summary(history: History, results: Iterable[Verdict]) -> RunStats:
    by_outcome: dict[str, int] = {}
    for rec in history.sagas.values():
        key = rec.outcome or "unfinished"
        by_outcome[key] = by_outcome.get(key, 0) + 1
    conv = next((r.stats.get("convergence_s") for r in results if r.name == "convergence"), None)
    started = sum(1 for r in history.sagas.values() if r.keys)
    return RunStats(
        sagas_started=started or len(history.sagas),
        by_outcome=by_outcome,
        convergence_s=conv or {},
        entries=history.entries,
        events=history.events,
    )


__all__ = [
    "DEFAULT",
    "Checker",
    "RunInfo",
    "RunStats",
    "Verdict",
    "Verdicts",
    "Violation",
    "checkers",
    "register",
    "run_checks",
    "verdict",
]
