"""Every report of a run, from its directory alone: ``junit.xml`` and ``report.html``.

Front ends call :func:`write_reports` once a run is judged (``verdicts.json``
written), or after a contracts driver wrote its section of ``contracts.json``.
The engine never calls it, and it never prints: what it wrote, and why the HTML
could not be drawn, comes back in :class:`ReportPaths`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from saga_harness.checkers.verdict import VERDICTS_FILE
from saga_harness.reports.html import render_report
from saga_harness.reports.inputs import read_stored
from saga_harness.reports.junit import junit_xml
from saga_harness.rundir import JUNIT_FILE, REPORT_FILE


@dataclass(frozen=True)
class ReportPaths:
    """What :func:`write_reports` wrote.

    ``html`` is None when no HTML report was drawn; ``html_error`` then says why
    (the verdicts and ``junit.xml`` are intact either way).
    """

    junit: Path
    html: Path | None = None
    html_error: str | None = None


def write_reports(run_dir: str | Path, source: str | Path | None = None) -> ReportPaths:
    """Write ``junit.xml`` and ``report.html`` into ``run_dir`` from ``verdicts.json``,
    ``contracts.json`` and the history (of ``source``, the run directory that holds it, when the run
    was judged again into another directory); return their paths.

    A run that checked contracts only (no ``verdicts.json``) gets ``junit.xml`` alone.
    Raises :class:`~saga_harness.errors.HarnessError` when ``run_dir`` holds neither
    verdicts nor contract results, or one of them is damaged.
    """
    run_dir = Path(run_dir)
    stored = read_stored(run_dir)
    verdicts, contracts = stored.verdicts, stored.contracts
    junit = run_dir / JUNIT_FILE
    junit.write_text(junit_xml(verdicts, contracts), encoding="utf-8")
    if verdicts is None:
        return ReportPaths(junit, None, f"no {VERDICTS_FILE}: the run checked contracts only ({JUNIT_FILE} has them)")
    try:
        html = render_report(run_dir, verdicts, contracts, source)
    except Exception as exc:  # noqa: BLE001 - a drawing bug must not cost the run its verdicts
        (run_dir / REPORT_FILE).unlink(missing_ok=True)  # an older report would tell a different story
        return ReportPaths(junit, None, f"{REPORT_FILE} could not be drawn: {type(exc).__name__}: {exc}")
    path = run_dir / REPORT_FILE
    path.write_text(html, encoding="utf-8")
    return ReportPaths(junit, path)
