"""The HTML report, built from a run directory alone, and seen in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from saga_harness.history import HistoryWriter, shard_path
from saga_harness.reports.html import build_report
from saga_harness.reports.index import build_index
from saga_harness.reports.junit import junit_xml
from saga_harness.run import judge
from saga_harness.testing import HistoryBuilder

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
EVIL = '<script>window.__pwned = true</script><img src=x onerror="window.__pwned=true">'
ARTIFACTS = Path(os.environ.get("SAGA_HARNESS_ARTIFACTS", Path(__file__).resolve().parents[2] / "runs" / "artifacts"))


def make_run(run_dir: Path, *, broken: bool) -> Path:
    """A real run directory (history, verdicts, junit) from a hand-built history of the handbuilt shop model."""
    from handbuilt import SHOP, compensated_shop_saga, completed_shop_saga, snapshots
    from saga_harness.model import SagaModel

    model = SagaModel.model_validate(SHOP)
    b = HistoryBuilder()
    completed_shop_saga(b, sid=f"s1{EVIL}")
    compensated_shop_saga(b)
    if broken:
        b.entries = [e for e in b.entries if not (e["type"] == "event" and e["event"]["type"] == "shop.released")]
    snapshots(
        b,
        mails=[{"saga_id": f"s1{EVIL}", "event_id": "m1"}],
        orders=[{"saga_id": f"s1{EVIL}", "status": "confirmed"}, {"saga_id": "s2", "status": "cancelled"}],
    )
    run_dir.mkdir(parents=True)
    with HistoryWriter(shard_path(run_dir)) as w:
        w("meta", run_id=run_dir.name, seed=5, sut=f"shop{EVIL}")
        w("fault", process="nemesis", phase="start", fault={"id": "f1", "kind": "latency", "target": f"a->b{EVIL}"})
        for e in b.entries:
            fields = {k: v for k, v in e.items() if k not in ("mono", "wall", "type", "ref")}
            w(e["type"], **fields)
        w("fault", process="nemesis", phase="stop", fault={"id": "f1", "kind": "latency", "target": f"a->b{EVIL}"})
    judge(
        run_dir,
        model,
        {
            "run_id": run_dir.name,
            "seed": 5,
            "sut": f"shop{EVIL}",
            "scenario": "handbuilt",
            "command": "saga-harness run --seed 5",
        },
    )
    from saga_harness.contracts.results import write_section

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
    write_section(
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
    write_section(
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
    return build_report(run_dir)


def test_report_is_one_self_contained_file_with_everything_escaped(tmp_path):
    path = make_run(tmp_path / "bad", broken=True)
    html = path.read_text()
    assert "<script>window.__pwned" not in html and 'onerror="window' not in html
    assert "&lt;script&gt;" in html
    for forbidden in ("http://", "https://", "<link ", 'src="http'):
        assert forbidden not in html.replace("http://www.w3.org", "")
    assert "Invariants violated" in html and "[compensation]" in html
    assert "history.jsonl:" in html  # the evidence lines are quoted


def test_junit_has_a_case_per_invariant_with_violations(tmp_path):
    make_run(tmp_path / "bad", broken=True)
    from saga_harness.contracts.results import read_contracts

    xml = (tmp_path / "bad" / "junit.xml").read_text()
    verdicts = json.loads((tmp_path / "bad" / "verdicts.json").read_text())
    invariants = xml[xml.index('<testsuite name="saga-harness') :]
    assert invariants.count("<testcase") == len(verdicts["checks"]) and "InvariantViolation" in invariants
    assert junit_xml(verdicts, contracts=read_contracts(tmp_path / "bad")) == xml


def test_index_lists_runs_sortably(tmp_path):
    make_run(tmp_path / "runs" / "a-good", broken=False)
    make_run(tmp_path / "runs" / "b-bad", broken=True)
    html = build_index(tmp_path / "runs").read_text()
    assert "a-good/report.html" in html and "b-bad/report.html" in html and "Trends by scenario" in html
    assert "<script>window.__pwned" not in html


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
@pytest.mark.parametrize("broken", [False, True])
def test_report_as_a_person_sees_it(tmp_path, broken):
    from playwright.sync_api import sync_playwright

    path = make_run(tmp_path / ("bad" if broken else "good"), broken=broken)
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
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
        assert page.locator("svg.timeline circle").count() > 0 and page.locator("svg.timeline rect.fault").count() == 1
        if broken:
            assert page.locator(".violation svg.swimlane circle").count() > 0
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
