"""Writers over a stored run directory: ``report.html``, ``junit.xml``, the run index and the
calibration report.

They read a run directory (``verdicts.json``, ``contracts.json``, the history)
and write files beside it; they never print, and the engine never calls them —
front ends do, once a run is judged::

    from saga_harness.reports import write_reports

    paths = write_reports("runs/20260101-120000-reference")
    print(paths.html or paths.html_error, paths.junit)
"""

from saga_harness.reports.calibration import build_calibration_report
from saga_harness.reports.explore import build_explore_report
from saga_harness.reports.html import build_report
from saga_harness.reports.index import build_run_index
from saga_harness.reports.junit import write_junit
from saga_harness.reports.writer import ReportPaths, write_reports

__all__ = [
    "ReportPaths",
    "build_calibration_report",
    "build_explore_report",
    "build_report",
    "build_run_index",
    "write_junit",
    "write_reports",
]
