"""The report and the run index as a person sees them: headless Chromium at 1280×900.

Nothing sticks out of the page sideways, every chart shows its axis labels, no two labels of a
chart are drawn over each other (their boxes, as drawn, compared), the swimlane's legend is on
screen, printing drops the dark banner and keeps cards whole, and the README's screenshot is
made by a command."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from handbuilt import SHOP, compensated_shop_saga, completed_shop_saga, snapshots
from saga_harness.checkers import RunInfo, run_checks
from saga_harness.history import read_history
from saga_harness.model import SagaModel
from saga_harness.reports import build_run_index, write_reports
from saga_harness.reports.screenshot import main as screenshot
from saga_harness.testing import HistoryBuilder

pytestmark = pytest.mark.browser
LONG = "a-service-name-that-goes-on-and-on-without-a-single-space-" * 3


def long_names_run(run_dir: Path) -> Path:
    """A run whose SUT, fault target, event source and saga id are far too long for their places."""
    b = HistoryBuilder()
    b.meta(run_dir.name, sut=LONG, seed=1)
    b.phase("workload-start")
    with b.faulted("latency", f"{LONG}->{LONG}"):
        completed_shop_saga(b, f"saga-{LONG}")
        compensated_shop_saga(b, "s2")
    for e in b.entries:
        if e["type"] == "event":
            e["event"]["source"] = f"/{LONG}"
    b.entries = [e for e in b.entries if not (e["type"] == "event" and e["event"]["type"] == "shop.released")]
    snapshots(b, mails=[], orders=[])
    b.write(run_dir)
    run = RunInfo(run_dir.name, sut=LONG, seed=1, scenario=LONG, bugs=LONG, command=f"saga-harness run {LONG}")
    run_checks(read_history(run_dir), SagaModel.model_validate(SHOP)).with_run(run).write(run_dir)
    return write_reports(run_dir).html  # type: ignore[return-value]


def test_the_report_at_1280_px_is_inside_the_page_with_no_label_over_another(browser, busy):
    page = browser.open(busy / "report.html")
    assert browser.errors == []
    assert all(u.startswith(("file://", "data:")) for u in browser.requests), browser.requests
    assert browser.layout_problems(page) == []
    assert browser.overlapping_labels(page) == []
    for kind, axis in (("timeline", "ytick"), ("histogram", "ytick"), ("swimlane", "xtick")):
        chart = page.locator(f"svg.chart.{kind}").first
        chart.scroll_into_view_if_needed()
        assert chart.locator(f"text.{axis}").count() >= 3 and chart.locator(f"text.{axis}").first.is_visible()
        assert chart.locator("text.axis-title").first.is_visible(), kind
    units = page.locator("svg.timeline text.unit").all_text_contents()
    assert units == ["sagas/s", "ms", "sagas"]
    assert page.locator("svg.histogram text.marker-label").all_text_contents()[0].startswith("p50 ")
    legend = page.locator(".violation ul.legend").first
    legend.scroll_into_view_if_needed()
    assert legend.is_visible() and "final status → outcome" in legend.inner_text()
    size = page.evaluate("[...document.querySelectorAll('svg.chart text')].map(t => t.getBoundingClientRect().height)")
    assert min(size) >= 11, "chart text readable at 1280 px"


def test_long_names_are_cut_to_fit_not_spilled(browser, tmp_path):
    page = browser.open(long_names_run(tmp_path / "long"))
    assert browser.layout_problems(page) == []
    assert browser.overlapping_labels(page) == []
    lanes = page.locator("svg.swimlane").first.evaluate(
        "s => [...s.querySelectorAll('text.lane')].map(t => [t.lastChild.data, t.querySelector('title').textContent])"
    )
    assert any(shown.endswith("…") and whole == f"/{LONG}" for shown, whole in lanes), lanes  # cut; whole on hover
    assert page.locator("svg.swimlane text.expected-label").first.text_content() == "expected: undo reserve"


def test_printed_the_report_has_no_dark_banner_and_keeps_each_card_whole(browser, busy):
    page = browser.open(busy / "report.html", media="print")
    header = page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
    assert header in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), header
    body = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert body in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), body
    breaks = page.evaluate(
        "[...document.querySelectorAll('.violation, .card')].map(e => getComputedStyle(e).breakInside)"
    )
    assert breaks and set(breaks) == {"avoid"}
    assert len(page.pdf(format="A4")) > 10_000  # it prints


def test_the_run_index_at_1280_px_has_its_date_column(browser, tmp_path):
    runs = tmp_path / "runs"
    for i, bugs in enumerate((None, "payment.double_charge", None)):
        run_dir = runs / f"run-{i}"
        b = HistoryBuilder(start=1_780_000_000.0 + i * 3600)
        b.meta(run_dir.name, sut="shop", seed=i, bugs=bugs)
        completed_shop_saga(b, "s1")
        snapshots(b, orders=[{"saga_id": "s1", "status": "confirmed"}])
        b.write(run_dir)
        info = RunInfo(
            run_dir.name, sut="shop", seed=i, scenario="handbuilt", bugs=bugs, started_at=b.entries[0]["wall"]
        )
        run_checks(read_history(run_dir), SagaModel.model_validate(SHOP), ["outcome"]).with_run(info).write(run_dir)
        write_reports(run_dir)
    page = browser.open(build_run_index(runs))
    assert browser.errors == [] and browser.layout_problems(page) == []
    assert page.locator("#runs th").first.inner_text() == "date"
    dates = page.locator("#runs td.date").all_inner_texts()
    assert len(dates) == 3 and all(d.startswith("2026-") for d in dates)
    assert page.locator("#trends-clean").is_visible() and page.locator("#trends-bugs").is_visible()
    page.get_by_role("columnheader", name="seed", exact=True).click()  # sorts by seed
    assert page.locator("#runs td.date").all_inner_texts() != dates or dates == sorted(dates)


def test_the_readme_screenshot_is_made_by_a_command(chromium_path, tmp_path, capsys):
    out = tmp_path / "docs" / "report.png"
    assert screenshot(["--out", str(out), "--chromium", chromium_path, "--keep", str(tmp_path / "run")]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width == 1280 and 1500 < height < 4000, (width, height)
    assert (tmp_path / "run" / "report.html").exists()
