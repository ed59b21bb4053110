"""The HTML report, built from a run directory alone, and seen in headless Chromium."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from handbuilt import SHOP, compensated_shop_saga, completed_shop_saga, snapshots
from saga_harness.checkers import RunInfo, Verdicts, run_checks
from saga_harness.errors import HarnessError
from saga_harness.history import read_history
from saga_harness.model import SagaModel
from saga_harness.reports import build_report, build_run_index, write_reports
from saga_harness.reports.inputs import contract_results
from saga_harness.reports.junit import junit_xml
from saga_harness.reports.screenshot import CHROMIUM_ARGS, chromium
from saga_harness.rundir import read_contracts, write_contracts_section
from saga_harness.testing import HistoryBuilder

CHROMIUM = chromium()
EVIL = '<script>window.__pwned = true</script><img src=x onerror="window.__pwned=true">'
ARTIFACTS = Path(os.environ.get("SAGA_HARNESS_ARTIFACTS", Path(__file__).resolve().parents[2] / "runs" / "artifacts"))


def make_run(run_dir: Path, *, broken: bool) -> Path:
    """A real run directory (history, verdicts, contract results, junit, report) from a hand-built
    history of the handbuilt shop model; returns the report's path."""
    write_run(run_dir, broken=broken)
    mismatch = {"kind": "BodyMismatch", "path": "$.data", "reason": f"missing amount_cents{EVIL}"}
    interactions = [
        {
            "provider": "payment",
            "consumer": "email",
            "description": f"refunded{EVIL}",
            "kind": "message",
            "states": [],
            "ok": not broken,
            "pending": False,
            "mismatches": [] if not broken else [mismatch],
        },
    ]
    write_contracts_section(
        run_dir,
        "pacts",
        {
            "ok": not broken,
            "interactions": interactions,
            "passed": int(not broken),
            "failed": int(broken),
            "errors": [],
        },
    )
    write_contracts_section(
        run_dir,
        "fuzz",
        {
            "ok": True,
            "operations": 3,
            "test_cases": 30,
            "failures": 0,
            "services": [
                {"service": "payment", "ok": True, "operations": 3, "test_cases": 30, "failures": [], "errors": []}
            ],
        },
    )
    paths = write_reports(run_dir)
    assert paths.html is not None, paths.html_error
    return paths.html


def write_run(run_dir: Path, *, broken: bool, checks: list[str] | None = None) -> Verdicts:
    """The history and ``verdicts.json`` of a judged run (no reports yet)."""
    b = HistoryBuilder()
    b.meta(run_dir.name, seed=5, sut=f"shop{EVIL}")
    b.fault("start", {"id": "f1", "kind": "latency", "target": f"a->b{EVIL}"})
    completed_shop_saga(b, sid=f"s1{EVIL}")
    compensated_shop_saga(b)
    if broken:
        b.entries = [e for e in b.entries if not (e["type"] == "event" and e["event"]["type"] == "shop.released")]
    snapshots(
        b,
        mails=[{"saga_id": f"s1{EVIL}", "event_id": "m1"}],
        orders=[{"saga_id": f"s1{EVIL}", "status": "confirmed"}, {"saga_id": "s2", "status": "cancelled"}],
    )
    b.fault("stop", {"id": "f1", "kind": "latency", "target": f"a->b{EVIL}"})
    b.write(run_dir)
    run = RunInfo(run_dir.name, sut=f"shop{EVIL}", seed=5, scenario="handbuilt", command="saga-harness run --seed 5")
    verdicts = run_checks(read_history(run_dir), SagaModel.model_validate(SHOP), checks).with_run(run)
    verdicts.write(run_dir)
    return verdicts


def test_report_is_one_self_contained_file_with_everything_escaped(tmp_path):
    path = make_run(tmp_path / "bad", broken=True)
    html = path.read_text()
    assert "<script>window.__pwned" not in html and 'onerror="window' not in html
    assert "&lt;script&gt;" in html
    for forbidden in ("http://", "https://", "<link ", 'src="http'):
        assert forbidden not in html.replace("http://www.w3.org", "")
    assert "Invariants violated" in html and "[compensation]" in html
    assert "history.jsonl:" in html  # the evidence lines are quoted
    assert build_report(tmp_path / "bad", tmp_path / "again.html").read_text() == html  # rebuilt from the directory


def test_junit_has_a_case_per_invariant_with_violations(tmp_path):
    make_run(tmp_path / "bad", broken=True)
    xml = (tmp_path / "bad" / "junit.xml").read_text()
    verdicts = Verdicts.read(tmp_path / "bad")
    invariants = xml[xml.index('<testsuite name="saga-harness') :]
    assert invariants.count("<testcase") == len(verdicts.checks) and "InvariantViolation" in invariants
    assert '<property name="scenario" value="handbuilt"' in invariants
    assert junit_xml(verdicts, contract_results(tmp_path / "bad", verdicts)) == xml


def test_index_lists_runs_sortably(tmp_path):
    make_run(tmp_path / "runs" / "a-good", broken=False)
    make_run(tmp_path / "runs" / "b-bad", broken=True)
    html = build_run_index(tmp_path / "runs").read_text()
    assert "a-good/report.html" in html and "b-bad/report.html" in html and "Trends: clean runs" in html
    assert "<script>window.__pwned" not in html


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
@pytest.mark.parametrize("broken", [False, True])
def test_report_as_a_person_sees_it(tmp_path, broken):
    from playwright.sync_api import sync_playwright  # here: only the browser tests need it, and it is slow to import

    path = make_run(tmp_path / ("bad" if broken else "good"), broken=broken)
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        assert page.evaluate("window.__pwned") is None, "injected script ran"
        assert errors == []
        assert all(u.startswith("file://") or u.startswith("data:") for u in requests), requests
        header = page.inner_text("header h1")
        assert ("Invariants violated" if broken else "All invariants hold") in header
        card = page.locator('[data-check="compensation"]').inner_text()
        assert ("FAIL" if broken else "pass") in card
        assert page.locator("svg.timeline polyline").count() > 0
        assert page.locator("svg.timeline rect.fault").count() == 2  # the fault's bar, and its kind's in the legend
        if broken:
            assert page.locator(".violation svg.swimlane .mark").count() > 0
            assert "s2" in page.inner_text("#violations")
        assert "<script>window.__pwned = true</script>" in page.inner_text("header h1")  # shown as text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"report-{'failing' if broken else 'passing'}.png"), full_page=True)
        browser.close()


def test_contract_results_are_tabled_escaped_and_in_junit(tmp_path):
    page = make_run(tmp_path / "broken", broken=True).read_text()
    section = page[page.index('<section id="contracts">') :]
    assert 'id="pact-results"' in section and 'id="fuzz-results"' in section
    assert "payment ← email" in section and "FAILED" in section and "missing amount_cents" in section
    assert "<script>window.__pwned" not in section and "&lt;script&gt;" in section
    junit = (tmp_path / "broken" / "junit.xml").read_text()
    assert 'classname="contracts.pact.payment"' in junit and "ContractViolation" in junit
    assert 'classname="contracts.fuzz"' in junit


# -- write_reports: from the run directory alone ------------------------------------
def test_the_events_validation_comes_from_the_verdicts_without_a_contracts_json(tmp_path):
    run_dir = tmp_path / "run"
    verdicts = write_run(run_dir, broken=False)  # every checker, the contracts one too
    assert not (run_dir / "contracts.json").exists()
    paths = write_reports(run_dir)
    page = paths.html.read_text()
    section = page[page.index('<section id="contracts">') :]
    assert 'id="event-results"' in section and 'id="pact-results"' not in section
    stats = verdicts["contracts"].stats
    assert f"{stats['events_checked']} events, {stats['invalid']} invalid" in section
    junit = paths.junit.read_text()
    assert junit.count('classname="contracts.events"') == len(stats["by_type"]) > 0
    assert read_contracts(run_dir) == {}  # the writers derive it; nothing was written back


def test_a_report_that_cannot_be_drawn_keeps_the_verdicts_and_says_why(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    write_run(run_dir, broken=True)
    (run_dir / "report.html").write_text("an older report")
    before = (run_dir / "verdicts.json").read_text()

    def broken_drawing(*_args, **_kw):
        raise ZeroDivisionError("the timeline has no width")

    monkeypatch.setattr("saga_harness.reports.writer.render_report", broken_drawing)
    paths = write_reports(run_dir)
    assert paths.html is None and not (run_dir / "report.html").exists()
    assert "ZeroDivisionError: the timeline has no width" in paths.html_error
    assert (run_dir / "verdicts.json").read_text() == before
    assert paths.junit.exists() and "InvariantViolation" in paths.junit.read_text()


def test_a_run_that_checked_contracts_only_gets_junit_alone(tmp_path):
    run_dir = tmp_path / "contracts-only"
    interaction = {"provider": "payment", "consumer": "email", "description": "refunded", "ok": False}
    path = write_contracts_section(run_dir, "pacts", {"ok": False, "interactions": [interaction]})
    assert sorted(p.name for p in run_dir.iterdir()) == ["contracts.json"]  # only the section's file
    assert json.loads(path.read_text())["ok"] is False
    paths = write_reports(run_dir)
    assert paths.html is None and "contracts only" in paths.html_error
    junit = paths.junit.read_text()
    assert 'classname="contracts.pact.payment"' in junit and "InvariantViolation" not in junit


def test_write_reports_refuses_a_directory_that_is_no_run(tmp_path):
    with pytest.raises(HarnessError, match="neither verdicts.json nor contract results"):
        write_reports(tmp_path)


def test_a_contracts_section_is_one_of_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown contracts.json section 'pact'; sections: pacts, events, fuzz"):
        write_contracts_section(tmp_path, "pact", {"ok": True})
