"""The geometry the report's charts share: axes with readable ticks, and labels that never overlap.

The charts are hand-written SVG, not a plotting library's output, on purpose: the report
is one file that opens offline with no script, every SUT-supplied text in it must be
escaped, and a person hovers a mark to read its value (an SVG ``<title>``). A plotting
library would add a large dependency and draw pictures (no hover, nothing to escape-check),
or a script. What the charts need is small — ticks at round numbers, a unit, labels placed
so they do not collide — and lives here, tested by the report's tests (the browser tests
compare the drawn labels' boxes).

Text sizes are estimates in SVG user units: the report's CSS sets chart text to
:data:`FONT` user units, and :func:`text_width` errs on the wide side, so a label placed
clear of another by this estimate is clear on screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

FONT = 11  # chart text size, in user units (the report's CSS: svg text{font-size:11px})
LINE = 14  # one row of labels
# Characters' advances in ems, on the wide side (DejaVu Sans, the widest common sans-serif);
# a character not listed counts as 0.9 (symbols), or 1.0 beyond ASCII.
_EM = {
    **dict.fromkeys("ijl|!.,:;'`", 0.34),
    **dict.fromkeys("frtI()[]{}/\\- ", 0.44),
    **dict.fromkeys("abcdeghknopqsuvxyz0123456789_", 0.65),
    **dict.fromkeys("mwMW@%…", 1.02),
    **dict.fromkeys("ABCDEFGHJKLNOPQRSTUVXYZ", 0.8),
}


def text_width(text: str, size: float = FONT) -> float:
    """A generous estimate of ``text``'s width at ``size``."""
    return size * sum(_EM.get(c, 0.9 if c.isascii() else 1.0) for c in text) + 2


def clip(text: str, width: float, size: float = FONT) -> str:
    """``text``, cut with an ellipsis to fit ``width``."""
    if text_width(text, size) <= width:
        return text
    text = text[: int(width / (size * 0.34)) + 1]  # no more characters than the narrowest would fit
    while len(text) > 1 and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def fmt(value: float, step: float | None = None) -> str:
    """A tick's number: as many decimals as the step between ticks needs (``1.5``, ``20``, ``0.05``)."""
    step = abs(step) if step else abs(value)
    decimals = 0 if step >= 1 or step == 0 else min(4, math.ceil(-math.log10(step) - 1e-9))
    if decimals and step * 10**decimals % 1 > 1e-6:
        decimals += 1  # a 0.25 step
    text = f"{value:,.{decimals}f}"
    return "0" if text.strip("-0.,") == "" else text


def nice_step(span: float, count: int) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) dividing ``span`` into about ``count`` parts."""
    if span <= 0:
        return 1.0
    raw = span / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw - 1e-12:
            return m * power
    return 10 * power  # pragma: no cover - the loop always returns


def ticks(hi: float, count: int = 4, lo: float = 0.0, whole: bool = False) -> tuple[list[float], float]:
    """Round tick values covering ``lo``..``hi`` (about ``count`` intervals) and the axis top they give
    (``whole``: values counted in whole units, so no step below 1)."""
    step = nice_step(hi - lo, count)
    if whole:
        step = max(1.0, round(step))
    first = math.floor(lo / step) * step
    top = max(first + step, math.ceil(hi / step - 1e-9) * step)
    n = round((top - first) / step)
    return [round(first + i * step, 10) for i in range(n + 1)], top


def time_ticks(duration: float, width: float, unit: str = " s") -> tuple[list[float], float]:
    """Round seconds along a time axis ``width`` long: as many as fit with room between labels."""
    sample = fmt(duration, nice_step(duration, 10)) + unit
    room = text_width(sample) + 24
    count = max(1, min(10, int(width // room)))
    step = nice_step(duration, count)
    values = [round(i * step, 10) for i in range(int(duration / step + 1e-9) + 1)]
    return values, step


@dataclass
class Labels:
    """Where labels went: a new one is placed only where it overlaps none placed before.

    Boxes are kept by horizontal band (:data:`LINE` tall), so a check compares a box with the
    few in its bands, not with every label of the chart."""

    bands: dict[int, list[tuple[float, float, float, float]]] = field(default_factory=dict)  # x0, y0, x1, y1

    @staticmethod
    def _bands(y0: float, y1: float) -> range:
        return range(int(y0 // LINE), int(y1 // LINE) + 1)

    def free(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        return all(
            x1 <= a or x0 >= c or y1 <= b or y0 >= d
            for band in self._bands(y0, y1)
            for a, b, c, d in self.bands.get(band, ())
        )

    def take(self, x0: float, y0: float, x1: float, y1: float) -> None:
        for band in self._bands(y0, y1):
            self.bands.setdefault(band, []).append((x0, y0, x1, y1))

    def place(
        self,
        x: float,
        rows: list[float],
        text: str,
        *,
        left: float,
        right: float,
        gap: float = 3,
        size: float = FONT,
    ) -> tuple[float, float, str] | None:
        """The first row (a text baseline) where ``text`` fits beside ``x`` — starting ``gap`` after it, or
        ending ``gap`` before it when it would cross ``right`` — as (x, baseline, anchor); None when no
        row has room."""
        w = text_width(text, size)
        if x + gap + w <= right:
            x0, anchor = x + gap, "start"
        else:
            x0, anchor = max(left, x - gap - w), "end"
        tx = x0 if anchor == "start" else x0 + w
        for y in rows:
            box = (x0, y - size, x0 + w, y + 3)
            if self.free(*box):
                self.take(*box)
                return tx, y, anchor
        return None


def text(x: float, y: float, body: str, cls: str, anchor: str = "start", title: str | None = None) -> str:
    """One ``<text>``, escaped (with a hover title when given)."""
    hover = f"<title>{escape(title)}</title>" if title else ""
    a = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}"{a}>{hover}{escape(body)}</text>'


def polylines(points: list[tuple[float, float] | None], cls: str) -> list[str]:
    """A series as polylines, broken where a value is missing (None); a lone point is a dot."""
    out: list[str] = []
    run: list[tuple[float, float]] = []
    for p in [*points, None]:
        if p is not None:
            run.append(p)
            continue
        if len(run) == 1:
            out.append(f'<circle class="dot {cls}" cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="2"/>')
        elif run:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            out.append(f'<polyline class="series {cls}" points="{path}"/>')
        run = []
    return out
