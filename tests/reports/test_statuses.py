"""How each status is shown: JUnit (an inconclusive check is a skipped case with its reason), the
HTML report (its own colour and words, one card per finding, what the run covered), the run
index, and the command line (every finding on a line, never ``None``, the exit status)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from xml.etree import ElementTree as ET

from handbuilt import SHOP, compensated_shop_saga, completed_shop_saga, snapshots
from rich.console import Console
from saga_cli import saga_harness
from saga_harness.checkers import RunInfo, Verdicts, run_checks
from saga_harness.cli.display import show_verdicts
from saga_harness.history import read_history
from saga_harness.model import SagaModel
from saga_harness.reports import build_run_index, write_reports
from saga_harness.testing import HistoryBuilder

SHOP_MODEL = SagaModel.model_validate(SHOP)


def judged(run_dir: Path, b: HistoryBuilder, checks: list[str] | None = None) -> Verdicts:
    b.write(run_dir)
    run = RunInfo(run_dir.name, sut="shop", seed=3, command="saga-harness run --seed 3")
    verdicts = run_checks(read_history(run_dir), SHOP_MODEL, checks).with_run(run)
    verdicts.write(run_dir)
    return verdicts


def slow_run(run_dir: Path) -> Verdicts:
    """A run whose only doubt is a saga still moving when observation ended: inconclusive."""
    b = HistoryBuilder()
    b.meta(run_dir.name, sut="shop")
    completed_shop_saga(b, "s1")
    compensated_shop_saga(b, "s2")
    b.saga("s3")
    b.status("s3", "RESERVING")
    b.wait(1)
    b.phase("deadline-passed", pending=1)
    snapshots(b)
    return judged(run_dir, b)


def double_charges(run_dir: Path, sagas: int = 12) -> Verdicts:
    b = HistoryBuilder()
    b.meta(run_dir.name, sut="shop")
    for i in range(sagas):
        completed_shop_saga(b, f"s{i}")
        b.event("shop.charged", f"s{i}", amount=100)
    snapshots(
        b,
        mails=[{"saga_id": f"s{i}", "event_id": f"m{i}"} for i in range(sagas)],
        orders=[{"saga_id": f"s{i}", "status": "confirmed"} for i in range(sagas)],
        stock=[{"sku": "A", "initial": 100, "available": 100 - sagas}],
    )
    return judged(run_dir, b)


# -- JUnit --------------------------------------------------------------------------------
def test_junit_skips_an_inconclusive_check_with_its_reason(tmp_path):
    verdicts = slow_run(tmp_path / "slow")
    assert verdicts.status == "inconclusive"
    root = ET.fromstring(write_reports(tmp_path / "slow").junit.read_text())
    suite = next(s for s in root.iter("testsuite") if s.get("name", "").startswith("saga-harness"))
    assert suite.get("skipped") == "1" and suite.get("failures") == "0"
    case = next(c for c in suite.iter("testcase") if c.get("name") == "convergence")
    skipped = case.find("skipped")
    assert skipped is not None and case.find("failure") is None
    assert skipped.get("message", "").startswith("inconclusive: 1 not judged: still progressing")
    assert "still progressing in RESERVING" in (skipped.text or "")
    others = [c for c in suite.iter("testcase") if c.get("name") != "convergence"]
    assert all(c.find("skipped") is None and c.find("failure") is None for c in others)


def test_junit_failure_lists_the_findings(tmp_path):
    double_charges(tmp_path / "bad")
    root = ET.fromstring(write_reports(tmp_path / "bad").junit.read_text())
    case = next(c for c in root.iter("testcase") if c.get("name") == "idempotency")
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "idempotency: 12 violation(s), 1 finding(s)"
    first = (failure.text or "").splitlines()[0]
    assert first.startswith(
        "finding: charge took effect more than once (distinct events) in 12 sagas: s0 [history.jsonl:"
    )
    assert first.endswith("and 7 more saga(s)")


# -- the HTML report and the index -----------------------------------------------------------
def test_the_report_shows_inconclusive_in_its_own_colour_and_words(tmp_path):
    slow_run(tmp_path / "slow")
    html = write_reports(tmp_path / "slow").html.read_text()  # type: ignore[union-attr]
    assert "<h1>Inconclusive — shop" in html and "#9a5b00" in html and "— INCONCLUSIVE</title>" in html
    assert "No violation was proved, but the run could not support a verdict" in html
    assert 'data-check="convergence" data-status="inconclusive"' in html
    assert html.count('class="violation inconclusive"') == 1
    assert "not judged: still progressing when observation ended" in html
    assert 'id="coverage"' in html and 'id="coverage-steps"' in html


def test_the_report_has_one_card_per_finding_with_its_sagas(tmp_path):
    double_charges(tmp_path / "bad", sagas=12)
    html = write_reports(tmp_path / "bad").html.read_text()  # type: ignore[union-attr]
    cards = html.count('<div class="violation violated"')
    verdicts = Verdicts.read(tmp_path / "bad")
    assert cards == sum(f.status == "violated" for f in verdicts.findings) == 2  # idempotency, conservation
    assert "charge took effect more than once (distinct events) in 12 sagas" in html
    assert "… and 7 more saga(s) (verdicts.json lists every instance)" in html
    assert "<h1>Invariants violated" in html


def test_the_index_tells_inconclusive_runs_apart(tmp_path):
    slow_run(tmp_path / "runs" / "a-slow")
    double_charges(tmp_path / "runs" / "b-bad")
    for run in ("a-slow", "b-bad"):
        write_reports(tmp_path / "runs" / run)
    html = build_run_index(tmp_path / "runs").read_text()
    assert '<span class="unsure">inconclusive</span>' in html and '<span class="bad">FAIL</span>' in html


# -- the command line -------------------------------------------------------------------------
def shown(verdicts: Verdicts) -> str:
    console = Console(width=100, record=True, force_terminal=False, file=io.StringIO())
    show_verdicts(verdicts, console)
    return console.export_text()


def test_the_cli_lists_every_finding_and_never_none(tmp_path):
    b = HistoryBuilder()
    for i in range(40):  # forty findings of one checker: every one listed, none dropped
        b.saga(f"s{i}")
        b.status(f"s{i}", f"STATE_{i}")
    b.wait(30)
    b.phase("deadline-passed", pending=40)
    b.snapshot("stock", {"stock": [{"sku": "A", "initial": -1, "available": -1}]})  # a run-wide finding: no saga
    text = shown(run_checks(b.entries, SHOP_MODEL, ["convergence", "conservation"]))
    lines = [line for line in text.splitlines() if line.startswith("✗ ")]
    assert len(lines) == 41 and "None" not in text
    assert lines[0] == (
        "✗ convergence: stuck in STATE_0: no progress for 10 s or more before observation ended in 1 saga: s0 (built:3)"
    )
    assert "✗ conservation: stock below zero in stock (built:" in text
    assert "verdict: VIOLATED — 41 violation(s) proved (exit 1)" in text


def test_the_cli_says_why_a_run_is_inconclusive(tmp_path):
    text = shown(slow_run(tmp_path / "slow"))
    assert (
        "? convergence: still progressing in RESERVING when observation ended (slow, not stuck) in 1 saga: s3" in text
    )
    assert "not judged: still progressing when observation ended" in text
    assert "verdict: INCONCLUSIVE — no violation proved, but the run could not support a verdict" in text
    assert "(exit 3)" in text
    assert "covered: steps: reserve 2 done, 1 compensated; charge 2 done, 1 compensated; confirm 1 done" in text


def fake_history(run_dir: Path, quiet_s: float) -> None:
    """A history of the fake SUT: one saga that reserved and then went quiet for ``quiet_s``."""
    b = HistoryBuilder()
    b.meta(run_dir.name, sut="fake")
    b.saga("f1")
    b.status("f1", "STARTED")
    b.event("fake.reserve.done", "f1", amount_cents=100)
    b.status("f1", "RESERVE_PENDING")
    b.wait(quiet_s)
    b.phase("deadline-passed", pending=1)
    b.write(run_dir)


def test_check_exits_3_when_inconclusive_and_1_when_stuck(tmp_path):
    fake_history(tmp_path / "moving", quiet_s=2)
    proc = saga_harness("check", str(tmp_path / "moving"), "--sut", "fake", cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "INCONCLUSIVE" in proc.stdout and "(exit 3)" in proc.stdout
    doc = json.loads((tmp_path / "moving" / "verdicts.json").read_text())
    assert doc["status"] == "inconclusive" and doc["reason"].startswith("convergence: 1 not judged")
    fake_history(tmp_path / "stuck", quiet_s=30)
    proc = saga_harness("check", str(tmp_path / "stuck"), "--sut", "fake", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "✗ convergence: stuck in RESERVE_PENDING: no progress for 10 s or more" in proc.stdout


def test_a_fake_run_with_a_bug_exits_1_with_one_line_per_finding(tmp_path):
    proc = saga_harness(
        "run", "--sut", "fake", "--sagas", "30", "--seed", "3", "--bugs", "fake.skip_compensation",
        "--out", str(tmp_path / "r"), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    findings = [line for line in proc.stdout.splitlines() if line.startswith("✗ ")]
    assert findings and "None" not in "\n".join(findings)
    assert any(
        line.startswith("✗ compensation: reserve done and never undone in compensated sagas in ") for line in findings
    )
    assert "verdict: VIOLATED" in proc.stdout and "(exit 1)" in proc.stdout
    assert "covered: steps: reserve " in proc.stdout and "covered: triggers: " in proc.stdout
