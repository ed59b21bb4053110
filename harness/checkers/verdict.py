"""What a checker returns: a verdict, and for each broken promise a violation
naming the saga, the step, what was expected, what happened, and the history
lines that prove it.

:class:`Verdicts` is every checker's verdict for one run, with the run's
identity (:class:`RunInfo`) and summary (:class:`RunStats`). It is written to
and read from ``verdicts.json`` by the same code (:meth:`Verdicts.write`,
:meth:`Verdicts.read`): nothing reads that file by string key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from saga_harness.errors import HarnessError

VERDICTS_FILE = "verdicts.json"


@dataclass(frozen=True)
class Violation:
    checker: str
    saga_id: str | None
    step: str | None
    expected: str
    actual: str
    evidence: tuple[str, ...] = ()  # history line references, "history.jsonl:123"

    def explain(self) -> str:
        where = f"saga {self.saga_id}" if self.saga_id else "the run"
        step = f", step {self.step}" if self.step else ""
        proof = f"\n      evidence: {', '.join(self.evidence[:8])}" if self.evidence else ""
        more = f" (+{len(self.evidence) - 8} more)" if len(self.evidence) > 8 else ""
        head = f"[{self.checker}] {where}{step}"
        return f"{head}\n      expected: {self.expected}\n      actual:   {self.actual}{proof}{more}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence"] = list(self.evidence)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Violation:
        return cls(
            str(d.get("checker", "")),
            None if d.get("saga_id") is None else str(d["saga_id"]),
            None if d.get("step") is None else str(d["step"]),
            str(d.get("expected", "")),
            str(d.get("actual", "")),
            tuple(map(str, d.get("evidence", ()))),
        )


@dataclass(frozen=True)
class Verdict:
    name: str
    ok: bool
    violations: tuple[Violation, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "violations": [v.to_json() for v in self.violations],
            "stats": self.stats,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Verdict:
        return cls(
            str(d.get("name", "")),
            bool(d.get("ok", False)),
            tuple(Violation.from_json(v) for v in d.get("violations", ())),
            dict(d.get("stats") or {}),
        )


def verdict(name: str, violations: list[Violation], **stats: Any) -> Verdict:
    return Verdict(name, not violations, tuple(violations), dict(stats))


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
    """Every checker's verdict for one run."""

    checks: tuple[Verdict, ...]
    stats: RunStats = field(default_factory=RunStats)
    run: RunInfo | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Violation]:
        return [v for c in self.checks for v in c.violations]

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
        return Verdicts(self.checks, self.stats, run)

    def explain(self, limit: int = 20) -> str:
        if self.ok:
            return f"all {len(self.checks)} checks hold: " + ", ".join(c.name for c in self.checks)
        bad = [c for c in self.checks if not c.ok]
        lines = [f"{len(self.failures)} violation(s) in {', '.join(c.name for c in bad)}:"]
        for v in self.failures[:limit]:
            lines.append("  " + v.explain())
        if len(self.failures) > limit:
            lines.append(f"  … and {len(self.failures) - limit} more (see verdicts.json)")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Fail (AssertionError) with a readable account of every violation."""
        __tracebackhide__ = True
        if not self.ok:
            raise AssertionError(self.explain())

    # -- verdicts.json ----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The ``verdicts.json`` document: ``ok``, the run's identity (flat), ``stats``, ``checks``."""
        run = self.run.to_json() if self.run is not None else {}
        return {"ok": self.ok, **run, "stats": self.stats.to_json(), "checks": [c.to_json() for c in self.checks]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Verdicts:
        return cls(
            tuple(Verdict.from_json(c) for c in d.get("checks", ())),
            RunStats.from_json(d.get("stats") or {}),
            RunInfo.from_json(d) if d.get("run_id") is not None else None,
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
