"""`saga-harness run` and `check` end to end, on real processes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from saga_cli import saga_harness

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "saga_harness.cli.__main__"]
REFERENCE_TOML = ROOT / "fixtures" / "sagashop" / "saga-harness.toml"


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    proc = saga_harness(
        "run", "--sagas", "200", "--concurrency", "20", "--seed", "1", "--out", str(tmp / "ref"), cwd=tmp
    )
    return proc, tmp / "ref"


def test_clean_reference_run_holds_every_invariant(clean_run):
    proc, run_dir = clean_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    verdicts = json.loads((run_dir / "verdicts.json").read_text())
    assert verdicts["ok"] is True and verdicts["seed"] == 1 and verdicts["sut"] == "reference"
    assert {c["name"] for c in verdicts["checks"]} == {
        "idempotency",
        "compensation",
        "convergence",
        "state_machine",
        "outcome",
        "conservation",
        "contracts",
    }
    assert verdicts["stats"]["sagas_started"] == 200
    assert set(verdicts["stats"]["convergence_s"]) == {"p50", "p99", "max"}
    assert (run_dir / "history.jsonl").stat().st_size > 0
    assert "<testsuite" in (run_dir / "junit.xml").read_text()
    assert "verdicts" in proc.stdout and str(run_dir) in proc.stdout.replace("\n", "")


def test_declarative_description_of_the_reference_gives_the_same_verdicts(clean_run, tmp_path):
    _proc, ref_dir = clean_run
    proc = saga_harness(
        "run",
        "--sagas",
        "200",
        "--concurrency",
        "20",
        "--seed",
        "1",
        "--config",
        str(REFERENCE_TOML),
        "--out",
        str(tmp_path / "decl"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a = json.loads((ref_dir / "verdicts.json").read_text())
    b = json.loads((tmp_path / "decl" / "verdicts.json").read_text())
    assert [(c["name"], c["ok"]) for c in a["checks"]] == [(c["name"], c["ok"]) for c in b["checks"]]
    by_trigger = {c["name"]: c["stats"] for c in a["checks"]}["outcome"]["by_trigger"]
    assert by_trigger == {c["name"]: c["stats"] for c in b["checks"]}["outcome"]["by_trigger"]


def test_check_rejudges_a_recorded_history_offline(clean_run, tmp_path):
    _proc, run_dir = clean_run
    proc = saga_harness("check", str(run_dir / "history.jsonl"), "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = json.loads((tmp_path / "verdicts.json").read_text())
    first = json.loads((run_dir / "verdicts.json").read_text())
    assert again["checks"] == first["checks"]


@pytest.mark.parametrize(
    "bug,checker",
    [
        ("orchestrator.skip_compensation", "compensation"),
        ("orchestrator.compensate_in_forward_order", "compensation"),
        ("inventory.unchecked_reservation", "conservation"),
    ],
)
def test_a_plain_run_catches_the_bug(tmp_path, bug, checker):
    # A race for scarce stock needs concurrent sagas on a scarce SKU: give the run more of them.
    mix = ["--mix", "ok=0.5,capture_fail=0.2,scarce=0.3"] if "reservation" in bug else []
    proc = saga_harness(
        "run",
        *mix,
        "--sagas",
        "200",
        "--concurrency",
        "20",
        "--seed",
        "1",
        "--bugs",
        bug,
        "--out",
        str(tmp_path / "r"),
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    verdicts = json.loads((tmp_path / "r" / "verdicts.json").read_text())
    failed = {c["name"]: c["violations"] for c in verdicts["checks"] if not c["ok"]}
    assert checker in failed
    assert all(v["evidence"] for v in failed[checker])
    assert f"--bugs {bug}" in proc.stdout.replace("\n", "")  # the line that reproduces it


def test_tripbook_runs_through_its_config_alone(tmp_path):
    proc = saga_harness(
        "run",
        "--config",
        str(ROOT / "fixtures" / "tripbook" / "saga-harness.toml"),
        "--sagas",
        "40",
        "--concurrency",
        "10",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "t"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    verdicts = json.loads((tmp_path / "t" / "verdicts.json").read_text())
    assert verdicts["sut"] == "tripbook" and verdicts["stats"]["sagas_started"] == 40


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "--mix", "ok=1,nope=2", "--sagas", "1"], "nope"),
        (["run", "--deadline", "soon"], "--deadline"),
        (["run", "--bugs", "payment.double_charge_on_redelivry"], "Did you mean"),
        (["check", "/nonexistent/history.jsonl"], "no such file"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(tmp_path, args, needle):
    proc = saga_harness(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_broken_config_names_the_file_and_key(tmp_path):
    bad = tmp_path / "saga-harness.toml"
    bad.write_text(
        REFERENCE_TOML.read_text().replace(
            'idempotency_header = "Idempotency-Key"', 'idempotency_heder = "Idempotency-Key"'
        )
    )
    proc = saga_harness("run", "--sagas", "1", cwd=tmp_path)
    assert proc.returncode == 2
    assert "saga-harness.toml" in proc.stderr and "idempotency_heder" in proc.stderr
    assert "did you mean 'idempotency_header'" in proc.stderr
