"""The self-contained HTML reliability report (``report.html``), from the run directory alone.

One file: CSS and SVG inline, no script, no network request. Every text that
comes from the SUT or the history is escaped by the template engine.
"""

from __future__ import annotations

import json
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from saga_harness.errors import HarnessError
from saga_harness.reports.plots import histogram, swimlane, timeline
from saga_harness.reports.timeline import compute

TEMPLATES = Path(__file__).with_name("templates")
MAX_VIOLATIONS = 50  # shown in full; the rest are counted (verdicts.json has them all)
MAX_LINE = 2000


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))


def _lines(run_dir: Path, refs: list[str]) -> list[tuple[str, str]]:
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


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """(Re)build ``report.html`` for a run directory; return its path."""
    run_dir = Path(run_dir)
    verdicts_path = run_dir / "verdicts.json"
    if not verdicts_path.exists():
        raise HarnessError(f"{run_dir}: no verdicts.json; is this a saga-harness run directory?")
    verdicts = json.loads(verdicts_path.read_text())
    checks = verdicts.get("checks", [])
    all_violations = [v for c in checks for v in c.get("violations", [])]
    shown = all_violations[:MAX_VIOLATIONS]
    trace_ids = {str(v["saga_id"]) for v in shown[:10] if v.get("saga_id")}
    figures = compute(run_dir, trace_ids)
    items = []
    for i, v in enumerate(shown):
        sid = str(v.get("saga_id")) if v.get("saga_id") else None
        lane = swimlane(figures.traces.get(sid, []), figures.faults, figures.start or 0) if (sid and i < 10) else ""
        items.append({"v": v, "swimlane": lane, "lines": _lines(run_dir, [str(r) for r in v.get("evidence", [])][:20])})
    load = json.loads((run_dir / "load.json").read_text()) if (run_dir / "load.json").exists() else None
    from saga_harness.contracts.results import read_contracts

    contracts = read_contracts(run_dir) or None
    try:
        pkg_version = version("saga-harness")
    except PackageNotFoundError:  # pragma: no cover
        pkg_version = "dev"
    started = verdicts.get("started_at") or figures.start or 0
    html = (
        _env()
        .get_template("report.html.j2")
        .render(
            v=verdicts,
            checks=checks,
            stats=verdicts.get("stats", {}),
            conv=verdicts.get("stats", {}).get("convergence_s", {}) or {},
            started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            duration=(verdicts.get("finished_at") or figures.end or 0) - started,
            version=pkg_version,
            python=platform.python_version(),
            timeline_svg=timeline(figures),
            converge_svg=histogram(figures.converge_s, "time to converge"),
            by_trigger=figures.by_trigger,
            violations=items,
            hidden=len(all_violations) - len(shown),
            load=load,
            contracts=contracts,
        )
    )
    path = Path(out) if out else run_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
