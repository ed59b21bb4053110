"""Locust load (distributed: a master and two workers) judged by the same checkers.

The load driver's own behaviour (Locust's processes, one history shard per worker, load.json,
Locust's CSV and HTML, the verdicts) on the fake SUT; the reference system under load with lost
acknowledgements on real processes. (The reference system's race for scarce stock under load is
in ``calibrate --quick``, the clean reference system under distributed load in ``make demo``.)
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "saga-harness"


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


def test_load_with_two_workers_lands_in_the_history_and_is_judged(tmp_path):
    proc, verdicts, out = load_run(
        tmp_path, "--sut", "fake", "--users", "10", "--spawn-rate", "10", "--duration", "4s", "--workers", "2",
        "--duplicates", "0.3",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert verdicts["ok"] and verdicts["sut"] == "fake"
    summary = json.loads((out / "load.json").read_text())
    assert summary["locust"]["total"]["requests"] > 20 and summary["locust"]["total"]["failures"] == 0
    assert summary["sagas_started"] == verdicts["stats"]["sagas_started"] > 10
    assert summary["convergence_after_load_s"] is not None
    rows = list(csv.DictReader((out / "locust_stats.csv").open()))
    assert any(r["Name"] == "start saga" for r in rows) and any(r["Name"] == "saga status" for r in rows)
    assert (out / "locust.html").exists()
    shards = list((out / "history.d").glob("locust-*.jsonl"))
    assert len(shards) == 2, "one history shard per worker process"
    # every saga the load started is in the history, and resubmissions with the same key happened
    idem = next(c for c in verdicts["checks"] if c["name"] == "idempotency")
    assert idem["stats"]["resent_keys"] > 0
    assert "load run finished in" in proc.stdout and "[" in proc.stdout.split("load run finished")[0]


@pytest.mark.xdist_group("timed")  # with the other chaos and load runs, on one worker (see the Makefile)
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
        "import saga_harness.cli, saga_harness.load.runner, saga_harness.chaos.run, saga_harness.lifecycle, sys; "
        "print('locust' in sys.modules, 'gevent' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_load_runs_a_multi_request_start_with_pools_and_polls_status_where_the_config_says(tmp_path):
    # minishop under Locust: the same start plan as the runner (create order, add item, checkout),
    # pool members set up by the harness before Locust starts, status read at [saga.status].service.
    config = Path(__file__).resolve().parents[1] / "harness" / "systems" / "minishop.toml"
    proc, verdicts, out = load_run(
        tmp_path, "--config", str(config), "--users", "4", "--spawn-rate", "4", "--duration", "4s",
        "--mix", "ok=1,poor=1", "--duplicates", "0.3",
    )  # fmt: skip
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rows = {r["Name"]: r for r in csv.DictReader((out / "locust_stats.csv").open())}
    assert {"start saga: create_order", "start saga: add_item", "start saga: checkout", "saga status"} <= set(rows)
    assert int(rows["saga status"]["Request Count"]) > 0 and int(rows["saga status"]["Failure Count"]) == 0
    assert int(rows["start saga: create_order"]["Failure Count"]) == 0
    shard = next((out / "history.d").glob("locust-*.jsonl"))
    lines = [json.loads(x) for x in shard.read_text().splitlines()]
    assert any(x["type"] == "ok" and x.get("content_type", "").startswith("text/") for x in lines)
    assert verdicts["stats"]["starts"]["started"] == verdicts["stats"]["starts"]["sagas"] > 5
