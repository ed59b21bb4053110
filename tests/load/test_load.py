"""Locust load (distributed: a master and two workers) judged by the same checkers."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "saga-harness"
# Timed runs share one xdist worker (see the Makefile): their fault windows and load never overlap.
pytestmark = pytest.mark.xdist_group("timed")


def load_run(tmp_path, *args):
    out = tmp_path / "load"
    proc = subprocess.run(
        [str(BIN), "load", "run", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    verdicts = json.loads((out / "verdicts.json").read_text()) if (out / "verdicts.json").exists() else None
    return proc, verdicts, out


def test_clean_load_with_two_workers(tmp_path):
    proc, verdicts, out = load_run(
        tmp_path, "--users", "20", "--spawn-rate", "10", "--duration", "8s", "--workers", "2", "--duplicates", "0.2"
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert verdicts["ok"]
    summary = json.loads((out / "load.json").read_text())
    assert summary["locust"]["total"]["requests"] > 50 and summary["locust"]["total"]["failures"] == 0
    assert summary["sagas_started"] == verdicts["stats"]["sagas_started"] > 20
    assert summary["convergence_after_load_s"] is not None
    rows = list(csv.DictReader((out / "locust_stats.csv").open()))
    assert any(r["Name"] == "start saga" for r in rows)
    assert (out / "locust.html").exists()
    shards = list((out / "history.d").glob("locust-*.jsonl"))
    assert len(shards) == 2, "one history shard per worker process"
    # every saga the load started is in the history, and resubmissions with the same key happened
    idem = next(c for c in verdicts["checks"] if c["name"] == "idempotency")
    assert idem["stats"]["resent_keys"] > 0


def test_unchecked_reservation_is_caught_under_load(tmp_path):
    proc, verdicts, _out = load_run(
        tmp_path,
        "--users",
        "20",
        "--spawn-rate",
        "20",
        "--duration",
        "6s",
        "--mix",
        "ok=0.3,scarce=0.7",
        "--bugs",
        "inventory.unchecked_reservation",
    )
    assert proc.returncode == 1, proc.stdout[-4000:]
    failed = {c["name"] for c in verdicts["checks"] if not c["ok"]}
    assert "conservation" in failed


def test_double_charge_is_caught_under_load_with_lost_acknowledgements(tmp_path):
    # Payment commits each capture but its answer is lost: the task queue retries it.
    proc, verdicts, _out = load_run(
        tmp_path,
        "--users",
        "10",
        "--spawn-rate",
        "10",
        "--duration",
        "6s",
        "--scenario",
        "lost-acknowledgement",
        "--bugs",
        "payment.double_charge_on_redelivery",
    )
    assert proc.returncode == 1, proc.stdout[-4000:]
    failed = {c["name"] for c in verdicts["checks"] if not c["ok"]}
    assert {"idempotency", "conservation"} & failed


def test_locustfile_never_imported_by_the_harness():
    code = (
        "import saga_harness.cli, saga_harness.load.runner, saga_harness.chaos.run, sys; "
        "print('locust' in sys.modules, 'gevent' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"
