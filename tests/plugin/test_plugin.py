"""The pytest plugin, tested as pytest plugins are: real pytest sessions (pytester).

Its mechanics (fixtures, the session's SUT through the run lifecycle, failures explained, the
session report, faults inside a test, the scenario marker) on the fake SUT (``--saga-sut fake``):
seconds, not the reference system's eleven processes. The reference system's own behaviour under
these faults is tested by its chaos scenarios and the calibration.
"""

from __future__ import annotations

import json

TEST_FILE = """
def test_sagas_keep_their_promises(saga_run, saga_sut):
    assert saga_sut.name == "fake"
    ids = saga_run.start_sagas(20, mix="ok=0.5,fail_charge=0.5", seed=4, duplicates=0.2)
    assert len(ids) == 20
    assert saga_run.wait_converged(timeout=60)
    verdicts = saga_run.check()
    verdicts.assert_ok()
    assert verdicts.ok and not verdicts.failures
    assert any(e["type"] == "snapshot" for e in saga_run.history)
"""


def test_plugin_options_are_registered(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(
        ["*--saga-config*", "*--saga-sut*", "*--saga-run-dir*", "*--saga-bugs*", "*--saga-inconclusive*"]
    )


def test_a_clean_system_passes(pytester):
    pytester.makepyfile(TEST_FILE)
    report = pytester.path / "session.html"
    runs = pytester.path / "runs"
    result = pytester.runpytest_subprocess(
        "--saga-sut", "fake", "--saga-run-dir", str(runs), "-p", "no:cacheprovider", "--saga-report", str(report)
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*saga-harness*", "*run directory:*", f"*session report: {report}*"])
    run = runs / "test_sagas_keep_their_promises"
    assert (run / "history.jsonl").exists()
    assert json.loads((run / "verdicts.json").read_text())["ok"] is True
    html = report.read_text()
    assert "All invariants hold" in html and "test_sagas_keep_their_promises" in html
    # The session's SUT went through the run lifecycle: its meta, then nothing left running.
    assert json.loads((runs / "history.jsonl").read_text().splitlines()[0])["sut"] == "fake"


def test_a_seeded_bug_fails_the_test_with_a_readable_explanation(pytester):
    pytester.makepyfile(TEST_FILE)
    result = pytester.runpytest_subprocess(
        "--saga-sut", "fake", "--saga-run-dir", str(pytester.path / "runs"), "--saga-bugs", "fake.skip_compensation"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*violation(s) in compensation*",
            "*[[]compensation[]] saga *, step reserve*",
            "*expected: undo reserve after reserve completed*",
            "*evidence: history.jsonl:*",
            # where the run was when it failed: the progress line the CLI prints in a log
            "*saga-harness*",
            "*done · sagas 20/20 started, 20 finished, 0 in flight*",
        ]
    )
    # One line per cause, before the instances; and assert_ok's own frames hidden.
    result.stdout.fnmatch_lines(["*✗ [[]compensation[]] reserve done and never undone in compensated sagas in * saga*"])
    assert "verdict.py" not in result.stdout.str() and "self = Verdicts(" not in result.stdout.str()
    # the test's folder holds what the message points to, and the summary names it
    run = pytester.path / "runs" / "test_sagas_keep_their_promises"
    assert {"history.jsonl", "verdicts.json", "report.html", "junit.xml"} <= {p.name for p in run.iterdir()}
    result.stdout.fnmatch_lines([f"violated: *test_sagas_keep_their_promises — {run / 'report.html'}"])


INCONCLUSIVE_TEST = """
def test_judged_while_a_service_is_paused(saga_run, saga_chaos):
    with saga_chaos.pause("charge"):
        saga_run.start_sagas(5, mix="ok=1", seed=1)
        verdicts = saga_run.check()  # every saga still waits on the paused service: slow, not stuck
    assert verdicts.status == "inconclusive", verdicts.explain()
    assert not verdicts.failures
    verdicts.assert_ok()
    raise AssertionError("assert_ok() let an inconclusive run pass")
"""


def test_an_inconclusive_run_is_skipped_with_its_reason_by_default(pytester):
    pytester.makepyfile(INCONCLUSIVE_TEST)
    result = pytester.runpytest_subprocess("--saga-sut", "fake", "--saga-run-dir", str(pytester.path / "runs"), "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*SKIPPED*saga-harness: inconclusive: no violation proved, but convergence could not be judged*"]
    )


def test_an_inconclusive_run_fails_when_asked_to(pytester):
    pytester.makepyfile(INCONCLUSIVE_TEST)
    result = pytester.runpytest_subprocess(
        "--saga-sut", "fake", "--saga-run-dir", str(pytester.path / "runs"), "--saga-inconclusive", "fail"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*saga-harness (--saga-inconclusive fail): inconclusive*",
            "*? [[]convergence[]] still progressing * when observation ended (slow, not stuck) in 5 sagas: fake-*",
            "*not judged: still progressing when observation ended*",
        ]
    )
    out = result.stdout.str()
    assert "pytest_plugin.py" not in out and "verdict.py" not in out  # no frames of the harness's own


def test_a_bad_option_is_an_error_of_the_session_not_a_traceback(pytester):
    pytester.makepyfile(TEST_FILE)
    result = pytester.runpytest_subprocess("--saga-sut", "fake", "--saga-bugs", "fake.nope")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ConfigError: --bugs: the fake SUT has no seeded bug 'fake.nope'*"])


SCENARIO = """
name: kill-and-duplicate
description: a process killed, deliveries duplicated
faults:
  - {kind: kill, process: charge, at: 0s, duration: 0.5s}
  - {kind: duplicate, target: queue, at: 0s, duration: 2s}
"""

CHAOS_TEST = """
import pytest


def test_kill_inside_a_test(saga_run, saga_chaos):
    with saga_chaos.kill("charge"):
        saga_run.start_sagas(10, mix="ok=1", seed=1)
    assert saga_run.wait_converged(timeout=90)
    saga_run.check().assert_ok()
    faults = [e for e in saga_run.history if e["type"] == "fault"]
    assert [f["phase"] for f in faults] == ["start", "stop"] and faults[0]["fault"]["target"] == "charge"


def test_deliveries_inside_a_test(saga_run, saga_chaos):
    with saga_chaos.deliveries("queue", duplicate=1):
        saga_run.start_sagas(10, mix="ok=0.5,fail_ship=0.5", seed=3)  # keys of their own: the SUT is shared
        assert saga_run.wait_converged(timeout=90)
    saga_run.check().assert_ok()


def test_a_fault_the_sut_cannot_take_is_refused(saga_run, saga_chaos):
    from saga_harness.errors import MissingAbilityError

    with pytest.raises(MissingAbilityError, match="process control"):
        with saga_chaos.kill("gateway"):
            pass


@pytest.mark.saga_scenario("scenario.yaml", seed=2)
def test_under_a_scenario(saga_run):
    saga_run.start_sagas(15, mix="ok=0.7,fail_charge=0.3", seed=2)
    assert saga_run.wait_converged(timeout=90)
    saga_run.check().assert_ok()
    assert {e["fault"]["kind"] for e in saga_run.history if e["type"] == "fault"} == {"kill", "duplicate"}
"""


def test_saga_chaos_fixture_and_scenario_marker(pytester):
    pytester.makepyfile(CHAOS_TEST)
    (pytester.path / "scenario.yaml").write_text(SCENARIO)
    result = pytester.runpytest_subprocess("--saga-sut", "fake", "--saga-run-dir", str(pytester.path / "runs"))
    result.assert_outcomes(passed=4)


HTTP_TEST = """
import pytest
from saga_harness.errors import ScenarioError


def test_an_http_fault_inside_a_test(saga_run, saga_chaos):
    with saga_chaos.http("trips->suppliers", "http_error", method="POST", path="/cars", first=2, status=503):
        saga_run.start_sagas(4, mix="ok=1", seed=1)
        assert saga_run.wait_converged(timeout=90)
    verdicts = saga_run.check()
    calls = [e for e in saga_run.history if e["type"] == "call"]
    hit = [c for c in calls if c["rule"]]
    assert len(hit) == 2 and all(c["path"] == "/cars" and c["status"] == 503 for c in hit), hit
    assert {c["link"] for c in calls} == {"trips->suppliers"}
    assert any(c["path"] == "/flights" and c["rule"] is None for c in calls)
    verdicts.assert_ok()


def test_the_next_test_records_only_its_own_calls(saga_run):
    saga_run.start_sagas(2, mix="ok=1", seed=2)
    assert saga_run.wait_converged(timeout=90)
    saga_run.check().assert_ok()
    calls = [e for e in saga_run.history if e["type"] == "call"]
    assert calls and not any(c["rule"] for c in calls)


def test_a_link_not_behind_the_proxy_is_refused(saga_chaos):
    with pytest.raises(ScenarioError, match="--saga-http-links trips->notify"):
        with saga_chaos.http("trips->notify", "lose_answer"):
            pass
    with pytest.raises(ScenarioError, match="unknown kind"):
        with saga_chaos.http("trips->suppliers", "explode"):
            pass
"""


def test_http_faults_inside_a_test_on_a_described_system(pytester):
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / "fixtures" / "tripbook" / "saga-harness.toml"
    pytester.makepyfile(HTTP_TEST)
    result = pytester.runpytest_subprocess(
        "--saga-config",
        str(config),
        "--saga-http-links",
        "trips->suppliers",
        "--saga-run-dir",
        str(pytester.path / "runs"),
    )
    result.assert_outcomes(passed=3)
