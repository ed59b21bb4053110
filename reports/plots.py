"""Plots as inline SVG: no script, no CDN; hover any mark for its value (SVG <title>).

Every function returns markup built with ``html.escape`` on every text, so
SUT-supplied names (links, processes, event types) render as text.
"""

from __future__ import annotations

from html import escape

from saga_harness.history import CapturedEvent, Completion, Entry, Invoke, StatusSeen
from saga_harness.reports.timeline import FaultSpan, Figures

W, PAD = 900, 50


def _x(t: float, duration: float) -> float:
    return PAD + (W - 2 * PAD) * min(1.0, max(0.0, t / duration if duration > 0 else 0))


def timeline(figures: Figures) -> str:
    """Fault windows (one lane per target) over throughput, latency and sagas in flight, one time axis."""
    dur = max(figures.duration, 1.0)
    seconds = int(dur) + 1
    started = [figures.started_per_s.get(s, 0) for s in range(seconds)]
    finished = [figures.finished_per_s.get(s, 0) for s in range(seconds)]
    p50 = []
    p99 = []
    for s in range(seconds):
        lat = sorted(figures.latency_ms.get(s, []))
        p50.append(lat[len(lat) // 2] if lat else None)
        p99.append(lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None)
    inflight, running = [], 0
    for s in range(seconds):
        running += started[s] - finished[s]
        inflight.append(max(running, 0))
    lanes = sorted({f.target for f in figures.faults})
    lane_h = 22
    top = 20 + lane_h * len(lanes)
    chart_h = 120
    height = top + 3 * (chart_h + 30) + 30
    out = [
        f'<svg class="timeline" viewBox="0 0 {W} {height}" width="100%" role="img" '
        f'aria-label="fault timeline over throughput, latency and sagas in flight">'
    ]
    for i, lane in enumerate(lanes):
        y = 20 + i * lane_h
        out.append(f'<text x="4" y="{y + 14}" class="lane">{escape(lane[:24])}</text>')
        for fault in (f for f in figures.faults if f.target == lane):
            x0, x1 = _x(fault.start, dur), _x(max(fault.end, fault.start + 0.2), dur)
            label = f"{fault.kind} on {lane}: {fault.start:.1f}s–{fault.end:.1f}s"
            out.append(
                f'<rect class="fault fault-{escape(fault.kind)}" x="{x0:.1f}" y="{y}" '
                f'width="{max(x1 - x0, 2):.1f}" height="{lane_h - 4}"><title>{escape(label)}</title></rect>'
            )

    def series(y0: float, name: str, lines: list[tuple[str, list[float | None]]], unit: str) -> None:
        values = [v for _n, vs in lines for v in vs if v is not None]
        vmax = max(values + [1.0])
        out.append(f'<text x="4" y="{y0 - 6}" class="axis">{escape(name)} (max {vmax:.0f}{unit})</text>')
        out.append(f'<line x1="{PAD}" y1="{y0 + chart_h}" x2="{W - PAD}" y2="{y0 + chart_h}" class="axis-line"/>')
        for cls, vs in lines:
            pts = [(_x(s + 0.5, dur), y0 + chart_h - chart_h * (v / vmax)) for s, v in enumerate(vs) if v is not None]
            if pts:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
                out.append(f'<polyline class="series {cls}" points="{path}"/>')
            for s, v in enumerate(vs):
                if v is not None:
                    x, y = _x(s + 0.5, dur), y0 + chart_h - chart_h * (v / vmax)
                    out.append(
                        f'<circle class="dot {cls}" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                        f"<title>{escape(cls)} at {s}s: {v:.1f}{unit}</title></circle>"
                    )

    y = top + 30
    series(y, "sagas started / finished per second", [("started", started), ("finished", finished)], "")
    y += chart_h + 30
    series(y, "request latency p50 / p99", [("p50", p50), ("p99", p99)], " ms")
    y += chart_h + 30
    series(y, "sagas in flight", [("inflight", inflight)], "")
    for s in range(0, seconds, max(1, seconds // 10)):
        out.append(f'<text x="{_x(s, dur):.1f}" y="{height - 8}" class="tick">{s}s</text>')
    out.append("</svg>")
    return "\n".join(out)


def histogram(values: list[float], label: str, bins: int = 20) -> str:
    """Distribution of ``values`` (e.g. time to converge), hover for counts."""
    if not values:
        return '<p class="muted">no data</p>'
    lo, hi = min(values), max(values)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    h, cmax = 140, max(counts)
    bw = (W - 2 * PAD) / bins
    out = [f'<svg class="histogram" viewBox="0 0 {W} {h + 40}" width="100%" role="img" aria-label="{escape(label)}">']
    for i, c in enumerate(counts):
        bh = h * c / cmax
        a, b = lo + i * width, lo + (i + 1) * width
        out.append(
            f'<rect class="bar" x="{PAD + i * bw:.1f}" y="{h - bh + 10:.1f}" width="{bw - 2:.1f}" '
            f'height="{bh:.1f}"><title>{a:.2f}–{b:.2f}s: {c} saga(s)</title></rect>'
        )
    out.append(f'<text x="{PAD}" y="{h + 32}" class="tick">{lo:.2f}s</text>')
    out.append(f'<text x="{W - PAD - 40}" y="{h + 32}" class="tick">{hi:.2f}s</text>')
    out.append("</svg>")
    return "\n".join(out)


def _lane(entry: Entry) -> str:
    """An event's lane is its source (the service that emitted it); any other line's, its writer."""
    if isinstance(entry.record, CapturedEvent):
        return str(entry.record.event.get("source", "events"))
    return entry.process or "client"


def _label(entry: Entry) -> str:
    record = entry.record
    if isinstance(record, CapturedEvent):
        return str(record.event.get("type"))
    if isinstance(record, StatusSeen):
        return f"state {record.state}"
    if isinstance(record, Completion):
        return f"{record.outcome} {record.f} {record.status if record.status is not None else ''}"
    if isinstance(record, Invoke):
        return f"invoke {record.f}"
    return record.type


def swimlane(entries: list[Entry], faults: list[FaultSpan], t0: float) -> str:
    """One saga across services: a lane per process / event source, a mark per observation."""
    if not entries:
        return '<p class="muted">no history lines mention this saga</p>'
    lanes = list(dict.fromkeys(_lane(e) for e in entries))
    start, end = entries[0].wall, entries[-1].wall
    dur = max(end - start, 0.001)
    lane_h = 28
    height = 30 + lane_h * len(lanes)
    out = [f'<svg class="swimlane" viewBox="0 0 {W} {height}" width="100%" role="img" aria-label="saga trace">']
    for fault in faults:
        fs, fe = fault.start + t0 - start, fault.end + t0 - start
        if fe < 0 or fs > dur:
            continue
        x0, x1 = _x(max(fs, 0), dur), _x(min(fe, dur), dur)
        out.append(
            f'<rect class="fault-band" x="{x0:.1f}" y="0" width="{max(x1 - x0, 2):.1f}" height="{height}">'
            f"<title>{escape(fault.kind)} on {escape(fault.target)}</title></rect>"
        )
    for i, lane in enumerate(lanes):
        y = 20 + i * lane_h
        out.append(f'<text x="4" y="{y + 4}" class="lane">{escape(lane[:26])}</text>')
        out.append(f'<line x1="{PAD + 120}" y1="{y}" x2="{W - 10}" y2="{y}" class="lane-line"/>')
    for e in entries:
        y = 20 + lanes.index(_lane(e)) * lane_h
        x = PAD + 120 + (W - 10 - PAD - 120) * ((e.wall - start) / dur)
        text = f"{_label(e)} @ +{e.wall - start:.3f}s ({e.ref})"
        out.append(
            f'<circle class="mark mark-{escape(e.record.type)}" cx="{x:.1f}" cy="{y}" r="5">'
            f"<title>{escape(text)}</title></circle>"
        )
    out.append("</svg>")
    return "\n".join(out)
