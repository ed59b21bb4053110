"""The self-contained HTML reliability report (``report.html``), from the run directory alone.

One file: CSS and SVG inline, no script, no network request. Every text that
comes from the SUT or the history is escaped by the template engine.

The run's status has its own colour and words: green "All invariants hold", red
"Invariants violated", amber "Inconclusive" (nothing proved broken, but a check could
not be judged — the reason is on the banner). Findings are one card each (one per cause,
with its sagas listed and the first one's swimlane); what the run covered has its section.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from saga_harness.checkers.findings import derived_cause
from saga_harness.checkers.verdict import RunInfo, Verdict, Verdicts, Violation
from saga_harness.reports.inputs import contract_results
from saga_harness.reports.plots import histogram, swimlane, timeline
from saga_harness.reports.timeline import compute
from saga_harness.rundir import REPORT_FILE, read_load

TEMPLATES = Path(__file__).with_name("templates")
MAX_TRACED = 10  # findings drawn with their first saga's swimlane
MAX_EVIDENCE = 20  # history lines quoted per finding
MAX_LINE = 2000
HEADLINE = {"ok": "All invariants hold", "violated": "Invariants violated", "inconclusive": "Inconclusive"}
TITLE = {"ok": "PASS", "violated": "FAIL", "inconclusive": "INCONCLUSIVE"}


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))


def _lines(run_dir: Path, refs: list[str]) -> list[tuple[str, str]]:
    """The history lines ``refs`` cite ("history.jsonl:12"), as text."""
    wanted: dict[str, set[int]] = {}
    for ref in refs:
        name, _, line = ref.rpartition(":")
        if name and line.isdigit():
            wanted.setdefault(name, set()).add(int(line))
    out = []
    for name, numbers in wanted.items():
        path = run_dir / name
        if not path.exists():
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if n in numbers:
                    out.append((f"{name}:{n}", line.strip()[:MAX_LINE]))
                if n > max(numbers):
                    break
    return out


def _version() -> str:
    try:
        return version("saga-harness")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "dev"


def _examples(check: Verdict) -> dict[tuple[str, str | None, str, str], Violation]:
    """The first instance of each of ``check``'s findings (its expected and actual, to show)."""
    out: dict[tuple[str, str | None, str, str], Violation] = {}
    for v in (*check.violations, *check.inconclusive, *check.notes):
        key = (v.checker, v.step, v.cause or derived_cause(v.checker, v.step, v.actual), v.kind)
        out.setdefault(key, v)
    return out


def _cards(run_dir: Path, verdicts: Verdicts) -> tuple[list[dict[str, Any]], set[str]]:
    """One card per finding (violated, inconclusive, then notes), and the sagas to trace."""
    examples: dict[tuple[str, str | None, str, str], Violation] = {}
    for check in verdicts.checks:
        examples.update(_examples(check))
    cards: list[dict[str, Any]] = []
    traced: set[str] = set()
    for f in verdicts.findings:
        first = next((i.saga_id for i in f.first if i.saga_id is not None), None)
        if first is not None and f.status != "note" and len(traced) < MAX_TRACED:
            traced.add(first)
        refs = [r for i in f.first for r in i.evidence][:MAX_EVIDENCE]
        cards.append(
            {
                "f": f,
                "example": examples.get((f.checker, f.step, f.cause, f.kind)),
                "saga": first,
                "lines": _lines(run_dir, refs),
            }
        )
    return cards, traced


def render_report(
    run_dir: str | Path,
    verdicts: Verdicts,
    contracts: Mapping[str, Any] | None = None,
    source: str | Path | None = None,
) -> str:
    """The HTML of ``run_dir``'s report: its ``verdicts``, its history's figures and its contract results
    (``source``: the run directory holding the history, when the verdicts were written elsewhere)."""
    run_dir = Path(source) if source is not None else Path(run_dir)
    run = verdicts.run or RunInfo(run_id=run_dir.name)
    cards, trace_ids = _cards(run_dir, verdicts)
    figures = compute(run_dir, trace_ids)
    for card in cards:
        sid = card["saga"]
        lane = sid in trace_ids and card["f"].status != "note"
        card["swimlane"] = swimlane(figures.traces.get(sid, []), figures.faults, figures.start or 0) if lane else ""
    started = run.started_at or figures.start or 0
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            ok=verdicts.ok,
            status=verdicts.status,
            headline=HEADLINE[verdicts.status],
            title_word=TITLE[verdicts.status],
            reason=verdicts.reason,
            coverage=verdicts.coverage,
            run=run,
            checks=verdicts.checks,
            stats=verdicts.stats,
            conv=verdicts.stats.convergence_s,
            started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            duration=(run.finished_at or figures.end or 0) - started,
            version=_version(),
            python=platform.python_version(),
            timeline_svg=timeline(figures),
            converge_svg=histogram(figures.converge_s, "time to converge"),
            by_trigger=figures.by_trigger,
            findings=cards,
            violations=len(verdicts.failures),
            load=read_load(run_dir),
            contracts=contracts or None,
        )
    )


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """(Re)build ``report.html`` (or ``out``) for a run directory; return its path."""
    run_dir = Path(run_dir)
    verdicts = Verdicts.read(run_dir)
    path = Path(out) if out else run_dir / REPORT_FILE
    path.write_text(render_report(run_dir, verdicts, contract_results(run_dir, verdicts)), encoding="utf-8")
    return path
