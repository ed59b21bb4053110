"""The full calibration: every catalogue scenario clean on K seeds, every seeded bug through its runs.

Writes ``bench/results/calibration.json`` (the calibration's own summary, per-run
list included; run directories are in a temporary directory that is removed).
Target: every bug detected in every run meant to expose it, zero false positives.
``BENCH_CALIBRATION_SEEDS`` sets K (default 3). The scenarios that require PostgreSQL
run on ``BENCH_PG_URL`` when it answers, and are skipped (and listed so) otherwise.
It takes a while: 93 runs, about 30 minutes on two shared cores with K=3.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from saga_harness.calibration import JobProgress, calibrate, plan

RESULTS = Path(__file__).parent / "results"
SEEDS = int(os.environ.get("BENCH_CALIBRATION_SEEDS", "3"))
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_answers(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=2):
            return True
    except Exception:  # noqa: BLE001 - any failure means: no PostgreSQL here
        return False


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    the_plan = plan(seeds=SEEDS, database_url=PG_URL if _pg_answers(PG_URL) else None)
    with tempfile.TemporaryDirectory() as tmp:

        def finished(progress: JobProgress, record: dict) -> None:
            job = progress.job
            print(
                f"[{progress.index + 1}/{progress.total}] {job.target} {job.name} seed {job.seed}: "
                f"{record['verdict']} {record['failed_checkers']} {record['seconds']:.1f}s",
                flush=True,
            )

        result = calibrate(the_plan, Path(tmp), on_finish=finished)
    result["target"] = {"every_bug_detected_in_every_run": True, "false_positives": 0}
    (RESULTS / "calibration.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("clean", "seconds", "ok")}))
    for name, bug in result["bugs"].items():
        print(f"{name}: {bug['detected_in']}/{bug['runs']} flagged by {bug['checkers']}")


if __name__ == "__main__":
    main()
