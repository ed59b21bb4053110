"""The ``contracts`` checker: every captured CloudEvent matches the envelope and its type's data schema.

Registered through the ``saga_harness.checkers`` entry point (harness core
imports nothing from ``contracts``). It reads the events the index keeps
(``History.captured``, present when ``run_checks`` is asked for this checker)
and reports each invalid event once — a redelivery of the very same event
only adds its history line to the evidence. An event type with no schema is
not a violation: it is counted and listed in the stats (``unknown_types``).
"""

from __future__ import annotations

import functools
from typing import Any

from saga_harness.checkers.verdict import Verdict, Violation, verdict
from saga_harness.contracts.events import EventReport, EventSummary, SchemaRegistry, bundled_registry
from saga_harness.history import History
from saga_harness.model import SagaModel
from saga_harness.pointer import resolve

NAME = "contracts"


def check(history: History, model: SagaModel, registry: SchemaRegistry | None = None) -> Verdict:
    """Validate every captured event of ``history``; one violation per distinct invalid event."""
    if history.captured is None:
        if history.events:
            raise ValueError(
                "the contracts checker needs the captured events: build the index with "
                "build_index(entries, model, keep_events=True) (run_checks does when asked for 'contracts')"
            )
        captured: list[tuple[str, dict[str, Any]]] = []
    else:
        captured = history.captured
    registry = registry or _registry(tuple(model.event_schemas))
    saga_pointers, steps = _locations(model)
    summary = EventSummary()
    # (source, id) -> [event, report, refs]: a redelivery is the same event, judged once.
    judged: dict[tuple[Any, Any], list[Any]] = {}
    order: list[list[Any]] = []
    deliveries = 0
    for ref, event in captured:
        deliveries += 1
        key = (event.get("source"), event.get("id")) if isinstance(event, dict) else (None, None)
        seen = judged.get(key) if key != (None, None) else None
        if seen is not None and seen[0] == event:
            seen[2].append(ref)
            continue
        report = registry.validate(event)
        summary.add(report, where=ref)
        record = [event, report, [ref]]
        judged[key] = record
        order.append(record)
    violations = [
        _violation(event, report, refs, saga_pointers, steps)
        for event, report, refs in order
        if report.status == "invalid"
    ]
    return verdict(
        NAME,
        violations,
        events_checked=summary.events,
        invalid=summary.total("invalid"),
        unknown=summary.total("unknown"),
        valid=summary.total("valid"),
        deliveries=deliveries,
        unknown_types=summary.unknown_types,
        by_type=summary.by_type(),
    )


def _violation(
    event: Any,
    report: EventReport,
    refs: list[str],
    saga_pointers: dict[str, str],
    steps: dict[str, str],
) -> Violation:
    etype = report.type or "(no type)"
    return Violation(
        checker=NAME,
        saga_id=_saga_id(event, report.type, saga_pointers),
        step=steps.get(report.type or ""),
        expected=f"event {report.id or '(no id)'} of type {etype} to match the CloudEvents envelope and its schema",
        actual="; ".join(f"{f.pointer or '(event)'}: {f.reason}" for f in report.failures),
        evidence=tuple(refs),
    )


def _saga_id(event: Any, etype: str | None, saga_pointers: dict[str, str]) -> str | None:
    """Where the model says this type carries its saga id, else the ``sagaid`` extension, else
    ``data.saga_id`` — an invalid event may lack any of them."""
    if not isinstance(event, dict):
        return None
    pointers = [saga_pointers[etype]] if etype in saga_pointers else []
    for pointer in (*pointers, "/sagaid", "/data/saga_id"):
        value = resolve(event, pointer, None)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
            return str(value)
    return None


def _locations(model: SagaModel) -> tuple[dict[str, str], dict[str, str]]:
    """Per event type: the pointer to its saga id, and the step (or compensation) it is evidence of."""
    pointers = {etype: matches[0][2].saga_id for etype, matches in model.matches().items() if matches}
    steps: dict[str, str] = {}
    for step in model.steps:
        steps.setdefault(step.done.event, step.name)
        if step.undone is not None:
            steps.setdefault(step.undone.event, step.compensation or f"undo {step.name}")
    return pointers, steps


@functools.lru_cache(maxsize=8)
def _registry(extra: tuple[str, ...]) -> SchemaRegistry:
    # Loading and compiling schemas is the costly part; a process judges few distinct SUTs.
    return SchemaRegistry.load(*extra) if extra else bundled_registry()
