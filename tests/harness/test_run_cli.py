"""`saga-harness run` and `check` end to end: the reference system and tripbook on real processes;
the front end's own behaviour (exit statuses, progress in a log, the reproduce line, re-judging)
on the fake SUT, in seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import pytest
from saga_cli import BIN, saga_harness

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_TOML = ROOT / "fixtures" / "sagashop" / "saga-harness.toml"


def test_the_reference_system_holds_every_invariant_its_description_agrees_and_check_rejudges_it(tmp_path):
    # One test for the three, so the reference run is made once whatever worker runs them.
    proc = saga_harness(
        "run", "--sagas", "100", "--concurrency", "20", "--seed", "1", "--out", str(tmp_path / "ref"), cwd=tmp_path
    )
    run_dir = tmp_path / "ref"
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
    assert verdicts["stats"]["sagas_started"] == 100
    assert set(verdicts["stats"]["convergence_s"]) == {"p50", "p99", "max"}
    assert (run_dir / "history.jsonl").stat().st_size > 0
    assert "<testsuite" in (run_dir / "junit.xml").read_text()
    assert "verdicts" in proc.stdout and f"run directory: {run_dir}" in proc.stdout.splitlines()

    # The reference system described declaratively reaches the same verdicts.
    proc = saga_harness(
        "run", "--sagas", "100", "--concurrency", "20", "--seed", "1", "--config", str(REFERENCE_TOML),
        "--out", str(tmp_path / "decl"), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    declared = json.loads((tmp_path / "decl" / "verdicts.json").read_text())
    assert [(c["name"], c["ok"]) for c in verdicts["checks"]] == [(c["name"], c["ok"]) for c in declared["checks"]]
    by_trigger = {c["name"]: c["stats"] for c in verdicts["checks"]}["outcome"]["by_trigger"]
    assert by_trigger == {c["name"]: c["stats"] for c in declared["checks"]}["outcome"]["by_trigger"]

    # `check` judges the recorded history again, offline, by the reference system's model.
    proc = saga_harness("check", str(run_dir / "history.jsonl"), "--out", str(tmp_path / "again"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "again" / "verdicts.json").read_text())["checks"] == verdicts["checks"]


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
        (["run", "--sut", "fak"], "Did you mean 'fake'"),
        (["run", "--sut", "fake", "--config", "x.toml"], "give one of them"),
        (["run", "--sut", "fake", "--bugs", "fake.skip_compensatoin"], "Did you mean 'fake.skip_compensation'"),
        (["run", "--sut", "fake", "--env", "FAKE_STEP=1"], "Did you mean FAKE_STEPS"),
        (["run", "--sut", "fake", "--env", "nonsense"], "KEY=VALUE"),
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


# -- the front end, on the fake SUT ----------------------------------------------------------


def fake_run(tmp_path: Path, *args: str, columns: int = 200) -> tuple[subprocess.CompletedProcess, dict]:
    proc = saga_harness("run", "--sut", "fake", "--out", str(tmp_path / "r"), *args, cwd=tmp_path, columns=columns)
    verdicts_file = tmp_path / "r" / "verdicts.json"
    return proc, json.loads(verdicts_file.read_text()) if verdicts_file.exists() else {}


def test_a_violation_exits_1_and_prints_the_reproduce_command_on_one_line(tmp_path):
    bug = "fake.double_effect_on_resend"
    proc, verdicts = fake_run(
        tmp_path, "--sagas", "40", "--duplicates", "0.3", "--seed", "2", "--bugs", bug, columns=80
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = {c["name"]: c["violations"] for c in verdicts["checks"] if not c["ok"]}
    assert set(failed) == {"idempotency"} and all(v["evidence"] for v in failed["idempotency"])
    lines = proc.stdout.splitlines()
    reproduce = [line for line in lines if line.startswith("reproduce with: ")]
    assert reproduce == [f"reproduce with: saga-harness run --sut fake --out {tmp_path / 'r'} --sagas 40 "
                         f"--duplicates 0.3 --seed 2 --bugs {bug}"]  # fmt: skip
    assert f"run directory: {tmp_path / 'r'}" in lines and f"report: {tmp_path / 'r' / 'report.html'}" in lines
    assert "<testsuite" in (tmp_path / "r" / "junit.xml").read_text()


def test_a_clean_run_exits_0(tmp_path):
    proc, verdicts = fake_run(tmp_path, "--sagas", "30", "--duplicates", "0.2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert verdicts["ok"] and verdicts["sut"] == "fake" and verdicts["stats"]["sagas_started"] == 30
    assert "reproduce with" not in proc.stdout


def test_a_redirected_run_prints_progress_lines_while_it_runs(tmp_path):
    # Slow steps: each saga takes ~5 s, and the output is a pipe, not a terminal.
    argv = [str(BIN), "run", "--sut", "fake", "--env", "FAKE_STEP_S=1.7", "--sagas", "24", "--concurrency", "4"]
    proc = subprocess.Popen(
        [*argv, "--out", str(tmp_path / "r")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    seen: list[tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append((time.monotonic(), line.rstrip("\n")))
    ended = time.monotonic()
    assert proc.wait(30) == 0
    progress = [(t, line) for t, line in seen if line.startswith("[") and "s] " in line]
    assert len(progress) >= 2, seen
    # The first line came while the run was going on, with the phase and the sagas so far.
    first_at, first = progress[0]
    assert ended - first_at > 1.0 and "converging · sagas 24/24 started" in first and "in flight" in first
    assert progress[-1][1].split("] ", 1)[1].startswith("done") and "24/24 started, 24 finished" in progress[-1][1]


def test_check_rejudges_a_fake_run_with_the_same_verdicts_and_exit_status(tmp_path):
    proc, first = fake_run(tmp_path, "--sagas", "30", "--seed", "3", "--bugs", "fake.skip_compensation")
    assert proc.returncode == 1
    again = saga_harness("check", str(tmp_path / "r" / "history.jsonl"), "--out", str(tmp_path / "again"), cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    rejudged = json.loads((tmp_path / "again" / "verdicts.json").read_text())
    assert rejudged["checks"] == first["checks"] and rejudged["command"] == first["command"]
    assert "reproduce with: saga-harness run --sut fake" in again.stdout
    # judged into another directory, the report is drawn from the run's own history
    assert "could not be drawn" not in again.stdout + again.stderr
    assert f"report: {tmp_path / 'again' / 'report.html'}" in again.stdout
    assert "Traceback" not in again.stderr and (tmp_path / "again" / "report.html").stat().st_size > 1000


def test_ctrl_c_stops_the_run_and_every_process_it_started(tmp_path):
    marker = uuid.uuid4().hex  # every process the run starts inherits it
    history = tmp_path / "r" / "history.jsonl"
    proc = subprocess.Popen(
        [str(BIN), "run", "--sagas", "5000", "--concurrency", "5", "--out", str(tmp_path / "r")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SAGA_HARNESS_TEST_MARKER": marker},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's Ctrl-C
    )
    deadline = time.monotonic() + 120
    while '"workload-start"' not in (history.read_text() if history.exists() else ""):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err

    def ours(p: psutil.Process) -> bool:
        try:
            return p.environ().get("SAGA_HARNESS_TEST_MARKER") == marker and p.status() != psutil.STATUS_ZOMBIE
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    time.sleep(0.5)
    left = [p for p in psutil.process_iter() if ours(p) and p.pid != os.getpid()]
    assert not left, [p.cmdline() for p in left]


def test_version_and_short_help(tmp_path):
    from importlib.metadata import version

    proc = saga_harness("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"saga-harness {version('saga-harness')}"
    proc = saga_harness("-h", cwd=tmp_path)
    assert proc.returncode == 0 and "Usage: saga-harness" in proc.stdout and "explore" in proc.stdout
    proc = saga_harness("check", "-h", cwd=tmp_path, columns=80)
    # a help paragraph is rewrapped as one, not broken where its source lines end
    assert "1 a violation is proved; 3 inconclusive" in " ".join(proc.stdout.split())
    proc = saga_harness("chaos", "run", "-h", cwd=tmp_path, columns=200)
    assert "runs/TIME-SCENARIO" in proc.stdout  # placeholders survive the help's markdown
