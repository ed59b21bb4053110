"""Exploration: the calls learned from a history, their patterns, and (on the reference system) one
fault at one call finding the double charge that no scenario was written for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from saga_harness.chaos.explore import learn, path_pattern

BIN = Path(sys.executable).parent / "saga-harness"


@pytest.mark.parametrize(
    "path,pattern",
    [
        ("/commands/capture", "/commands/capture"),
        ("/commands/capture/batch", "/commands/capture/batch"),
        ("/sagas/3f2a9c0e1b7d4e2f/status", "/sagas/*/status"),
        ("/sagas/123", "/sagas/*"),
        ("/bookings/bk_42/cancel", "/bookings/*/cancel"),
        ("/orders/7c9e6679-7425-40de-944b-e07fc1f90ae7", "/orders/*"),
        ("/events", "/events"),
    ],
)
def test_ids_in_paths_become_wildcards(path, pattern):
    assert path_pattern(path) == pattern


def call(link, method, path, at=0.0):
    return {"type": "call", "link": link, "method": method, "path": path, "mono_request": at}


def test_calls_are_learned_in_the_order_first_seen_with_how_often_a_saga_makes_them():
    lines = [  # as a run writes them: link by link at the end, each with the proxy's clock
        {"type": "meta"},
        call("client->orchestrator", "GET", "/sagas/aaaa1111bbbb2222", at=2.0),
        call("client->orchestrator", "GET", "/sagas/cccc3333dddd4444", at=5.0),
        call("client->orchestrator", "GET", "/sagas/cccc3333dddd4444", at=6.0),
        call("taskqueue->payment", "POST", "/commands/authorize", at=1.0),
        call("taskqueue->payment", "POST", "/commands/capture", at=3.0),
        call("taskqueue->payment", "POST", "/commands/authorize", at=4.0),
    ]
    calls = learn(lines, sagas=2)
    assert [(c.link, c.name, c.seen, c.per_saga) for c in calls] == [
        ("taskqueue->payment", "POST /commands/authorize", 2, 1.0),
        ("client->orchestrator", "GET /sagas/*", 3, 1.5),
        ("taskqueue->payment", "POST /commands/capture", 1, 0.5),
    ]


def explore(out: Path, *args: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(
        [str(BIN), "explore", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )
    data = json.loads((out / "explore.json").read_text()) if (out / "explore.json").exists() else {}
    return proc, data


def test_explore_finds_the_double_charge_on_a_lost_capture_answer_with_no_scenario_written(tmp_path):
    # The payment link's calls, learned from the clean run: authorize, capture, void — one at a time or
    # batched, as the task queue happened to push them.
    proc, result = explore(
        tmp_path / "explore",
        *("--links", "taskqueue->payment", "--faults", "lose_answer", "--max-runs", "4", "--sagas", "4"),
        *("--bugs", "payment.double_charge_on_redelivery"),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert result["baseline"]["verdict"] == "ok"
    assert all(c["link"] == "taskqueue->payment" and c["fault"] == "lose_answer" for c in result["cells"])
    caught = [c for c in result["cells"] if c["verdict"] == "violated"]
    assert caught and all("capture" in c["call"] and c["hit"] for c in caught), result["cells"]
    assert any(k.startswith("idempotency") for c in caught for k in c["findings"])
    assert (Path(caught[0]["run_dir"]) / "counterexample.json").exists()
    assert (tmp_path / "explore" / "explore.html").exists()
    assert "lose_answer" in proc.stdout and "VIOLATED" in proc.stdout


@pytest.mark.slow
def test_explore_runs_clean_on_the_reference_system_without_bugs(tmp_path):
    proc, result = explore(tmp_path / "explore", "--sagas", "4", timeout=3600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["violated"] == 0 and result["runs"] > 10


def test_only_the_calls_made_while_the_sagas_ran_are_learned():
    lines = [
        call("client->gateway", "POST", "/payment/add_funds/u1/100", at=1.0),  # the harness's set-up
        {"type": "phase", "name": "workload-start", "mono": 2.0},
        call("client->gateway", "POST", "/orders/checkout/3f2a9c0e", at=3.0),
        {"type": "phase", "name": "converged", "mono": 4.0},
        call("gateway->payment", "GET", "/find_user/u1", at=5.0),  # the final snapshot read
    ]
    assert [c.name for c in learn(lines, sagas=1)] == ["POST /orders/checkout/*"]
