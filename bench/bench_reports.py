"""Writing the reports (``report.html`` and ``junit.xml``) of a 10,000-saga run: seconds and size.

The run is judged by the invariant checkers (as in bench_checkers: the generated
events carry only the fields those read, so the contracts checker would find them
all invalid). Writes ``bench/results/reports.json``. Targets: under 5 s, under 5 MB.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from saga_harness.checkers import DEFAULT, NEEDS_EVENTS, RunInfo, run_checks
from saga_harness.history import read_history
from saga_harness.models import reference_model
from saga_harness.reports import write_reports

from bench.bench_checkers import generate

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        sagas = generate(run_dir / "history.jsonl", 112_000)
        names = [n for n in DEFAULT if n not in NEEDS_EVENTS]
        verdicts = run_checks(read_history(run_dir), reference_model(), names)
        verdicts.with_run(RunInfo("bench", sut="reference", seed=1)).write(run_dir)
        t0 = time.perf_counter()
        paths = write_reports(run_dir)
        seconds = time.perf_counter() - t0
        if paths.html is None:
            raise SystemExit(f"bench_reports: {paths.html_error}")
        size_mb = paths.html.stat().st_size / 1e6
    figures = {
        "sagas": sagas,
        "seconds": round(seconds, 2),
        "size_mb": round(size_mb, 2),
        "target": {"seconds": 5, "size_mb": 5},
        "meets_target": seconds < 5 and size_mb < 5,
    }
    (RESULTS / "reports.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
