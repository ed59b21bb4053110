"""Building the HTML report for a 10,000-saga run: seconds and file size.

Writes ``bench/results/reports.json``. Targets: under 5 s, under 5 MB.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from bench.bench_checkers import generate

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    from saga_harness.models import reference_model
    from saga_harness.reports.html import build_report
    from saga_harness.run import judge

    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        sagas = generate(run_dir / "history.jsonl", 112_000)
        judge(run_dir, reference_model(), {"run_id": "bench", "seed": 1, "sut": "reference"})
        t0 = time.perf_counter()
        path = build_report(run_dir)
        seconds = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
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
