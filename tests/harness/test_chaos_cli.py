"""`saga-harness chaos run`'s front end: faults the SUT cannot take are refused before anything
starts (exit 2, one paragraph naming the ability, the SUT and what would provide it); faults it can
take are applied, healed and recorded. On the fake SUT and on a copy of tripbook's description."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from saga_cli import saga_harness

ROOT = Path(__file__).resolve().parents[2]
TRIPBOOK = ROOT / "fixtures" / "tripbook" / "saga-harness.toml"

FAULTS = """
name: {name}
description: faults for the front end's tests
workload: {{sagas: 40, concurrency: 10, duplicates: 0.1}}
faults:
{faults}
deadline: 30s
"""


def scenario(tmp_path: Path, *faults: str, name: str = "test-faults") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(FAULTS.format(name=name, faults="\n".join(f"  - {f}" for f in faults)))
    return path


def refused(proc, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = proc.stderr.strip()
    assert message.startswith("error: ") and "Traceback" not in proc.stderr
    assert "\n" not in message, "one paragraph"
    for needle in needles:
        assert needle in message, (needle, message)
    assert "Nothing was started" in message


def tripbook_with_external_suppliers(tmp_path: Path) -> Path:
    text = TRIPBOOK.read_text()
    started = '[services.suppliers]\ncommand = ["${python}", "-m", "tripbook", "suppliers"]'
    assert started in text
    text = text.replace(started, '[services.suppliers]\nexternal = true\nurl = "http://127.0.0.1:9"')
    # Run from the copy's folder as from tripbook's: its relative paths stay right.
    config = tmp_path / "saga-harness.toml"
    config.write_text(text.replace('cwd = ".."', f'cwd = "{TRIPBOOK.parent.parent}"'))
    return config


def test_a_kill_fault_on_an_external_service_is_refused_before_the_run_starts(tmp_path):
    config = tripbook_with_external_suppliers(tmp_path)
    kill = scenario(tmp_path, "{kind: kill, process: suppliers, at: 0s, duration: 1s}")
    proc = saga_harness("chaos", "run", str(kill), "--config", str(config), "--out", str(tmp_path / "r"), cwd=tmp_path)
    refused(proc, "needs process control", "suppliers", "tripbook does not provide", "a `command` under [services.")
    assert "the processes the harness owns are notify, trips" in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("fault", "env", "needles"),
    [
        (
            "{kind: kill, process: gateway, at: 0s, duration: 1s}",
            "FAKE_EXTERNAL=gateway",
            ["process control", "gateway"],
        ),
        ("{kind: latency, link: client->orchestrator, at: 0s, duration: 1s}", "FAKE_STEP_S=0", ["link routing"]),
    ],
)
def test_faults_the_fake_cannot_take_are_refused(tmp_path, fault, env, needles):
    path = scenario(tmp_path, fault)
    proc = saga_harness("chaos", "run", str(path), "--sut", "fake", "--env", env, cwd=tmp_path)
    refused(proc, *needles, "fake does not provide")
    assert not (tmp_path / "runs").exists()


def test_delivery_faults_on_a_system_without_delivery_hooks_are_refused(tmp_path):
    config = tripbook_with_external_suppliers(tmp_path)
    path = scenario(tmp_path, "{kind: duplicate, target: trips, at: 0s, duration: 1s}")
    proc = saga_harness("chaos", "run", str(path), "--config", str(config), cwd=tmp_path)
    refused(proc, "needs delivery hooks", "trips", "tripbook does not provide", "DeliveryHooks")


PROCESS_AND_DELIVERY = (
    "{kind: kill, process: charge, at: 0.05s, duration: 0.4s}",
    "{kind: pause, process: orchestrator, at: 0.2s, duration: 0.3s}",
    "{kind: duplicate, target: queue, at: 0s, duration: 1s}",
)


def test_process_and_delivery_faults_are_applied_healed_and_recorded(tmp_path):
    path = scenario(tmp_path, *PROCESS_AND_DELIVERY)
    out = tmp_path / "r"
    proc = saga_harness("chaos", "run", str(path), "--sut", "fake", "--seed", "1", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert verdicts["ok"] and verdicts["scenario"] == "test-faults" and len(verdicts["faults"]) == 3
    faults = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines() if '"type":"fault"' in line]
    assert sorted((f["phase"], f["fault"]["kind"]) for f in faults) == sorted(
        [(p, k) for k in ("kill", "pause", "duplicate") for p in ("start", "stop")]
    )
    assert "faults 3/3 done, active: none" in proc.stdout  # the last progress line
    assert "scenario test-faults finished in" in proc.stdout


def test_a_bug_the_faults_expose_is_caught(tmp_path):
    path = scenario(tmp_path, *PROCESS_AND_DELIVERY)
    out = tmp_path / "r"
    args = ("--sut", "fake", "--seed", "1", "--bugs", "fake.no_command_dedupe", "--out", str(out))
    proc = saga_harness("chaos", "run", str(path), *args, cwd=tmp_path, columns=80)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = {c["name"] for c in json.loads((out / "verdicts.json").read_text())["checks"] if not c["ok"]}
    assert "idempotency" in failed
    assert f"reproduce with: saga-harness chaos run {path} {' '.join(args)}" in proc.stdout.splitlines()
