"""The full calibration: the reference system and the three worked examples, clean and with every seeded bug,
then again under CPU contention.

- the reference system: every catalogue scenario clean on K seeds and each seeded bug through its runs
  (``BENCH_CALIBRATION_SEEDS``, default 3);
- the worked examples (minishop, hotelbus, tripbook, each described by its saga-harness.toml alone):
  each ``[calibration.runs]`` clean and each ``[[calibration.bugs]]`` through its runs on
  ``BENCH_EXAMPLE_SEEDS`` seeds (default 10);
- the contention phase: the first seed's runs of all four systems again, clean and with each bug, while
  ``BENCH_CONTENTION`` busy processes (default 2) are pinned to the cores.

Writes ``bench/results/calibration.json`` (the calibration's own summary, per system and per run; run
directories are in a temporary directory that is removed). Target: every bug detected in every run meant to
expose it; at least 100 clean runs with no false violation, at least 20 of them under contention
(inconclusive runs are counted apart). The scenarios that require PostgreSQL run on ``BENCH_PG_URL`` when it
answers, and are skipped (and listed so) otherwise. It takes a while: about 1.5 hours on two shared cores.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from saga_harness.calibration import (
    JobProgress,
    Plan,
    calibrate,
    described_plan,
    example_configs,
    merge,
    plan,
    with_contention,
)

RESULTS = Path(__file__).parent / "results"
SEEDS = int(os.environ.get("BENCH_CALIBRATION_SEEDS", "3"))
EXAMPLE_SEEDS = int(os.environ.get("BENCH_EXAMPLE_SEEDS", "10"))
CONTENTION = int(os.environ.get("BENCH_CONTENTION", "2"))
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TARGET = {
    "every_bug_detected_in_every_run": True,
    "false_positives": 0,
    "clean_runs_at_least": 100,
    "clean_runs_under_contention_at_least": 20,
}


def _pg_answers(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=2):
            return True
    except Exception:  # noqa: BLE001 - any failure means: no PostgreSQL here
        return False


def the_plan() -> Plan:
    """The reference system's plan, the examples' plans, then the contention phase (see the module's doc)."""
    reference = plan(seeds=SEEDS, database_url=PG_URL if _pg_answers(PG_URL) else None)
    examples = [described_plan(path, seeds=EXAMPLE_SEEDS) for path in example_configs()]
    full = merge(reference, *examples)
    return with_contention(full, busy=CONTENTION) if CONTENTION else full


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    planned = the_plan()
    with tempfile.TemporaryDirectory() as tmp:

        def finished(progress: JobProgress, record: dict) -> None:
            job = progress.job
            busy = f" busy {job.contention}" if job.contention else ""
            print(
                f"[{progress.index + 1}/{progress.total}] {job.sut} {job.target} {job.name} seed {job.seed}{busy}: "
                f"{record['verdict']} {record['failed_checkers']} {record['seconds']:.1f}s",
                flush=True,
            )

        result = calibrate(planned, Path(tmp), on_finish=finished)
    clean = result["clean"]
    result["target"] = TARGET
    result["target_met"] = (
        result["ok"]
        and clean["runs"] >= TARGET["clean_runs_at_least"]
        and clean["under_contention"]["runs"] >= TARGET["clean_runs_under_contention_at_least"]
    )
    (RESULTS / "calibration.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("clean", "seconds", "ok", "target_met")}))
    for sut, part in result["suts"].items():
        print(f"{sut}: {part['clean']}")
    for name, bug in result["bugs"].items():
        print(f"{name}: {bug['detected_in']}/{bug['runs']} flagged by {bug['checkers']}")


if __name__ == "__main__":
    main()
