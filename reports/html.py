"""The self-contained HTML reliability report (``report.html``), from the run directory alone.

One file: CSS and SVG inline, no script, no network request. Every text that
comes from the SUT or the history is escaped by the template engine.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from saga_harness.checkers.verdict import RunInfo, Verdicts
from saga_harness.reports.inputs import contract_results
from saga_harness.reports.plots import histogram, swimlane, timeline
from saga_harness.reports.timeline import compute
from saga_harness.rundir import REPORT_FILE, read_load

TEMPLATES = Path(__file__).with_name("templates")
MAX_VIOLATIONS = 50  # shown in full; the rest are counted (verdicts.json has them all)
MAX_TRACED = 10  # violations drawn with their saga's swimlane
MAX_EVIDENCE = 20  # history lines quoted per violation
MAX_LINE = 2000


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


def render_report(run_dir: str | Path, verdicts: Verdicts, contracts: Mapping[str, Any] | None = None) -> str:
    """The HTML of ``run_dir``'s report: its ``verdicts``, its history's figures and its contract results."""
    run_dir = Path(run_dir)
    run = verdicts.run or RunInfo(run_id=run_dir.name)
    violations = verdicts.failures
    shown = violations[:MAX_VIOLATIONS]
    trace_ids = {v.saga_id for v in shown[:MAX_TRACED] if v.saga_id}
    figures = compute(run_dir, trace_ids)
    items = []
    for i, v in enumerate(shown):
        traced = v.saga_id is not None and i < MAX_TRACED
        lane = swimlane(figures.traces.get(v.saga_id, []), figures.faults, figures.start or 0) if traced else ""
        items.append({"v": v, "swimlane": lane, "lines": _lines(run_dir, list(v.evidence[:MAX_EVIDENCE]))})
    started = run.started_at or figures.start or 0
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            ok=verdicts.ok,
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
            violations=items,
            hidden=len(violations) - len(shown),
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
