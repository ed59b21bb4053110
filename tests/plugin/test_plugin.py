"""The pytest plugin, tested as pytest plugins are: real pytest sessions (pytester)."""

from __future__ import annotations

TEST_FILE = """
def test_sagas_keep_their_promises(saga_run):
    ids = saga_run.start_sagas(20, mix="ok=0.5,capture_fail=0.5", seed=4, duplicates=0.2)
    assert len(ids) == 20
    assert saga_run.wait_converged(timeout=60)
    verdicts = saga_run.check()
    verdicts.assert_ok()
    assert verdicts.ok and not verdicts.failures
    assert any(e["type"] == "snapshot" for e in saga_run.history)
"""


def test_plugin_options_are_registered(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--saga-config*", "*--saga-run-dir*", "*--saga-bugs*"])


def test_a_clean_system_passes(pytester):
    pytester.makepyfile(TEST_FILE)
    report = pytester.path / "session.html"
    result = pytester.runpytest_subprocess(
        "--saga-run-dir", str(pytester.path / "runs"), "-p", "no:cacheprovider", "--saga-report", str(report)
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*saga-harness*", "*run directory:*", f"*session report: {report}*"])
    assert (pytester.path / "runs" / "test_sagas_keep_their_promises" / "history.jsonl").exists()
    html = report.read_text()
    assert "All invariants hold" in html and "test_sagas_keep_their_promises" in html


def test_a_seeded_bug_fails_the_test_with_a_readable_explanation(pytester):
    pytester.makepyfile(TEST_FILE)
    result = pytester.runpytest_subprocess(
        "--saga-run-dir", str(pytester.path / "runs"), "--saga-bugs", "orchestrator.skip_compensation"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*violation(s) in compensation*",
            "*[[]compensation[]] saga *, step reserve_inventory*",
            "*expected: release_inventory after reserve_inventory completed*",
            "*evidence: history.jsonl:*",
        ]
    )


CHAOS_TEST = """
import pytest


def test_kill_inside_a_test(saga_run, saga_chaos):
    with saga_chaos.kill("payment"):
        saga_run.start_sagas(10, mix="ok=1", seed=1)
    assert saga_run.wait_converged(timeout=90)
    saga_run.check().assert_ok()
    faults = [e for e in saga_run.history if e["type"] == "fault"]
    assert [f["phase"] for f in faults] == ["start", "stop"] and faults[0]["fault"]["target"] == "payment"


@pytest.mark.saga_scenario("duplicate-deliveries", seed=2)
def test_under_a_scenario(saga_run):
    saga_run.start_sagas(15, mix="ok=0.7,capture_fail=0.3", seed=2)
    assert saga_run.wait_converged(timeout=90)
    saga_run.check().assert_ok()
    assert any(e["type"] == "fault" for e in saga_run.history)
"""


def test_saga_chaos_fixture_and_scenario_marker(pytester):
    pytester.makepyfile(CHAOS_TEST)
    result = pytester.runpytest_subprocess("--saga-run-dir", str(pytester.path / "runs"))
    result.assert_outcomes(passed=2)
