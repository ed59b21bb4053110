"""HTTP faults on the reference system, as a user runs them: a scenario keyed on calls (not the clock),
its sometimes-assertion, the calls recorded in the history, and a failing run's counterexample replayed.
(The same scenario runs clean in every quick calibration: tests/chaos/test_calibrate.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "saga-harness"
BUG = "payment.double_charge_on_redelivery"


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"}
    )


def lines(run_dir: Path, kind: str) -> list[dict]:
    out = []
    for path in [run_dir / "history.jsonl", *sorted((run_dir / "history.d").glob("*.jsonl"))]:
        if path.exists():
            out += [x for x in map(json.loads, path.read_text().splitlines()) if x["type"] == kind]
    return out


def test_a_lost_answer_exposes_the_double_charge_and_its_counterexample_replays(tmp_path):
    first = tmp_path / "first"
    proc = cli(
        "chaos", "run", "lost-capture-answer", "--sagas", "12", "--seed", "4", "--bugs", BUG, "--out", str(first)
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    verdicts = json.loads((first / "verdicts.json").read_text())
    failed = {c["name"] for c in verdicts["checks"] if c["status"] == "violated"}
    assert "idempotency" in failed, failed
    cx = json.loads((first / "counterexample.json").read_text())
    assert cx["driver"] == "chaos" and cx["seed"] == 4 and cx["bugs"] == BUG
    assert cx["scenario"]["name"] == "lost-capture-answer" and cx["workload"]["sagas"] == 12
    assert [f["kind"] for f in cx["faults"]] == ["lose_answer"] and cx["faults"][0]["first"] == 2
    assert any(k.startswith("idempotency") for k in cx["findings"])
    # keyed on the call: the first two capture requests lost their answer, whatever the timing
    calls = lines(first, "call")
    lost = [c for c in calls if c["action"] == "lose_answer"]
    assert len(lost) == 2 and all(c["path"].startswith("/commands/capture") for c in lost), lost
    assert all(c["status"] is None and c["method"] == "POST" for c in lost)
    assert {c["link"] for c in calls} == {"taskqueue->payment"}
    sometimes = next(c for c in verdicts["checks"] if c["name"] == "sometimes")
    assert sometimes["status"] == "ok" and sometimes["stats"] == {"asked": 1, "met": 1}

    again = tmp_path / "again"
    proc = cli("replay", str(first / "counterexample.json"), "--out", str(again))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    replayed = json.loads((again / "replay.json").read_text())
    assert replayed["reproduced"], replayed
    assert "replay: reproduced" in proc.stdout


def test_replay_refuses_what_is_not_a_counterexample(tmp_path):
    bad = tmp_path / "counterexample.json"
    bad.write_text('{"hello": 1}')
    proc = cli("replay", str(bad))
    assert proc.returncode == 2 and "not a counterexample" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("replay", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "no such counterexample" in proc.stderr


@pytest.mark.slow
def test_a_failing_mixed_random_run_shrinks_to_at_most_two_faults_and_the_minimal_yaml_fails_again(tmp_path):
    from saga_harness.chaos.scenario import load_scenario

    scenario = Path(__file__).parent / "scenarios" / "mixed-random-http.yaml"
    out = tmp_path / "mixed"
    proc = cli("chaos", "run", str(scenario), "--seed", "1", "--bugs", BUG, "--shrink", "--out", str(out), timeout=1800)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    shrunk, _ = load_scenario(out / "shrunk.yaml")
    assert shrunk.random is None and 1 <= len(shrunk.faults) <= 2, shrunk.faults
    again = tmp_path / "again"
    proc = cli("chaos", "run", str(out / "shrunk.yaml"), "--seed", "1", "--bugs", BUG, "--out", str(again))
    assert proc.returncode == 1, proc.stdout + proc.stderr
