"""What a checker returns: a verdict, and for each broken promise a violation
naming the saga, the step, what was expected, what happened, and the history
lines that prove it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence"] = list(self.evidence)
        return d


@dataclass(frozen=True)
class Verdict:
    name: str
    ok: bool
    violations: tuple[Violation, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "violations": [v.to_dict() for v in self.violations],
            "stats": self.stats,
        }


def verdict(name: str, violations: list[Violation], **stats: Any) -> Verdict:
    return Verdict(name, not violations, tuple(violations), dict(stats))


@dataclass(frozen=True)
class Verdicts:
    """Every checker's verdict for one run."""

    checks: tuple[Verdict, ...]
    stats: dict[str, Any] = field(default_factory=dict)

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
        if not self.ok:
            raise AssertionError(self.explain())

    def to_dict(self, **identity: Any) -> dict[str, Any]:
        """The ``verdicts.json`` document."""
        return {"ok": self.ok, **identity, "stats": self.stats, "checks": [c.to_dict() for c in self.checks]}
