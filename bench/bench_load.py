"""The reference system under Locust (SQLite and PostgreSQL), and the generator's ceiling.

Writes ``bench/results/load.json``: sustained completed sagas/s under load,
start-to-outcome p50/p99, time to converge after load stops, and Locust's own
requests/s per worker process against a trivial loopback endpoint — so users
know when they need more workers. Target: the ceiling is at least 5× the
requests/s the reference benchmark needs.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from saga_harness.load.runner import LoadSpec, execute_load
from saga_harness.ports import free_port

RESULTS = Path(__file__).parent / "results"
DURATION = int(os.environ.get("BENCH_LOAD_DURATION_S", "30"))
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

PING_SERVER = """
import sys
from aiohttp import web
app = web.Application()
app.router.add_get('/ping', lambda r: web.Response(text='pong'))
web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=None, access_log=None)
"""


def ceiling(seconds: int = 10) -> float:
    """Requests/s one Locust process sends to a trivial endpoint on loopback."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", PING_SERVER, str(port)], start_new_session=True)
    try:
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "locust",
                    "-f",
                    str(Path(__file__).with_name("locust_ceiling.py")),
                    "--headless",
                    "-u",
                    "50",
                    "-r",
                    "50",
                    "-t",
                    f"{seconds}s",
                    "--host",
                    f"http://127.0.0.1:{port}",
                    "--csv",
                    f"{tmp}/c",
                    "--only-summary",
                    "--loglevel",
                    "ERROR",
                    "--exit-code-on-error",
                    "0",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            rows = {r["Name"]: r for r in csv.DictReader(open(f"{tmp}/c_stats.csv"))}
            return round(float(rows["Aggregated"]["Requests/s"]), 1)
    finally:
        server.terminate()
        server.wait(10)


def reference(database: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        spec = LoadSpec(
            users=40,
            spawn_rate=40,
            duration_s=DURATION,
            workers=1,
            duplicates=0.05,
            mix="ok=1",
            out=Path(tmp) / "run",
            database_url=PG_URL if database == "postgres" else None,
        )
        result = execute_load(spec)
        summary = json.loads((result.run_dir / "load.json").read_text())
    completed = summary["by_outcome"].get("completed", 0)
    total = summary["locust"].get("total", {})
    return {
        "database": database,
        "sagas_per_s": round(completed / DURATION, 1),
        "sagas": completed,
        "p50_s": summary["convergence_s"].get("p50"),
        "p99_s": summary["convergence_s"].get("p99"),
        "converge_after_load_s": summary["convergence_after_load_s"],
        "requests_per_s": total.get("requests_per_s"),
        "failures": total.get("failures"),
        "ok": result.verdicts.ok,
    }


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = [reference("sqlite"), reference("postgres")]
    per_worker = ceiling()
    needed = max(r["requests_per_s"] or 0 for r in runs)
    figures = {
        "reference": runs,
        "generator_ceiling_rps_per_worker": per_worker,
        "reference_needs_rps": needed,
        "ceiling_ratio": round(per_worker / needed, 1) if needed else None,
        "target": {"ceiling_ratio": 5},
        "duration_s": DURATION,
        "run": uuid.uuid4().hex[:8],
    }
    (RESULTS / "load.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
