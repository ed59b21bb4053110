"""Looking at a page as a person does: headless Chromium at 1280×900, and what it measures there.

The ``browser`` fixture (skipped, with the reason, where no Chromium is installed) opens a file
(:meth:`Browser.open`) and measures what is drawn: what sticks out of the page sideways
(:meth:`Browser.layout_problems`), and a chart's labels drawn over each other
(:meth:`Browser.overlapping_labels`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from saga_harness.reports.screenshot import CHROMIUM_ARGS, VIEWPORT, chromium

# The same browser, flags and page size the README's screenshot is taken with.
CHROMIUM = chromium()

# Every visible element's box against the page's width (nothing may stick out sideways).
_LAYOUT_JS = """() => {
  const width = document.documentElement.clientWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > width + 1 || r.left < -1) {
      const cls = typeof el.className === 'string' ? el.className : el.className.baseVal;
      out.push(`${el.tagName.toLowerCase()}.${cls} [${Math.round(r.left)}, ${Math.round(r.right)}]`);
    }
  }
  return {width, scrollWidth: document.documentElement.scrollWidth, outside: out.slice(0, 20)};
}"""

# Pairs of <text> in one chart whose drawn boxes overlap (by more than half a pixel each way).
_OVERLAP_JS = """() => {
  const out = [];
  document.querySelectorAll('svg.chart').forEach((svg, k) => {
    const texts = [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()]);
    for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
      const [ta, a] = texts[i], [tb, b] = texts[j];
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 0.5 && h > 0.5) out.push(`${svg.getAttribute('class')} #${k}: "${ta}" / "${tb}"`);
    }
  });
  return out;
}"""


class Browser:
    """Headless Chromium at 1280×900, and what it measures on a page."""

    def __init__(self, chromium: Any) -> None:
        self.chromium = chromium
        self.errors: list[str] = []  # console and page errors, of every page opened
        self.requests: list[str] = []  # every URL a page asked for

    def open(self, path: Path, media: str = "screen") -> Any:
        page = self.chromium.new_page(viewport=VIEWPORT)
        page.emulate_media(media=media)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))
        page.goto(Path(path).resolve().as_uri())
        return page

    @staticmethod
    def layout_problems(page: Any) -> list[str]:
        """What sticks out of the page sideways (empty when everything is inside the viewport)."""
        got = page.evaluate(_LAYOUT_JS)
        problems = list(got["outside"])
        if got["scrollWidth"] > got["width"]:
            problems.append(f"the page scrolls sideways: {got['scrollWidth']} px wide in a {got['width']} px window")
        return problems

    @staticmethod
    def overlapping_labels(page: Any) -> list[str]:
        """Every pair of a chart's text labels drawn over each other."""
        return page.evaluate(_OVERLAP_JS)


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README screenshot's run, reports written: 13 s of workload after 3.2 s of start-up, two
    faults, completed and compensated sagas, three findings (a double charge, a missing release,
    money left over)."""
    from saga_harness.reports import write_reports
    from saga_harness.reports.screenshot import demo_run

    run_dir = tmp_path_factory.mktemp("busy") / "demo"
    demo_run(run_dir)
    write_reports(run_dir)
    return run_dir


@pytest.fixture
def chromium_path() -> str:
    """Where headless Chromium is; the test is skipped, with the reason, where it is not installed."""
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Browser]:
    """Headless Chromium, for the test's pages."""
    from playwright.sync_api import sync_playwright  # here: only the browser tests need it, and it is slow to import

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield Browser(chromium)
        finally:
            chromium.close()
