"""The report a person reads: tables rather than Python's dict text, charts with axes, ticks, units
and labelled markers, a timeline that starts with the workload, swimlanes that say what each mark
is and draw a missing compensation where it belonged, a run index with dates and trends apart for
seeded bugs, and a print stylesheet. Read from the HTML here; `test_in_browser.py` looks at it."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from handbuilt import SHOP, compensated_shop_saga, completed_shop_saga, snapshots
from saga_harness.checkers import RunInfo, run_checks
from saga_harness.history import read_history
from saga_harness.model import SagaModel
from saga_harness.reports import build_run_index, write_reports
from saga_harness.reports.plots import MAX_BUCKETS, bucket_width, histogram
from saga_harness.reports.screenshot import KILL, STARTUP_S
from saga_harness.reports.svg import Labels, fmt, text_width, ticks
from saga_harness.reports.timeline import compute
from saga_harness.testing import HistoryBuilder

SHOP_MODEL = SagaModel.model_validate(SHOP)
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?$")


def page_of(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text()


def charts(page: str, kind: str) -> list[ET.Element]:
    """Each ``<svg class="chart {kind}">`` of the page, parsed."""
    return [ET.fromstring(m) for m in re.findall(rf'<svg class="chart {kind}".*?</svg>', page, flags=re.S)]


def texts(svg: ET.Element, cls: str) -> list[str]:
    return ["".join(t.itertext()).strip() for t in svg.iter("text") if cls in (t.get("class") or "").split()]


def visible_text(page: str) -> str:
    """What a reader sees: the page without its style, scripts and quoted history lines, unescaped."""
    page = re.sub(r"<(style|script|pre|title)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


# -- 1. tables, not dict text --------------------------------------------------------------------
def test_no_python_dict_or_list_text_leaks_into_the_page(busy):
    page = page_of(busy)
    seen = visible_text(page)
    for pattern in ("{'", "': ", "['", "']"):
        assert pattern not in seen, pattern
    outside_evidence = re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)
    assert "{&#39;" not in outside_evidence and "&#39;: " not in outside_evidence
    assert re.search(r"completed \d+ · compensated \d+", seen)  # the outcomes, in words
    table = page[page.index('id="by-trigger"') :].split("</table>")[0]
    assert re.search(r"<th class=\"n\">completed</th><th class=\"n\">compensated</th>", table)
    assert re.search(r"<td>card_declined</td><td class=\"n\">0</td><td class=\"n\">\d+</td>", table)


# -- 2. axes, ticks and units on every chart --------------------------------------------------------
def test_every_timeline_panel_has_numbered_ticks_and_its_unit(busy):
    [svg] = charts(page_of(busy), "timeline")
    assert texts(svg, "unit") == ["sagas/s", "ms", "sagas"]
    ticks_ = texts(svg, "ytick")
    assert len(ticks_) >= 3 * 3 and all(NUMBER.match(t) for t in ticks_), ticks_
    times = texts(svg, "xtick")
    assert len(times) >= 5 and all(t.endswith(" s") and NUMBER.match(t[:-2]) for t in times), times
    assert texts(svg, "legend")[:2] == ["kill", "latency"]  # the fault kinds, then each panel's series
    assert {"started", "finished", "p50", "p99", "in flight"} <= set(texts(svg, "legend"))
    assert any(t.startswith("seconds since the workload started") for t in texts(svg, "axis-title"))


def test_the_histogram_has_count_ticks_time_ticks_and_marks_p50_p99_max(busy):
    page = page_of(busy)
    [svg] = charts(page, "histogram")
    assert texts(svg, "unit") == ["sagas"] and len(texts(svg, "ytick")) >= 3
    assert len(texts(svg, "xtick")) >= 4  # more than its two ends
    marks = texts(svg, "marker-label")
    assert [m.split()[0] for m in marks] == ["p50", "p99", "max"], marks
    assert "p50 0.368 s" in marks  # the verdicts' figures (the scorecard's), to three figures
    lines = [ln.get("class") for ln in svg.iter("line") if "marker" in (ln.get("class") or "")]
    assert lines == ["marker marker-p50", "marker marker-p99", "marker marker-max"]


def test_histogram_marks_its_own_percentiles_when_none_are_given():
    svg = ET.fromstring(histogram([1.0] * 98 + [5.0, 9.0], "seconds"))
    assert texts(svg, "marker-label") == ["p50 1 s", "p99 9 s", "max 9 s"]  # p99 and max: one row each


# -- 3. the timeline starts at the workload's start, buckets fitted to the run ---------------------
def test_the_timeline_starts_at_the_workload_start_and_says_so(busy):
    figures = compute(busy, set())
    assert figures.startup_s == pytest.approx(STARTUP_S, abs=0.01)
    assert min(figures.started) >= 0 and min(figures.started) < 0.2
    [kill] = [f for f in figures.faults if f.kind == "kill"]
    assert kill.start == pytest.approx(KILL["at_s"], abs=0.01)  # on the workload's clock
    assert "the 3.2 s of start-up before it" in visible_text(page_of(busy))


def test_a_history_without_a_workload_start_starts_at_its_first_line(tmp_path):
    b = HistoryBuilder()
    b.meta("plain", sut="shop")
    b.wait(2)
    completed_shop_saga(b)
    b.write(tmp_path)
    figures = compute(tmp_path, set())
    assert figures.workload_start is None and figures.startup_s == 0 and min(figures.started) > 1.9


@pytest.mark.parametrize("duration", [0.5, 4, 13, 16.6, 60, 130, 900, 3600, 12 * 3600])
def test_the_bucket_width_gives_60_to_120_buckets(duration):
    width = bucket_width(duration)
    assert 48 <= duration / width <= MAX_BUCKETS, (duration, width)


def test_a_13_second_run_has_a_latency_curve_not_one_point(busy):
    [svg] = charts(page_of(busy), "timeline")
    assert float(svg.get("data-bucket-s")) == 0.2
    p50 = [p for p in svg.iter("polyline") if "p50" in p.get("class")]
    points = sum(len(p.get("points").split()) for p in p50)
    assert points >= 30, points


# -- 5. swimlanes: axis, legend, labels, the missing compensation ----------------------------------
def shop_run(run_dir: Path, build) -> Path:  # noqa: ANN001 - a function of the builder
    b = HistoryBuilder()
    b.meta(run_dir.name, sut="shop", seed=3)
    build(b)
    b.write(run_dir)
    verdicts = run_checks(read_history(run_dir), SHOP_MODEL, ["compensation"])
    verdicts.with_run(RunInfo(run_dir.name, sut="shop", seed=3)).write(run_dir)
    return write_reports(run_dir).html  # type: ignore[return-value]


def test_a_swimlane_has_a_time_axis_a_legend_and_every_mark_labelled(tmp_path):
    def never_released(b: HistoryBuilder) -> None:
        compensated_shop_saga(b, "s2")
        b.entries = [e for e in b.entries if not (e["type"] == "event" and e["event"]["type"] == "shop.released")]

    page = shop_run(tmp_path / "run", never_released).read_text()
    svg = charts(page, "swimlane")[0]  # the first finding's: reserve done and never undone
    times = texts(svg, "xtick")
    assert times[0] == "+0 s" and len(times) >= 4 and all(t.endswith(" s") for t in times)
    assert texts(svg, "axis-title") == ["seconds from the saga's first line"]
    marks = [m for m in svg.iter() if "mark" in (m.get("class") or "").split()]
    assert marks and all(m.find("title") is not None for m in marks)  # each on hover
    labels = texts(svg, "mark-label")
    for words in ("start_saga sent", "start_saga answered 202", "shop.reserved", "RESERVING", "UNDONE → compensated"):
        assert words in labels, (words, labels)
    legend = page[page.index('<ul class="legend">') :].split("</ul>")[0]
    for item in ("request sent", "answer", "event (by its source)", "status read", "final status → outcome"):
        assert item in legend
    # The release that never came, drawn where it belonged: a dashed mark on the reserving service's lane.
    assert texts(svg, "expected-label") == ["expected: undo reserve"]
    [expected] = [m for m in marks if "m-expected" in m.get("class")]
    assert "expected: release after reserve completed" in expected.find("title").text
    assert "expected, not in the history" in legend
    # Its second finding (the stock left over) names the same saga: it points to the drawing, not a copy.
    assert page.count('<svg class="chart swimlane"') == 1 and 'href="#finding-0">(drawn above)' in page


def test_compensations_out_of_order_are_ringed_and_the_right_place_drawn(tmp_path):
    def reversed_undo(b: HistoryBuilder) -> None:
        sid = "s9"
        b.saga(sid, trigger="declined")
        b.event("shop.reserved", sid, total=50, items=[{"sku": "A", "qty": 2}])
        b.event("shop.charged", sid, amount=50)
        b.event("shop.released", sid, items=[{"sku": "A", "qty": 2}], applied=True)
        b.event("shop.refunded", sid, amount=50, applied=True)
        b.status(sid, "UNDONE", "compensated")

    page = shop_run(tmp_path / "run", reversed_undo).read_text()
    svg = charts(page, "swimlane")[0]
    assert texts(svg, "expected-label") == ["expected: undo reserve here"]
    [ring] = [c for c in svg.iter("circle") if c.get("class") == "wrong"]
    assert "out of order" in ring.find("title").text
    assert "out of order" in page[page.index('<ul class="legend">') :].split("</ul>")[0]


def test_one_card_per_finding_lists_its_sagas_and_each_traces_a_saga_not_drawn_before(busy):
    page = page_of(busy)
    cards = re.findall(r'<div class="violation violated"[^>]*data-saga="([^"]*)"', page)
    assert len(cards) == 3 and len(set(cards)) == 3, cards  # three findings, three different sagas
    assert page.count('<table class="sagas">') == 3 and page.count('<svg class="chart swimlane"') == 3
    first = page[page.index('<div class="violation violated"') :]
    first = first[: first.index("</table>")]
    assert len(re.findall(r"<td><code>order-\d+</code>", first)) == 5  # its first five sagas, one a row


# -- 6. the run index -----------------------------------------------------------------------------
def judged_run(run_dir: Path, *, bugs: str | None, started_at: float, scenario: str = "handbuilt") -> None:
    b = HistoryBuilder(start=started_at)
    b.meta(run_dir.name, sut="shop", seed=5, bugs=bugs)
    completed_shop_saga(b, "s1")
    compensated_shop_saga(b, "s2")
    snapshots(b)
    b.write(run_dir)
    run = RunInfo(run_dir.name, sut="shop", seed=5, scenario=scenario, bugs=bugs, started_at=started_at)
    run_checks(read_history(run_dir), SHOP_MODEL, ["compensation", "outcome"]).with_run(run).write(run_dir)
    write_reports(run_dir)


def test_the_index_has_dates_and_trends_for_clean_and_seeded_bug_runs_apart(tmp_path):
    runs = tmp_path / "runs"
    day = 1_780_000_000.0
    judged_run(runs / "clean-1", bugs=None, started_at=day)
    judged_run(runs / "clean-2", bugs=None, started_at=day + 3600)
    judged_run(runs / "bug-1", bugs="payment.double_charge", started_at=day + 7200, scenario="bugs-only")
    page = build_run_index(runs).read_text()
    head = re.search(r"<thead><tr>(.*?)</tr></thead>", page).group(1)
    columns = re.findall(r">([^<]+)</th>", head)
    assert columns[:6] == ["date", "run", "verdict", "SUT", "scenario", "seed"]
    dates = re.findall(r"<td class='date' data-v='(\d+)'>(\d{4}-\d\d-\d\d \d\d:\d\d)</td>", page)
    assert [int(v) for v, _d in dates] == [int(day) + 7200, int(day) + 3600, int(day)]  # newest first
    clean = page[page.index('id="trends-clean"') :].split("</table>")[0]
    seeded = page[page.index('id="trends-bugs"') :].split("</table>")[0]
    assert "handbuilt" in clean and "bugs-only" not in clean
    assert "bugs-only" in seeded and "handbuilt" not in seeded
    assert "{'" not in visible_text(page) and "[0.0" not in visible_text(page)


# -- 7. print -------------------------------------------------------------------------------------
def test_the_print_stylesheet_drops_dark_backgrounds_and_keeps_cards_whole(busy):
    page = page_of(busy)
    css = page[page.index("@media print{") :].split("</style>")[0]
    assert re.search(r"header\{background:#fff !important;color:#1d2330", css)
    assert re.search(r"\.violation,\.card,svg\.chart[^{]*\{break-inside:avoid", css)
    assert "@media print" in build_run_index(busy.parent).read_text()


# -- the geometry the charts share ----------------------------------------------------------------
def test_ticks_are_round_and_cover_the_range():
    assert ticks(87, 4) == ([0, 25, 50, 75, 100], 100)
    assert ticks(0.37, 4)[0] == [0, 0.1, 0.2, 0.3, 0.4]
    assert ticks(1, 4, whole=True) == ([0, 1], 1)  # a count: no quarter sagas
    assert [fmt(v, 0.25) for v in (0, 0.25, 1.5)] == ["0", "0.25", "1.50"]  # zero is 0
    assert fmt(1500, 500) == "1,500" and fmt(0.05, 0.05) == "0.05"


def test_labels_are_placed_in_the_first_row_where_they_overlap_none():
    labels = Labels()
    rows = [10.0, 24.0, 38.0]
    first = labels.place(100, rows, "reserve.done", left=0, right=1000)
    second = labels.place(104, rows, "charge.done", left=0, right=1000)
    far = labels.place(100 + text_width("reserve.done") + 10, rows, "x", left=0, right=1000)
    assert first[1] == 10 and second[1] == 24 and far[1] == 10
    assert labels.place(995, rows, "at the edge", left=0, right=1000)[2] == "end"  # ends before the edge


def test_a_run_with_nothing_to_plot_says_so_instead_of_empty_axes(tmp_path):
    run_dir = tmp_path / "empty"
    b = HistoryBuilder()
    b.meta("empty")
    b.write(run_dir)
    run_checks(read_history(run_dir), SHOP_MODEL, ["outcome"]).with_run(RunInfo("empty")).write(run_dir)
    seen = visible_text(write_reports(run_dir).html.read_text())  # type: ignore[union-attr]
    assert "Nothing to plot: the history has no request" in seen and "— (no saga ended)" in seen
    assert not re.search(r"(seed|SUT)\s+None", seen)  # an unknown seed or SUT is "—"
