"""The run's charts as inline SVG: the fault timeline over throughput, latency and sagas in
flight, and the time-to-converge histogram. No script, no CDN; hover a bucket or a bar for
its values (SVG ``<title>``).

Hand-written SVG (why: :mod:`saga_harness.reports.svg`). Every chart has numbered y ticks
with the unit, time ticks in seconds, and a legend; every text is escaped (SUT-supplied
names — links, processes — render as text) and placed where it overlaps no other.

The timeline's clock starts at the workload's start
(:attr:`~saga_harness.reports.timeline.Figures.origin`), and its bucket width is fitted to
the run's length (:func:`bucket_width`: at most :data:`MAX_BUCKETS` buckets), so a 13 s run
has a latency curve, not one point, and an hour's soak is not 3,600 dots.
"""

from __future__ import annotations

import math
from html import escape

from saga_harness.reports.svg import (
    FONT,
    LINE,
    Labels,
    clip,
    fmt,
    nice_step,
    polylines,
    text,
    text_width,
    ticks,
    time_ticks,
)
from saga_harness.reports.timeline import Figures

W = 1000  # the charts' width, in user units
LEFT, RIGHT = 150, 24  # room for lane names and y ticks; for the last time tick
PANEL_H, PANEL_GAP = 100, 46
LANE_H = 18
MAX_BUCKETS = 120
BUCKET_WIDTHS = (
    0.005,
    0.01,
    0.02,
    0.025,
    0.05,
    0.1,
    0.2,
    0.25,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
)
FAULT_COLOURS = {"kill": "kill", "cut": "kill", "partition": "kill", "pause": "pause"}  # else "other"
TIME_AXIS = "seconds since the workload started"


def bucket_width(duration: float) -> float:
    """The narrowest round bucket (seconds) that divides ``duration`` into at most :data:`MAX_BUCKETS`."""
    for w in BUCKET_WIDTHS:
        if duration / w <= MAX_BUCKETS:
            return float(w)
    return float(math.ceil(duration / MAX_BUCKETS / 3600) * 3600)


def _pct(values: list[float], q: float) -> float:
    """The checkers' percentile (the value at index q·n of the sorted values)."""
    return values[min(len(values) - 1, int(q * len(values)))]


class _Series:
    """The timeline's values per bucket."""

    def __init__(self, figures: Figures, width: float, count: int) -> None:
        def per_bucket(times: list[float]) -> list[int]:
            counts = [0] * count
            for t in times:
                if t >= 0:
                    counts[min(count - 1, int(t / width))] += 1
            return counts

        started, finished = per_bucket(figures.started), per_bucket(figures.finished)
        self.started = [c / width for c in started]
        self.finished = [c / width for c in finished]
        lat: list[list[float]] = [[] for _ in range(count)]
        for t, s in figures.latency:
            if t >= 0:
                lat[min(count - 1, int(t / width))].append(s)
        for bucket in lat:
            bucket.sort()
        top = max((b[-1] for b in lat if b), default=0.0)
        self.latency_unit, self.latency_scale = ("ms", 1000.0) if top < 1 else ("s", 1.0)
        self.p50 = [_pct(b, 0.5) * self.latency_scale if b else None for b in lat]
        self.p99 = [_pct(b, 0.99) * self.latency_scale if b else None for b in lat]
        before = sum(1 for t in figures.started if t < 0) - sum(1 for t in figures.finished if t < 0)
        self.inflight: list[float] = []
        running = max(before, 0)
        for a, b in zip(started, finished, strict=True):
            running = max(running + a - b, 0)
            self.inflight.append(float(running))


def _legend(
    out: list[str], labels: Labels, right: float, y: float, items: list[tuple[str, str]], swatch: str = "line"
) -> None:
    """A legend ending at ``right`` on baseline ``y``: each item's colour (a short line, or a box) and name."""
    drawn: list[str] = []
    x = right
    for cls, name in reversed(items):
        w = text_width(name)
        x -= w
        labels.take(x, y - FONT, x + w, y + 3)
        item = [text(x, y, name, "legend")]
        if swatch == "line":
            x -= 22
            item.insert(0, f'<line class="key {cls}" x1="{x:.1f}" y1="{y - 4}" x2="{x + 16:.1f}" y2="{y - 4}"/>')
        else:
            x -= 16
            item.insert(0, f'<rect class="{cls}" x="{x:.1f}" y="{y - 10}" width="12" height="10"/>')
        x -= 14
        drawn[:0] = item
    out.extend(drawn)


def _fault_class(kind: str) -> str:
    return FAULT_COLOURS.get(kind, "other")


def timeline(figures: Figures) -> str:
    """Fault windows (one lane per target) over throughput, latency and sagas in flight, on one time axis."""
    if not (figures.started or figures.finished or figures.latency or figures.faults):
        return '<p class="muted">Nothing to plot: the history has no request, no saga ending and no fault.</p>'
    duration = max(figures.duration, 0.001)
    width = bucket_width(duration)
    count = max(1, math.ceil(duration / width - 1e-9))
    span = count * width  # the axis ends on a bucket's edge
    pw = W - LEFT - RIGHT

    def x(t: float) -> float:
        return LEFT + pw * min(1.0, max(0.0, t / span))

    s = _Series(figures, width, count)
    labels = Labels()
    out: list[str] = []
    lanes = sorted({f.target for f in figures.faults})
    y = 6.0
    if lanes:
        y += LINE
        title = "Faults (one lane per target)"
        out.append(text(LEFT, y, title, "title"))
        labels.take(LEFT, y - FONT, LEFT + text_width(title), y + 3)
        kinds = sorted({f.kind for f in figures.faults})
        _legend(out, labels, W - RIGHT, y, [(f"fault fault-{_fault_class(k)}", k) for k in kinds], swatch="box")
        y += 8
    lanes_top = y
    for i, lane in enumerate(lanes):
        ly = lanes_top + i * LANE_H
        name = clip(lane, LEFT - 12)
        out.append(text(LEFT - 6, ly + 13, name, "lane", "end", title=lane))
        labels.take(LEFT - 6 - text_width(name), ly + 2, LEFT - 6, ly + 16)
        for fault in (f for f in figures.faults if f.target == lane):
            x0, x1 = x(fault.start), x(max(fault.end, fault.start))
            hover = f"{fault.kind} on {lane}: {fault.start:.1f} s – {fault.end:.1f} s"
            out.append(
                f'<rect class="fault fault-{_fault_class(fault.kind)}" x="{x0:.1f}" y="{ly + 2}" '
                f'width="{max(x1 - x0, 2):.1f}" height="{LANE_H - 4}"><title>{escape(hover)}</title></rect>'
            )
            w = text_width(fault.kind)
            if x1 - x0 >= w + 6 and labels.free(x0 + 3, ly + 2, x0 + 3 + w, ly + 16):
                labels.take(x0 + 3, ly + 2, x0 + 3 + w, ly + 16)
                out.append(text(x0 + 3, ly + 13, fault.kind, "fault-label"))
    y = lanes_top + len(lanes) * LANE_H + (PANEL_GAP if lanes else 34)
    panels = [
        (
            "Sagas started and finished",
            "sagas/s",
            [("started", "started", s.started), ("finished", "finished", s.finished)],
        ),
        (
            "Request latency",
            s.latency_unit,
            [("p50", "p50", s.p50), ("p99", "p99", s.p99)],
        ),
        ("Sagas in flight", "sagas", [("inflight", "in flight", s.inflight)]),
    ]
    first_top = y
    for title, unit, lines in panels:
        values = [v for _c, _n, vs in lines for v in vs if v is not None]
        label = f"{title} ({unit})"
        out.append(text(LEFT, y - 12, label, "title"))
        labels.take(LEFT, y - 12 - FONT, LEFT + text_width(label), y - 9)
        _legend(out, labels, W - RIGHT, y - 12, [(c, n) for c, n, _vs in lines])
        axis, top = _y_axis(labels, y, max(values, default=0.0) or 1.0, unit, whole=unit == "sagas")
        out.extend(axis)
        for cls, _name, vs in lines:
            pts = [None if v is None else (x((i + 0.5) * width), y + PANEL_H * (1 - v / top)) for i, v in enumerate(vs)]
            out.extend(polylines(pts, cls))
        y += PANEL_H + PANEL_GAP
    bottom = y - PANEL_GAP
    values, step = time_ticks(span, pw)
    grid_top = lanes_top if lanes else first_top
    grid, tick_text = [], []
    for t in values:
        tx = x(t)
        grid.append(f'<line class="vgrid" x1="{tx:.1f}" y1="{grid_top:.1f}" x2="{tx:.1f}" y2="{bottom:.1f}"/>')
        tick_text.append(text(tx, bottom + 19, f"{fmt(t, step)} s", "xtick", "middle"))
    out.append(text(W - RIGHT, bottom + 36, f"{TIME_AXIS} (buckets of {fmt(width, width)} s)", "axis-title", "end"))
    for i in range(count):
        a = i * width
        hover = (
            f"{fmt(a, width)}–{fmt(a + width, width)} s: {s.started[i]:.1f} started/s, {s.finished[i]:.1f} finished/s"
            + (f", latency p50 {s.p50[i]:.3g} {s.latency_unit}" if s.p50[i] is not None else "")
            + (f", p99 {s.p99[i]:.3g} {s.latency_unit}" if s.p99[i] is not None else "")
            + f", {s.inflight[i]:.0f} in flight"
        )
        out.append(
            f'<rect class="hover" x="{x(a):.1f}" y="{first_top:.1f}" width="{pw / count:.2f}" '
            f'height="{bottom - first_top:.1f}"><title>{escape(hover)}</title></rect>'
        )
    height = bottom + 44
    head = (
        f'<svg class="chart timeline" viewBox="0 0 {W} {height:.0f}" width="100%" role="img" '
        f'aria-label="fault timeline over throughput, latency and sagas in flight" data-bucket-s="{width:g}">'
    )
    return "\n".join([head, *grid, *out, *tick_text, "</svg>"])


def _y_axis(labels: Labels, top: float, vmax: float, unit: str, whole: bool) -> tuple[list[str], float]:
    """Gridlines and numbered ticks for a panel (``top`` down :data:`PANEL_H`), the unit above them."""
    values, axis_top = ticks(vmax, 4, whole=whole)
    step = values[1] - values[0] if len(values) > 1 else 1.0
    out = [text(LEFT - 6, top - 12, unit, "unit", "end")]
    labels.take(LEFT - 6 - text_width(unit), top - 12 - FONT, LEFT - 6, top - 9)
    for v in values:
        y = top + PANEL_H - PANEL_H * v / axis_top
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}"/>')
        label = fmt(v, step)
        out.append(text(LEFT - 6, y + 4, label, "ytick", "end"))
        labels.take(LEFT - 6 - text_width(label), y + 4 - FONT, LEFT - 6, y + 7)
    return out, axis_top


def _figure(v: float) -> str:
    """A measured value to three significant figures (``0.318``, ``5.03``, ``123``)."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def histogram(
    values: list[float],
    label: str,
    marks: dict[str, float | None] | None = None,
    unit: str = "s",
    count_unit: str = "sagas",
) -> str:
    """The distribution of ``values`` (seconds: time to converge), with ``marks`` (p50, p99, max — of the
    values unless given) drawn as labelled lines; hover a bar for its range and count."""
    if not values:
        return '<p class="muted">no data</p>'
    vals = sorted(values)
    lo, hi = vals[0], vals[-1]
    left, right, rows, plot_h = 70, RIGHT, 3, 140
    pw = W - left - right
    axis_lo = 0.0 if lo < 0.5 * hi or hi <= 0 else lo
    xt, top = ticks(hi if hi > axis_lo else axis_lo + 1, 5, axis_lo)
    axis_lo = xt[0]
    bw = nice_step(top - axis_lo, 40)
    nbins = max(1, round((top - axis_lo) / bw))
    counts = [0] * nbins
    for v in vals:
        counts[min(nbins - 1, max(0, int((v - axis_lo) / bw)))] += 1

    def x(v: float) -> float:
        return left + pw * (v - axis_lo) / (top - axis_lo)

    labels = Labels()
    plot_top = 8 + rows * LINE + 6
    out: list[str] = []
    ys, cmax = ticks(max(counts), 4, whole=True)
    ystep = ys[1] - ys[0] if len(ys) > 1 else 1
    out.append(text(left - 6, plot_top - 12, count_unit, "unit", "end"))
    labels.take(left - 6 - text_width(count_unit), plot_top - 12 - FONT, left - 6, plot_top - 9)
    for c in ys:
        y = plot_top + plot_h * (1 - c / cmax)
        out.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{W - right}" y2="{y:.1f}"/>')
        t = fmt(c, ystep)
        out.append(text(left - 6, y + 4, t, "ytick", "end"))
        labels.take(left - 6 - text_width(t), y + 4 - FONT, left - 6, y + 7)
    for i, c in enumerate(counts):
        if not c:
            continue
        a = axis_lo + i * bw
        h = plot_h * c / cmax
        hover = f"{fmt(a, bw)}–{fmt(a + bw, bw)} {unit}: {c} {count_unit if c != 1 else count_unit.rstrip('s')}"
        out.append(
            f'<rect class="bar" x="{x(a):.1f}" y="{plot_top + plot_h - h:.1f}" width="{max(pw / nbins - 1, 1):.1f}" '
            f'height="{h:.1f}"><title>{escape(hover)}</title></rect>'
        )
    bottom = plot_top + plot_h
    xstep = xt[1] - xt[0] if len(xt) > 1 else 1
    for v in xt:
        out.append(text(x(v), bottom + 19, f"{fmt(v, xstep)} {unit}", "xtick", "middle"))
    out.append(text(W - right, bottom + 36, label, "axis-title", "end"))
    shown = marks if marks else {}
    own = {"p50": _pct(vals, 0.5), "p99": _pct(vals, 0.99), "max": hi}
    label_rows = [8 + LINE * (r + 1) - 3 for r in range(rows)]
    for name, default in own.items():
        v = shown.get(name)
        v = default if v is None else v
        mx = x(min(max(v, axis_lo), top))
        tag = f"{name} {_figure(v)} {unit}"
        out.append(
            f'<line class="marker marker-{name}" x1="{mx:.1f}" y1="{plot_top - 2}" x2="{mx:.1f}" y2="{bottom}">'
            f"<title>{escape(tag)}</title></line>"
        )
        spot = labels.place(mx, label_rows, tag, left=left, right=W - right)
        if spot is not None:
            tx, ty, anchor = spot
            out.append(text(tx, ty, tag, f"marker-label label-{name}", anchor))
    head = (
        f'<svg class="chart histogram" viewBox="0 0 {W} {bottom + 44:.0f}" width="100%" role="img" '
        f'aria-label="{escape(label)}">'
    )
    return "\n".join([head, *out, "</svg>"])
