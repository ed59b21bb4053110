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
    result = pytester.runpytest_subprocess("--saga-run-dir", str(pytester.path / "runs"), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*saga-harness*", "*run directory:*"])
    assert (pytester.path / "runs" / "test_sagas_keep_their_promises" / "history.jsonl").exists()


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
