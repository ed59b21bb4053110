"""The self-contained HTML reliability report (``report.html``), from the run directory alone.

One file: CSS and SVG inline, no script, no network request. Every text that
comes from the SUT or the history is escaped by the template engine.

The run's status has its own colour and words: green "All invariants hold", red
"Invariants violated", amber "Inconclusive" (nothing proved broken, but a check could
not be judged — the reason is on the banner). Findings are one card each (one per cause,
with its sagas listed and one saga's swimlane — a saga no earlier card drew, when it has
one); what the run covered has its section. Counts keyed by name (outcomes, outcomes by
trigger) are drawn as words and tables, never as Python's ``{'completed': 3}``. A print
stylesheet drops the dark banner and keeps each card on one page.
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
from saga_harness.checkers.verdict import RunInfo, Verdicts, Violation
from saga_harness.reports.inputs import contract_results
from saga_harness.reports.plots import histogram, timeline
from saga_harness.reports.swimlane import expectations, legend, swimlane
from saga_harness.reports.timeline import Figures, compute
from saga_harness.rundir import REPORT_FILE, read_load

TEMPLATES = Path(__file__).with_name("templates")
MAX_TRACED = 10  # sagas drawn as swimlanes (one per finding, the first findings first)
MAX_EVIDENCE = 20  # history lines quoted per finding
MAX_LINE = 2000
HEADLINE = {"ok": "All invariants hold", "violated": "Invariants violated", "inconclusive": "Inconclusive"}
TITLE = {"ok": "PASS", "violated": "FAIL", "inconclusive": "INCONCLUSIVE"}
OUTCOMES = ("completed", "compensated", "failed", "unfinished")  # shown in this order, then the rest
Key = tuple[str, str | None, str, str]  # a finding's: checker, step, cause, kind


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


def ordered(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """``counts`` by outcome as (outcome, count) pairs: the known outcomes in their order, then the rest."""
    names = [k for k in OUTCOMES if k in counts] + sorted(k for k in counts if k not in OUTCOMES)
    return [(k, int(counts[k])) for k in names]


def _instances(verdicts: Verdicts) -> dict[Key, dict[str | None, Violation]]:
    """Each finding's instances by the saga they name (the first instance of each)."""
    out: dict[Key, dict[str | None, Violation]] = {}
    for check in verdicts.checks:
        for v in (*check.violations, *check.inconclusive, *check.notes):
            key = (v.checker, v.step, v.cause or derived_cause(v.checker, v.step, v.actual), v.kind)
            out.setdefault(key, {}).setdefault(v.saga_id, v)
    return out


def _cards(run_dir: Path, verdicts: Verdicts) -> tuple[list[dict[str, Any]], set[str]]:
    """One card per finding (violated, inconclusive, then notes), and the sagas to trace: for each
    finding, the first of its sagas that no earlier card traces (its first when all are)."""
    instances = _instances(verdicts)
    cards: list[dict[str, Any]] = []
    traced: set[str] = set()
    for f in verdicts.findings:
        named = [i.saga_id for i in f.first if i.saga_id is not None]
        saga = None
        if named and f.status != "note" and len(traced) < MAX_TRACED:
            saga = next((sid for sid in named if sid not in traced), named[0])
            traced.add(saga)
        by_saga = instances.get((f.checker, f.step, f.cause, f.kind), {})
        refs = [r for i in f.first for r in i.evidence][:MAX_EVIDENCE]
        cards.append(
            {
                "f": f,
                "example": by_saga.get(saga) or next(iter(by_saga.values()), None),
                "saga": saga,
                "lines": _lines(run_dir, refs),
            }
        )
    return cards, traced


def _trigger_table(by_trigger: Mapping[str, Mapping[str, int]]) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """Outcomes by trigger as a table: the outcome columns, and a row of counts per trigger."""
    columns = [k for k, _n in ordered({o: 0 for outs in by_trigger.values() for o in outs})]
    return columns, [(trig, [int(outs.get(c, 0)) for c in columns]) for trig, outs in by_trigger.items()]


def _timeline_note(figures: Figures) -> str:
    if figures.workload_start is None:
        return "Time 0 is the history's first line (it records no workload start)."
    if figures.startup_s >= 0.05:
        return (
            f"Time 0 is the workload's start; the {figures.startup_s:.1f} s of start-up before it "
            "(starting the system, reading its baseline) are left out."
        )
    return "Time 0 is the workload's start."


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
    drawn: dict[str, int] = {}  # saga -> the card whose swimlane draws it
    for n, card in enumerate(cards):
        sid = card["saga"]
        card["swimlane"] = card["legend"] = ""
        card["drawn_in"] = None
        if sid is None:
            continue
        entries = figures.traces.get(sid, [])
        expected, wrong = expectations(card["example"], entries)
        if sid in drawn and not expected and not wrong:
            card["drawn_in"] = drawn[sid]  # the same drawing again would add nothing: point to it
            continue
        drawn.setdefault(sid, n)
        card["swimlane"] = svg = swimlane(entries, figures.faults, figures.origin, expected, wrong)
        if entries:
            card["legend"] = legend(svg)
    columns, rows = _trigger_table(figures.by_trigger)
    started = run.started_at or figures.start
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
            started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "—",
            duration=max(0.0, (run.finished_at or figures.end or 0) - (started or 0)),
            version=_version(),
            python=platform.python_version(),
            by_outcome=ordered(verdicts.stats.by_outcome),
            timeline_svg=timeline(figures),
            timeline_note=_timeline_note(figures),
            converge_svg=histogram(
                figures.converge_s,
                "seconds from a saga's first request to its outcome",
                dict(verdicts.stats.convergence_s),
            ),
            trigger_columns=columns,
            trigger_rows=rows,
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
