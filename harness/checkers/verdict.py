"""What a checker returns: a verdict, and for each broken promise a violation
naming the saga, the step, what was expected, what happened, and the history
lines that prove it.

A verdict's ``status`` is one of three:

- ``ok`` — every promise the checker judges held, on the evidence it examined
  (:class:`Examined`; the run's :class:`~saga_harness.checkers.coverage.Coverage` says
  what that evidence was);
- ``violated`` — evidence proves a promise broken (at least one :class:`Violation`);
- ``inconclusive`` — nothing is proved broken, but some of it could not be judged
  (``reason`` says why): a violation inferred from *absent* evidence in a run whose
  evidence was not complete (still arriving, or the machine starved:
  :mod:`saga_harness.checkers.observation`), or a saga still progressing when
  observation ended. Such instances are kept (``inconclusive``), never dropped.

A violation proved by evidence that is present (``basis = "present"``) is never
downgraded. Violations are grouped into findings, one per cause
(:mod:`saga_harness.checkers.findings`). A run's status is ``violated`` if any check
is, else ``inconclusive`` if any is, else ``ok``: an inconclusive run is neither green
nor red, and the command line exits 3 for it (:data:`EXIT_INCONCLUSIVE`).

:class:`Verdicts` is every checker's verdict for one run, with the run's
identity (:class:`RunInfo`), summary (:class:`RunStats`) and what it covered. It is
written to and read from ``verdicts.json`` by the same code (:meth:`Verdicts.write`,
:meth:`Verdicts.read`): nothing reads that file by string key. A file written before
statuses existed reads as ``ok``/``violated`` from its ``ok``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from saga_harness.checkers.coverage import Coverage
from saga_harness.checkers.findings import Finding, group
from saga_harness.errors import HarnessError

if TYPE_CHECKING:
    from saga_harness.checkers.observation import Observation

VERDICTS_FILE = "verdicts.json"

Status = Literal["ok", "violated", "inconclusive"]
STATUSES: tuple[Status, ...] = ("ok", "violated", "inconclusive")
# What proves a violation: evidence that is there (never downgraded), or evidence that is not.
Basis = Literal["present", "absent"]
# What an instance is: a broken promise; a saga slower than the objective (reported, not a
# violation); an observation gap (evidence the harness missed, the snapshots proving the fact).
Kind = Literal["violation", "slow", "gap"]

# The command line's exit status for a judged run (README "Exit status"; --help of each command).
EXIT_OK = 0
EXIT_VIOLATED = 1
EXIT_ERROR = 2  # a usage, config or start-up error (HarnessError)
EXIT_INCONCLUSIVE = 3


@dataclass(frozen=True)
class Violation:
    """One instance: a broken promise (or, by ``kind``, a slow saga or an observation gap).

    ``basis``: ``present`` — proved by evidence that is there; ``absent`` — inferred from
    evidence that is not (downgraded to inconclusive when the run's evidence was not
    complete). ``cause``: a plain phrase shared by every instance of the same cause, free of
    what varies per saga — the key of its finding. ``reason``: why it could not be judged
    (set on the instances of :attr:`Verdict.inconclusive`)."""

    checker: str
    saga_id: str | None
    step: str | None
    expected: str
    actual: str
    evidence: tuple[str, ...] = ()  # history line references, "history.jsonl:123"
    basis: Basis = "present"
    cause: str | None = None
    kind: Kind = "violation"
    reason: str | None = None

    def explain(self) -> str:
        where = f"saga {self.saga_id}" if self.saga_id else "the run"
        step = f", step {self.step}" if self.step else ""
        proof = f"\n      evidence: {', '.join(self.evidence[:8])}" if self.evidence else ""
        more = f" (+{len(self.evidence) - 8} more)" if len(self.evidence) > 8 else ""
        why = f"\n      not judged: {self.reason}" if self.reason else ""
        head = f"[{self.checker}] {where}{step}"
        return f"{head}\n      expected: {self.expected}\n      actual:   {self.actual}{proof}{more}{why}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence"] = list(self.evidence)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Violation:
        basis = d.get("basis")
        kind = d.get("kind")
        return cls(
            str(d.get("checker", "")),
            None if d.get("saga_id") is None else str(d["saga_id"]),
            None if d.get("step") is None else str(d["step"]),
            str(d.get("expected", "")),
            str(d.get("actual", "")),
            tuple(map(str, d.get("evidence", ()))),
            basis if basis in ("present", "absent") else "present",
            None if d.get("cause") is None else str(d["cause"]),
            kind if kind in ("violation", "slow", "gap") else "violation",
            None if d.get("reason") is None else str(d["reason"]),
        )


@dataclass(frozen=True)
class Examined:
    """What a checker examined: how many sagas, and how many facts it judged them by, as it counts
    them — a step seen done or undone (compensation, outcome, idempotency: each piece of evidence),
    a key's answer, a status observed, a saga's net of a quantity, a snapshot record."""

    sagas: int = 0
    facts: int = 0

    @property
    def nothing(self) -> bool:
        return self.sagas == 0 and self.facts == 0


@dataclass(frozen=True)
class Verdict:
    """One checker's verdict. ``ok`` is ``status == "ok"``; ``violations`` are the proved ones,
    ``inconclusive`` the instances that could not be judged (each with its ``reason``),
    ``notes`` what is reported without failing (slow sagas, observation gaps); ``findings``
    groups them all by cause."""

    name: str
    status: Status
    violations: tuple[Violation, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    inconclusive: tuple[Violation, ...] = ()
    notes: tuple[Violation, ...] = ()
    findings: tuple[Finding, ...] = ()
    examined: Examined | None = None  # None: the checker does not say

    def __post_init__(self) -> None:
        # A checker written before statuses passed ``ok`` (a bool) in this place.
        if isinstance(self.status, bool):
            object.__setattr__(self, "status", "ok" if self.status and not self.violations else "violated")
        elif self.status not in STATUSES:
            raise ValueError(f"verdict {self.name!r}: status {self.status!r} is not one of {', '.join(STATUSES)}")
        if not self.findings and (self.violations or self.inconclusive or self.notes):
            object.__setattr__(self, "findings", _findings(self.violations, self.inconclusive, self.notes))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "ok": self.ok,
            "reason": self.reason,
            "violations": [v.to_json() for v in self.violations],
            "inconclusive": [v.to_json() for v in self.inconclusive],
            "notes": [v.to_json() for v in self.notes],
            "findings": [f.to_json() for f in self.findings],
            "stats": self.stats,
        }
        if self.examined is not None:
            d["examined"] = asdict(self.examined)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Verdict:
        violations = tuple(Violation.from_json(v) for v in d.get("violations", ()))
        status = d.get("status")
        if status not in STATUSES:  # written before statuses: its ``ok`` says
            status = "ok" if d.get("ok", False) and not violations else "violated"
        examined = d.get("examined")
        return cls(
            str(d.get("name", "")),
            status,
            violations,
            dict(d.get("stats") or {}),
            None if d.get("reason") is None else str(d["reason"]),
            tuple(Violation.from_json(v) for v in d.get("inconclusive", ())),
            tuple(Violation.from_json(v) for v in d.get("notes", ())),
            tuple(Finding.from_json(f) for f in d.get("findings", ()) if isinstance(f, Mapping)),
            Examined(int(examined.get("sagas") or 0), int(examined.get("facts") or 0))
            if isinstance(examined, Mapping)
            else None,
        )


def _findings(
    violations: Iterable[Violation], inconclusive: Iterable[Violation], notes: Iterable[Violation]
) -> tuple[Finding, ...]:
    return (*group(violations, "violated"), *group(inconclusive, "inconclusive"), *group(notes, "note"))


def _reason(unsettled: list[Violation]) -> str | None:
    """The verdict's reason: each distinct reason once, with how many instances it holds back."""
    counts: dict[str, int] = {}
    for v in unsettled:
        counts[v.reason or "not judged"] = counts.get(v.reason or "not judged", 0) + 1
    if not counts:
        return None
    return "; ".join(f"{n} not judged: {why}" for why, n in counts.items())


def verdict(
    name: str,
    violations: list[Violation],
    *,
    observation: Observation | None = None,
    examined: Examined | None = None,
    **stats: Any,
) -> Verdict:
    """A checker's verdict from its instances.

    Proved violations make it ``violated``. An instance inferred from absent evidence
    (``basis = "absent"``) is held back as inconclusive when ``observation`` says the run's
    evidence was not complete; one that arrives with a ``reason`` is held back as it is.
    Slow sagas and observation gaps without a reason are notes. ``examined``: what the
    checker looked at (the run's coverage lists it)."""
    proved: list[Violation] = []
    unsettled: list[Violation] = []
    notes: list[Violation] = []
    holdback = None if observation is None or observation.complete else observation.reason
    for v in violations:
        if v.reason is not None:
            unsettled.append(v)
        elif v.kind != "violation":
            notes.append(v)
        elif v.basis == "absent" and holdback is not None:
            unsettled.append(replace(v, reason=holdback))
        else:
            proved.append(v)
    status: Status = "violated" if proved else "inconclusive" if unsettled else "ok"
    return Verdict(
        name,
        status,
        tuple(proved),
        dict(stats),
        _reason(unsettled),
        tuple(unsettled),
        tuple(notes),
        _findings(proved, unsettled, notes),
        examined,
    )


@dataclass(frozen=True)
class RunInfo:
    """Who a run was: what ran, against what, how to reproduce it."""

    run_id: str
    sut: str | None = None
    seed: int | None = None
    scenario: str | None = None
    bugs: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # the SUT's own switches (--env), recorded for replay
    command: str = ""  # the command line that reproduces the run
    config: str | None = None  # the SUT description's path, when not the reference system
    started_at: float | None = None
    finished_at: float | None = None
    faults: tuple[dict[str, Any], ...] = ()  # the fault schedule, as FaultWindow.describe() gives it

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["faults"] = list(self.faults)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunInfo:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["run_id"] = str(kw.get("run_id") or "")
        kw["env"] = dict(kw.get("env") or {})
        kw["faults"] = tuple(kw.get("faults") or ())
        kw["command"] = str(kw.get("command") or "")
        return cls(**kw)


@dataclass(frozen=True)
class RunStats:
    """The run at a glance: sagas started and how they ended, time to converge, history size."""

    sagas_started: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)  # completed / compensated / failed / unfinished
    convergence_s: dict[str, float | None] = field(default_factory=dict)  # p50 / p99 / max
    entries: int = 0
    events: int = 0
    # How the starts went (per idempotency key): sagas, started (a saga id known), failed (an
    # answer outside `expect`), unanswered (the last answer never came), found_later (by a
    # lookup), lost (no saga id at all). See saga_harness.startplan.StartTally.
    starts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunStats:
        return cls(
            int(d.get("sagas_started") or 0),
            dict(d.get("by_outcome") or {}),
            dict(d.get("convergence_s") or {}),
            int(d.get("entries") or 0),
            int(d.get("events") or 0),
            dict(d.get("starts") or {}),
        )


@dataclass(frozen=True)
class Verdicts:
    """Every checker's verdict for one run, and what the run covered.

    ``on_inconclusive``: what :meth:`assert_ok` does with an inconclusive run — called with
    the explanation (the pytest plugin passes ``pytest.skip`` or ``pytest.fail``, per
    ``--saga-inconclusive``); None: it fails, like a violation."""

    checks: tuple[Verdict, ...]
    stats: RunStats = field(default_factory=RunStats)
    run: RunInfo | None = None
    coverage: Coverage = field(default_factory=Coverage)
    on_inconclusive: Callable[[str], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def status(self) -> Status:
        """``violated`` if any check is, else ``inconclusive`` if any is, else ``ok``."""
        statuses = {c.status for c in self.checks}
        return "violated" if "violated" in statuses else "inconclusive" if "inconclusive" in statuses else "ok"

    @property
    def ok(self) -> bool:
        """Every check holds (an inconclusive run is not ok, nor violated)."""
        return self.status == "ok"

    @property
    def reason(self) -> str | None:
        """Why the run is inconclusive: each inconclusive check's reason (None unless inconclusive)."""
        if self.status != "inconclusive":
            return None
        return "; ".join(f"{c.name}: {c.reason}" for c in self.checks if c.status == "inconclusive")

    @property
    def exit_code(self) -> int:
        """The command line's exit status for these verdicts: 0 ok, 1 violated, 3 inconclusive."""
        return {"ok": EXIT_OK, "violated": EXIT_VIOLATED, "inconclusive": EXIT_INCONCLUSIVE}[self.status]

    @property
    def failures(self) -> list[Violation]:
        """Every proved violation (the instances behind the ``violated`` findings)."""
        return [v for c in self.checks for v in c.violations]

    @property
    def findings(self) -> list[Finding]:
        """Every check's findings: violated first, then inconclusive, then notes."""
        order = {"violated": 0, "inconclusive": 1, "note": 2}
        return sorted((f for c in self.checks for f in c.findings), key=lambda f: order[f.status])

    def __getitem__(self, name: str) -> Verdict:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r}; checks: {[c.name for c in self.checks]}")

    def get(self, name: str) -> Verdict | None:
        """The verdict of checker ``name``, or None when it did not run."""
        return next((c for c in self.checks if c.name == name), None)

    def with_run(self, run: RunInfo) -> Verdicts:
        """The same verdicts, labelled with who the run was."""
        return replace(self, run=run)

    def explain(self, limit: int = 20) -> str:
        """Every finding in plain language (each with its first sagas and lines), then the first
        ``limit`` violations in full; an inconclusive run says why."""
        if self.ok:
            return f"all {len(self.checks)} checks hold: " + ", ".join(c.name for c in self.checks)
        lines: list[str] = []
        if self.status == "violated":
            bad = [c for c in self.checks if c.status == "violated"]
            lines.append(f"{len(self.failures)} violation(s) in {', '.join(c.name for c in bad)}:")
        else:
            unsure = [c for c in self.checks if c.status == "inconclusive"]
            lines.append(
                f"inconclusive: no violation proved, but {', '.join(c.name for c in unsure)} could not be judged:"
            )
        for f in self.findings:
            if f.status == "note":
                continue
            mark = "✗" if f.status == "violated" else "?"
            lines.append(f"  {mark} [{f.checker}] {f.title}{_first(f)}")
            if f.reason and f.status == "inconclusive":
                lines.append(f"      not judged: {f.reason}")
        for v in self.failures[:limit]:
            lines.append("  " + v.explain())
        if len(self.failures) > limit:
            lines.append(f"  … and {len(self.failures) - limit} more (see verdicts.json)")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Fail (AssertionError) with a readable account of every finding when a check is violated;
        when the run is inconclusive, call ``on_inconclusive`` with the account (default: fail too)."""
        __tracebackhide__ = True
        if self.status == "violated":
            raise AssertionError(self.explain())
        if self.status == "inconclusive":
            if self.on_inconclusive is not None:
                self.on_inconclusive(self.explain())
                return
            raise AssertionError(self.explain())

    # -- verdicts.json ----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The ``verdicts.json`` document: ``status``, ``ok``, ``reason``, the run's identity (flat),
        ``stats``, ``coverage``, ``checks``."""
        run = self.run.to_json() if self.run is not None else {}
        return {
            "status": self.status,
            "ok": self.ok,
            "reason": self.reason,
            **run,
            "stats": self.stats.to_json(),
            "coverage": self.coverage.to_json(),
            "checks": [c.to_json() for c in self.checks],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Verdicts:
        coverage = d.get("coverage")
        return cls(
            tuple(Verdict.from_json(c) for c in d.get("checks", ())),
            RunStats.from_json(d.get("stats") or {}),
            RunInfo.from_json(d) if d.get("run_id") is not None else None,
            Coverage.from_json(coverage) if isinstance(coverage, Mapping) else Coverage(),
        )

    def write(self, run_dir: str | Path) -> Path:
        """Write ``verdicts.json`` into ``run_dir`` (atomically: a reader never sees half of it)."""
        path = Path(run_dir) / VERDICTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{VERDICTS_FILE}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, run_dir: str | Path) -> Verdicts:
        """The verdicts stored in a run directory (or a ``verdicts.json`` path)."""
        path = Path(run_dir)
        if path.is_dir():
            path = path / VERDICTS_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HarnessError(
                f"{path}: no such file; is {path.parent} a saga-harness run directory? "
                f"(`saga-harness check {path.parent}` judges a recorded history again)"
            ) from None
        except ValueError as exc:
            raise HarnessError(
                f"{path}: not valid JSON ({exc}); judge the run again with `saga-harness check`"
            ) from None
        if not isinstance(doc, dict):
            raise HarnessError(f"{path}: not a verdicts document (a JSON object with `checks`)")
        return cls.from_json(doc)


def _first(f: Finding) -> str:
    """A finding's first instances, as ``: s1 (history.jsonl:12), s2 … and 25 more sagas``."""
    named = [i for i in f.first if i.saga_id is not None]
    if not named:
        refs = [r for i in f.first for r in i.evidence][:3]
        return f" ({', '.join(refs)})" if refs else ""
    shown = ", ".join(f"{i.saga_id} ({', '.join(i.evidence[:2])})" if i.evidence else i.saga_id for i in named)
    more = f" … and {f.more_sagas} more saga{'s' if f.more_sagas != 1 else ''}" if f.more_sagas else ""
    return f": {shown}{more}"
