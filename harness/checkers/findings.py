"""One finding per cause: a checker's instances grouped by what broke, not one line per saga.

A double charge in 28 sagas is one finding ("capture_payment took effect more than once
in 28 sagas"), not 28 lines; 367 events lacking one attribute are one finding with a
count of 367. A finding is keyed by its checker, its step and the *cause* of each
instance — a plain phrase the checker gives every instance of one cause
(:attr:`~saga_harness.checkers.verdict.Violation.cause`), free of saga ids and numbers
that vary per instance. An instance without a cause (a third-party checker's) is keyed
by its ``actual`` text with the numbers and ids masked, so events failing one schema
rule still fall together.

Every instance stays in ``verdicts.json``; a finding keeps its count, how many sagas it
names, and the first few instances with their history lines, for a person to start from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

FIRST = 5  # instances a finding keeps in full (saga id + history lines); the rest are counted
FIRST_EVIDENCE = 3  # history lines kept per such instance
# What one instance of a checker is, where it is not one saga's broken promise ("367 events").
UNITS = {"contracts": "event"}

# What a finding says of the run: it broke a promise, it could not be judged, or it is
# reported without failing (a slow saga, an event the snapshots prove was missed).
FindingStatus = Literal["violated", "inconclusive", "note"]

# Masked in a cause derived from an instance's text: numbers, hex ids and uuids vary per instance.
_VARYING = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]*\d[0-9a-f]*\b", re.I)


@dataclass(frozen=True)
class Instance:
    """One instance of a finding: the saga it names (None: the run as a whole) and its first history lines."""

    saga_id: str | None
    evidence: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"saga_id": self.saga_id, "evidence": list(self.evidence)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Instance:
        sid = d.get("saga_id")
        return cls(None if sid is None else str(sid), tuple(map(str, d.get("evidence") or ())))


@dataclass(frozen=True)
class Finding:
    """The instances of one cause, found by one checker.

    ``kind``: ``violation`` (a broken promise), ``slow`` (a saga slower than the
    time-to-converge objective) or ``gap`` (evidence the harness missed though the
    snapshots prove the fact). ``status`` says what it does to the verdict. ``basis``:
    ``present`` when evidence that is there proves it, ``absent`` when it is inferred
    from evidence that is not."""

    checker: str
    status: FindingStatus
    kind: str
    step: str | None
    cause: str
    title: str  # plain language, with the counts: "capture_payment took effect more than once in 28 sagas"
    count: int  # instances
    sagas: int  # distinct sagas the instances name
    first: tuple[Instance, ...] = ()
    basis: str = "present"
    reason: str | None = None  # why it could not be judged (status inconclusive)

    @property
    def more_sagas(self) -> int:
        """Sagas named beyond the first instances ("and N more sagas")."""
        return max(0, self.sagas - len({i.saga_id for i in self.first if i.saga_id is not None}))

    def to_json(self) -> dict[str, Any]:
        return {
            "checker": self.checker,
            "status": self.status,
            "kind": self.kind,
            "step": self.step,
            "cause": self.cause,
            "title": self.title,
            "count": self.count,
            "sagas": self.sagas,
            "first": [i.to_json() for i in self.first],
            "basis": self.basis,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Finding:
        status = str(d.get("status") or "violated")
        return cls(
            str(d.get("checker") or ""),
            status if status in ("violated", "inconclusive", "note") else "violated",  # type: ignore[arg-type]
            str(d.get("kind") or "violation"),
            None if d.get("step") is None else str(d["step"]),
            str(d.get("cause") or ""),
            str(d.get("title") or d.get("cause") or ""),
            int(d.get("count") or 0),
            int(d.get("sagas") or 0),
            tuple(Instance.from_json(i) for i in d.get("first") or () if isinstance(i, Mapping)),
            str(d.get("basis") or "present"),
            None if d.get("reason") is None else str(d["reason"]),
        )


def derived_cause(checker: str, step: str | None, actual: str) -> str:
    """The cause of an instance that names none: its text, with what varies per instance masked."""
    shape = _VARYING.sub("#", actual).strip() or "broken"
    where = step or checker
    return f"{where}: {shape}"


def _title(checker: str, cause: str, count: int, sagas: int) -> str:
    unit = UNITS.get(checker, "instance")
    units = f"{count} {unit}{'s' if count != 1 else ''}"
    if sagas == 0:
        return cause if count == 1 else f"{cause}: {units}"
    in_sagas = f"in {sagas} saga{'s' if sagas != 1 else ''}"
    if count == sagas and checker not in UNITS:
        return f"{cause} {in_sagas}"
    return f"{cause}: {units} {in_sagas}"


def group(instances: Iterable[Any], status: FindingStatus) -> list[Finding]:
    """The findings of ``instances`` (:class:`~saga_harness.checkers.verdict.Violation`), one per
    (checker, step, cause, kind), in the order each cause was first met."""
    groups: dict[tuple[str, str | None, str, str], list[Any]] = {}
    for v in instances:
        cause = v.cause or derived_cause(v.checker, v.step, v.actual)
        groups.setdefault((v.checker, v.step, cause, v.kind), []).append(v)
    out: list[Finding] = []
    for (checker, step, cause, kind), same in groups.items():
        sagas = len({v.saga_id for v in same if v.saga_id is not None})
        first: list[Instance] = []
        named: set[str | None] = set()
        for v in same:
            if len(first) >= FIRST:
                break
            if v.saga_id is not None and v.saga_id in named:
                continue  # the first instances name different sagas: more to start from
            named.add(v.saga_id)
            first.append(Instance(v.saga_id, tuple(v.evidence[:FIRST_EVIDENCE])))
        reasons = sorted({v.reason for v in same if v.reason})
        out.append(
            Finding(
                checker=checker,
                status=status,
                kind=kind,
                step=step,
                cause=cause,
                title=_title(checker, cause, len(same), sagas),
                count=len(same),
                sagas=sagas,
                first=tuple(first),
                basis="absent" if all(v.basis == "absent" for v in same) else "present",
                reason="; ".join(reasons) if reasons else None,
            )
        )
    return out
