"""``saga-harness calibrate``: every seeded bug caught in every run meant to expose it, no false positive."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from saga_harness.calibration import RUNS, check_bug_runs, plan
from saga_harness.chaos.scenario import catalogue
from saga_harness.checkers import Verdicts
from saga_harness.reports.calibration import build_calibration_report
from sagashop.bugs import BUGS

BIN = Path(sys.executable).parent / "saga-harness"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def calibrate(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN), "calibrate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def _shape_holds(data: dict) -> None:
    assert {"bugs", "clean", "seconds"} <= set(data)
    assert isinstance(data["seconds"], float)
    assert set(data["bugs"]) == set(BUGS)
    for name, bug in data["bugs"].items():
        assert isinstance(bug["detected_in"], int) and isinstance(bug["runs"], int), name
        assert all(isinstance(c, str) for c in bug["checkers"]), name
        assert all(isinstance(s, str) for s in bug["scenarios"]) and bug["scenarios"], name
    assert isinstance(data["clean"]["runs"], int) and isinstance(data["clean"]["false_positives"], int)


@pytest.mark.timeout(900)
@pytest.mark.calibration  # `make calibration` (in .ci/run, after make test)
def test_quick_calibration_catches_every_bug_and_flags_nothing_clean(tmp_path):
    # Every catalogue scenario the reference system runs on SQLite, clean (this is make test's
    # "every scenario is green"), and every seeded bug through its quick runs, two runs at a time.
    out = tmp_path / "cal"
    t0 = time.monotonic()
    proc = calibrate("--quick", "--jobs", "2", "--out", str(out), cwd=tmp_path)
    elapsed = time.monotonic() - t0
    # 0: every bug detected; 3: the same except bug runs a starved machine held back (make test runs
    # this beside another worker's systems) — a finding there, by a checker meant to catch it, but
    # never a miss, a false positive or a crash.
    assert proc.returncode in (0, 3), proc.stdout[-6000:] + proc.stderr[-3000:]
    data = json.loads((out / "calibration.json").read_text())
    _shape_holds(data)
    assert data["status"] == {0: "calibrated", 3: "inconclusive"}[proc.returncode]
    for name, bug in data["bugs"].items():
        assert bug["detected_in"] + bug["held_back"] == bug["runs"] >= 1, (name, bug)
        assert bug["detected_in"] == 0 or set(bug["checkers"]) & set(BUGS[name].caught_by), (name, bug)
    held = [r for r in data["runs"] if r.get("held_back")]
    assert all(set(r["inconclusive_checkers"]) & set(BUGS[r["bug"]].caught_by) for r in held), held
    assert len(held) <= 3, held  # most bugs are proved by evidence present, whatever the machine
    sqlite_scenarios = {s.name for s, _ in catalogue() if "postgres" not in s.requires and not s.soak}
    assert data["clean"]["false_positives"] == 0 and set(data["clean"]["scenarios"]) == sqlite_scenarios
    # Every run has its own directory with its verdicts, and one bug at most; every fault that
    # started in a run stopped in it.
    for run in data["runs"]:
        verdicts = json.loads((out / run["dir"] / "verdicts.json").read_text())
        assert verdicts["bugs"] == run["bug"] and verdicts["seed"] == run["seed"] == 1
        assert (out / run["report"]).exists() and not (out / run["dir"] / "sut" / "data").exists()
        history = (out / run["dir"] / "history.jsonl").read_text().splitlines()
        faults = [json.loads(x) for x in history if '"type":"fault"' in x]
        starts = [f for f in faults if f["phase"] == "start"]
        assert len(starts) == len(faults) - len(starts) == len(verdicts["faults"]), run["dir"]
    html = (out / "calibration.html").read_text()
    for name in BUGS:
        assert name in html
    assert not EXTERNAL.search(html)
    assert "<script" not in html
    assert {0: "calibrated", 3: "inconclusive"}[proc.returncode] in proc.stdout
    print(f"calibrate --quick took {elapsed:.0f}s")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--seeds", "0"], "--seeds"),
        (["--quick", "--seeds", "3"], "--quick"),
        (["--quick", "--jobs", "0"], "--jobs"),
    ],
)
def test_usage_errors_exit_2_with_one_paragraph(tmp_path, args, needle):
    proc = calibrate(*args, "--out", str(tmp_path / "cal"), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.strip().splitlines() if not line.strip()]) == 0  # one paragraph
    assert not (tmp_path / "cal" / "runs").exists()  # nothing ran


def test_an_out_dir_with_runs_is_refused(tmp_path):
    (tmp_path / "cal" / "runs" / "clean").mkdir(parents=True)
    proc = calibrate("--quick", "--out", str(tmp_path / "cal"), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "already holds a calibration" in proc.stderr, proc.stderr


def test_every_bug_has_runs_meant_to_expose_it_and_expected_checkers():
    check_bug_runs()  # every run a bug names exists
    assert all(bug.caught_by and bug.exposed_by for bug in BUGS.values())
    for quick in (True, False):
        p = plan(seeds=2, quick=quick)
        for bug in BUGS:
            assert any(j.bug == bug for j in p.jobs), (bug, quick)
        assert all(j.bug is None or j.bug in BUGS for j in p.jobs)
        assert len({j.dirname for j in p.jobs}) == len(p.jobs), "each run has its own directory"
    quick, full = plan(quick=True), plan(seeds=2)
    assert quick.seeds == [1] and full.seeds == [1, 2]
    assert all(j.sagas is not None and j.sagas <= 40 for j in quick.jobs if j.kind == "scenario")
    assert {s["scenario"] for s in full.skipped} == {"database-latency"}
    from saga_harness.chaos.scenario import catalogue

    usable = {s.name for s, _ in catalogue()} - {"database-latency"}
    assert {j.name for j in full.jobs if j.kind == "scenario" and j.bug is None} == usable
    # the full calibration runs the non-scenario runs clean too, as their bugs' controls
    assert {j.name for j in full.jobs if j.kind != "scenario" and j.bug is None} == {r.name for r in RUNS}


def test_a_job_names_the_command_that_reproduces_it():
    jobs = plan(quick=True).jobs
    scenario = next(j for j in jobs if j.bug == "orchestrator.no_step_deadline")
    assert scenario.command() == (
        "saga-harness chaos run lost-results --seed 1 --sagas 40 --bugs orchestrator.no_step_deadline"
    )
    load = next(j for j in plan(seeds=1).jobs if j.kind == "load" and j.bug == "payment.double_charge_on_redelivery")
    assert "--scenario lost-acknowledgement" in load.command() and load.command().startswith("saga-harness load run")


def _hand_built(tmp_path: Path) -> Path:
    data = {
        "bugs": {
            "payment.double_charge_on_redelivery": {
                "detected_in": 2,
                "runs": 2,
                "checkers": ["conservation", "idempotency"],
                "scenarios": ["duplicate-deliveries"],
                "expected_checkers": ["conservation", "idempotency"],
                "by_checker": {"conservation": 2, "idempotency": 2},
            },
            "loyalty.no_event_dedupe": {
                "detected_in": 0,
                "runs": 1,
                "checkers": [],
                "scenarios": ["duplicate-deliveries"],
                "expected_checkers": ["idempotency"],
            },
            "<script>alert(1)</script>": {"detected_in": 1, "runs": 1, "checkers": ["outcome"], "scenarios": ["x"]},
        },
        "clean": {"runs": 2, "false_positives": 1},
        "seconds": 12.5,
        "runs": [
            {"kind": "scenario", "name": "baseline", "bug": None, "seed": 1, "verdict": "pass",
             "failed_checkers": [], "seconds": 5.0, "dir": "runs/clean/baseline-seed1", "command": "saga-harness x"},
            {"kind": "scenario", "name": "flaky-payment", "bug": None, "seed": 1, "verdict": "fail",
             "failed_checkers": ["convergence"], "seconds": 9.0, "dir": "runs/clean/flaky-payment-seed1",
             "report": "https://evil.example/report.html", "command": "saga-harness <b>y</b>"},
            {"kind": "scenario", "name": "duplicate-deliveries", "bug": "loyalty.no_event_dedupe", "seed": 1,
             "verdict": "pass", "failed_checkers": [], "detected": False, "seconds": 16.0,
             "dir": "runs/bugs/loyalty.no_event_dedupe/duplicate-deliveries-seed1", "command": "c"},
        ],
    }  # fmt: skip
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(data))
    return path


def test_report_shows_an_undetected_bug_and_a_false_positive(tmp_path):
    html = build_calibration_report(_hand_built(tmp_path)).read_text()
    assert (tmp_path / "calibration.html").exists()
    assert "Calibration failed" in html
    row = re.search(r'<tr data-bug="loyalty.no_event_dedupe" data-detected="(\w+)"[^>]*>(.*?)</tr>', html, re.S)
    assert row and row.group(1) == "no" and "NOT DETECTED in 1 of 1" in row.group(2)
    assert 'data-bug="payment.double_charge_on_redelivery" data-detected="yes"' in html
    assert re.search(r'data-checker="idempotency">2/2<', html)
    assert "FALSE POSITIVE" in html and 'data-verdict="fail"' in html
    # escaped, and no link leaves the calibration directory
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>y</b>" not in html and "&lt;b&gt;y&lt;/b&gt;" in html
    assert "evil.example" not in html and not EXTERNAL.search(html)
    assert 'href="runs/clean/baseline-seed1"' in html


def test_report_of_a_passing_calibration(tmp_path):
    data = {
        "bugs": {b: {"detected_in": 1, "runs": 1, "checkers": ["x"], "scenarios": ["s"]} for b in BUGS},
        "clean": {"runs": 3, "false_positives": 0},
        "seconds": 1.0,
    }
    (tmp_path / "calibration.json").write_text(json.dumps(data))
    html = build_calibration_report(tmp_path).read_text()
    assert "every seeded bug caught" in html and 'data-detected="no"' not in html


def test_report_of_a_missing_file_is_a_clear_error(tmp_path):
    from saga_harness.errors import HarnessError

    with pytest.raises(HarnessError, match="no calibration.json"):
        build_calibration_report(tmp_path)


def test_scenarios_that_require_postgres_run_on_it_when_given_a_database_url():
    url = "postgresql://postgres@127.0.0.1:5432/test"
    jobs = plan(seeds=1, database_url=url).jobs
    pg = [j for j in jobs if j.name == "database-latency"]
    assert pg and all(j.database_url == url and j.command().endswith(f"--database-url {url}") for j in pg)
    assert all(j.database_url is None for j in jobs if j.name != "database-latency")


def test_quick_runs_every_scenario_clean_and_keeps_its_bugs_to_its_scenarios():
    from saga_harness.calibration import QUICK_SCENARIOS

    jobs = plan(quick=True).jobs
    assert {j.name for j in jobs if j.kind == "scenario" and j.bug} <= set(QUICK_SCENARIOS)
    assert {j.name for j in jobs if j.kind != "scenario"} == {r.name for r in RUNS if r.quick}
    usable = {s.name for s, _ in catalogue() if not s.soak} - {"database-latency"}
    assert {j.name for j in jobs if j.kind == "scenario" and j.bug is None} == usable  # never the soak


def test_a_run_that_crashes_is_run_once_more_and_the_first_attempt_kept(tmp_path, monkeypatch):
    import saga_harness.calibration as cal

    calls = []

    def fake_run(job, run_dir, listener=None):
        calls.append(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        Verdicts(()).write(run_dir)
        base = {"kind": job.kind, "name": job.name, "bug": job.bug, "seed": job.seed, "command": "c", "seconds": 1.0}
        if len(calls) == 1:
            return {**base, "verdict": "error", "error": "port taken", "failed_checkers": [], "detected": None}
        return {**base, "verdict": "pass", "failed_checkers": [], "detected": None}

    monkeypatch.setattr(cal, "run_job", fake_run)
    result = cal.calibrate(cal.Plan([cal.Job("scenario", "baseline", 1)], [1], True), tmp_path)
    assert len(calls) == 2 and calls[0] == calls[1]
    assert result["clean"]["runs"] == 1 and result["clean"]["errors"] == 0 and result["clean"]["false_positives"] == 0
    assert result["runs"][0]["retried_after"] == {
        "error": "port taken",
        "dir": "runs/clean/baseline-seed1-error",
        "seconds": 1.0,
    }
    assert (tmp_path / "runs" / "clean" / "baseline-seed1-error").is_dir()
    assert "port taken" in (tmp_path / "calibration.html").read_text()


@pytest.mark.parametrize(
    ("bug_runs", "clean_verdict", "status"),
    [
        ([{"detected": True}, {"detected": True}], "pass", "calibrated"),
        (
            [{"detected": True}, {"detected": False, "held_back": True, "verdict": "inconclusive"}],
            "pass",
            "inconclusive",
        ),
        ([{"detected": True}, {"detected": False, "verdict": "pass"}], "pass", "failed"),  # a miss
        ([{"detected": False, "held_back": True, "verdict": "inconclusive"}], "fail", "failed"),  # a false positive
    ],
)
def test_a_held_back_bug_run_makes_the_calibration_inconclusive_never_calibrated(bug_runs, clean_verdict, status):
    from saga_harness.calibration import summarise

    bug = "payment.double_charge_on_redelivery"
    records = [{"bug": None, "name": "baseline", "verdict": clean_verdict, "failed_checkers": []}]
    records += [{"bug": bug, "name": "duplicate-deliveries", "verdict": "fail", **r} for r in bug_runs]
    for other in set(BUGS) - {bug}:
        records.append({"bug": other, "name": "x", "verdict": "fail", "detected": True})
    data = summarise(records, 1.0)
    assert data["status"] == status and data["ok"] is (status == "calibrated")


def test_parallel_jobs_keep_the_plan_order_and_a_crash_stops_the_rest(tmp_path, monkeypatch):
    import saga_harness.calibration as cal

    def fake_run(job, run_dir, listener=None):
        time.sleep(0.05 * (job.seed % 3))  # finish out of order
        run_dir.mkdir(parents=True, exist_ok=True)
        Verdicts(()).write(run_dir)
        base = {"kind": job.kind, "name": job.name, "bug": job.bug, "seed": job.seed, "command": "c", "seconds": 1.0}
        return {**base, "verdict": "pass", "failed_checkers": [], "detected": None}

    monkeypatch.setattr(cal, "run_job", fake_run)
    jobs = [cal.Job("scenario", "baseline", seed) for seed in range(1, 7)]
    result = cal.calibrate(cal.Plan(jobs, list(range(1, 7)), False), tmp_path / "a", jobs=3)
    assert [r["seed"] for r in result["runs"]] == list(range(1, 7))
    assert result["clean"]["runs"] == 6 and result["clean"]["false_positives"] == 0

    def crashing(job, run_dir, listener=None):
        raise KeyError("a bug in the calibration itself")

    monkeypatch.setattr(cal, "run_job", crashing)
    with pytest.raises(KeyError, match="a bug in the calibration itself"):
        cal.calibrate(cal.Plan(jobs, [1], False), tmp_path / "b", jobs=2)


# --- systems described by a config, and contention --------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
MINISHOP = ROOT / "fixtures" / "minishop" / "saga-harness.toml"
HOTELBUS = ROOT / "fixtures" / "hotelbus" / "saga-harness.toml"


def test_a_described_system_is_planned_from_its_calibration_section(monkeypatch):
    from saga_harness.calibration import described_plan

    monkeypatch.chdir(ROOT)
    p = described_plan(MINISHOP, seeds=2)
    runs = {"run-resend", "run-failures", "run-races"}
    clean = [j for j in p.jobs if j.bug is None]
    assert {(j.name, j.seed) for j in clean} == {(r, s) for r in runs for s in (1, 2)} and p.suts == ["minishop"]
    assert all(j.sut == "minishop" and j.config == MINISHOP and j.kind == "run" for j in p.jobs)
    bugs = [j for j in p.jobs if j.bug]
    assert len(bugs) == 5 * 2 and {j.bug_key for j in bugs} == set(p.bugs)
    race = next(j for j in bugs if j.bug == "stock.lost_update" and j.seed == 1)
    assert race.env == (("MINISHOP_BUGS", "stock.lost_update"),) and race.expected == ("conservation",)
    assert race.dirname == "minishop/bugs/stock.lost_update/run-races-seed1"
    assert race.command() == (
        "saga-harness run --config fixtures/minishop/saga-harness.toml --sagas 40 --concurrency 20 --seed 1 "
        "--mix scarce=0.5,wallet=0.5 --env MINISHOP_BUGS=stock.lost_update"
    )
    quick = described_plan(MINISHOP, quick=True)
    assert quick.seeds == [1] and len(quick.jobs) == 3 + 5


def test_a_run_with_a_scenario_file_is_a_chaos_run_of_that_file(monkeypatch):
    from saga_harness.calibration import described_plan

    monkeypatch.chdir(ROOT)
    job = next(j for j in described_plan(HOTELBUS, seeds=1).jobs if j.bug == "payments.no_dedupe")
    assert job.kind == "scenario" and job.run.scenario == HOTELBUS.parent / "scenarios" / "lost-push-answers.yaml"
    assert job.command() == (
        "saga-harness chaos run fixtures/hotelbus/scenarios/lost-push-answers.yaml --config "
        "fixtures/hotelbus/saga-harness.toml --seed 1 --sagas 30 --env HOTELBUS_BUGS=payments.no_dedupe"
    )


def test_examples_join_the_reference_system_and_contention_repeats_the_first_seed():
    from saga_harness.calibration import described_plan, example_configs, merge, with_contention

    assert [p.parent.name for p in example_configs()] == ["minishop", "hotelbus", "tripbook"]
    whole = merge(plan(seeds=2), *(described_plan(c, seeds=2) for c in example_configs()))
    assert whole.suts == ["reference", "minishop", "hotelbus", "tripbook"]
    assert set(BUGS) < set(whole.bugs) and "minishop:orders.no_paid_check" in whole.bugs
    busy = with_contention(whole, busy=2)
    again = busy.jobs[len(whole.jobs) :]
    assert again and all(j.contention == 2 and j.seed == 1 for j in again) and busy.contention == 2
    assert len(again) == sum(1 for j in whole.jobs if j.seed == 1)
    assert len({j.dirname for j in busy.jobs}) == len(busy.jobs)  # a run under contention has its own directory


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "saga-harness.toml"
    path.write_text(text.replace('cwd = ".."', f'cwd = "{ROOT / "fixtures"}"'))
    return path


@pytest.mark.parametrize(
    "change,needle",
    [
        (('[[calibration.bugs]]\nname = "orders.no_paid_check"', ""), "has no [calibration] section"),
        (('caught_by = ["idempotency", "conservation"]', 'caught_by = ["idempotence"]'), "not checkers"),
        (('exposed_by = ["run-resend"]', 'exposed_by = ["run-resnd"]'), "did you mean 'run-resend'"),
        (('mix = "scarce=0.5,wallet=0.5"', 'mix = "scarse=1"'), "names trigger 'scarse'"),
        (("duplicates = 0.4", 'scenario = "no-such.yaml"\nduplicates = 0.4'), "calibration.runs.run-resend"),
    ],
)
def test_a_mistake_in_the_calibration_section_is_exit_2_naming_file_and_key(tmp_path, change, needle):
    text = MINISHOP.read_text()
    old, new = change
    if new == "" and old.startswith("[[calibration.bugs]]"):
        text = text[: text.index("# --- 7. calibration")]
    else:
        assert old in text
        text = text.replace(old, new, 1)
    path = _write(tmp_path, text)
    proc = calibrate("--config", str(path), "--quick", "--out", str(tmp_path / "cal"), cwd=tmp_path, timeout=60)
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert str(path) in message and needle in message, message
    assert not (tmp_path / "cal" / "runs").exists()


def test_contention_pins_busy_processes_and_stops_them_however_it_ends(tmp_path):
    import psutil
    from saga_harness.calibration import Contention

    with Contention(2, tmp_path) as cpu:
        pids = cpu.pids()
        assert len(pids) == 2 and set(cpu.cores) <= os.sched_getaffinity(0)
        assert [psutil.Process(p).cpu_affinity() for p in pids] == [[c] for c in cpu.cores]  # one core each
        # They do compete: each burns CPU (how much depends on what else the machine runs).
        procs = [psutil.Process(p) for p in pids]
        before = [sum(p.cpu_times()[:2]) for p in procs]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
            sum(p.cpu_times()[:2]) - b >= 0.2 for p, b in zip(procs, before, strict=True)
        ):
            time.sleep(0.1)
        assert all(sum(p.cpu_times()[:2]) - b >= 0.2 for p, b in zip(procs, before, strict=True))
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    with pytest.raises(RuntimeError, match="a job failed"), Contention(1, tmp_path / "b") as cpu:
        [pid] = cpu.pids()
        raise RuntimeError("a job failed")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.timeout(300)
@pytest.mark.calibration  # `make calibration` (in .ci/run, after make test)
def test_a_tiny_calibration_from_a_config_under_contention(tmp_path):
    # One run of 12 sagas, clean and with one bug, then both again while two busy processes hold the cores.
    text = MINISHOP.read_text()
    text = text[: text.index("[calibration.runs.run-resend]")] + (
        '[calibration.runs.tiny]\nsagas = 12\nconcurrency = 4\nmix = "ok=1"\nduplicates = 1\n\n'
        '[[calibration.bugs]]\nname = "orders.no_paid_check"\nbreaks = "a resent checkout charges again"\n'
        'env = { MINISHOP_BUGS = "orders.no_paid_check" }\nexposed_by = ["tiny"]\ncaught_by = ["idempotency"]\n'
    )
    path = _write(tmp_path, text)
    out = tmp_path / "cal"
    proc = calibrate("--config", str(path), "--contention", "2", "--seeds", "1", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    data = json.loads((out / "calibration.json").read_text())
    assert [(r["bug"], r["contention"]) for r in data["runs"]] == [
        (None, 0), ("minishop:orders.no_paid_check", 0), (None, 2), ("minishop:orders.no_paid_check", 2),
    ]  # fmt: skip
    assert all(r["detected"] for r in data["runs"] if r["bug"])
    assert data["clean"]["under_contention"] == {"runs": 1, "false_positives": 0, "inconclusive": 0, "errors": 0}
    assert data["bugs"]["minishop:orders.no_paid_check"]["under_contention"] == {"runs": 1, "detected_in": 1}
    assert data["contention"]["busy"] == 2 and data["contention"]["alive_at_end"] == 2
    import psutil

    gone = [p for p in data["contention"]["pids"] if psutil.pid_exists(p)]
    assert not gone, f"busy processes still running: {gone}"
    assert "under contention: 1 runs, 0 false positives, 0 inconclusive" in " ".join(proc.stdout.split())
    html = (out / "calibration.html").read_text()
    assert 'data-contention="2"' in html and "clean runs under CPU contention (2 busy processes" in html


def test_examples_outside_a_source_checkout_are_a_clear_error(tmp_path):
    from saga_harness.calibration import example_configs
    from saga_harness.errors import ConfigError

    with pytest.raises(ConfigError, match="source checkout.*--config FILE"):
        example_configs(tmp_path)


def test_a_bug_whose_runs_are_not_quick_brings_them_into_quick(tmp_path):
    from saga_harness.calibration import described_plan

    races = "[calibration.runs.run-races]\n"
    text = MINISHOP.read_text().replace(races, races + "quick = false\n")
    jobs = described_plan(_write(tmp_path, text), quick=True).jobs
    assert {j.name for j in jobs if j.bug == "stock.lost_update"} == {"run-races"}
    assert "run-races" in {j.name for j in jobs if j.bug is None}  # and its clean control
