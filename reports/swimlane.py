"""One saga across the services, as inline SVG: a lane per process or event source, a mark per
observation — each labelled in text and on hover — over a time axis in seconds from the saga's
first line, with the faults active then. Hand-written SVG (why: :mod:`saga_harness.reports.svg`).

Where a compensation finding says what *should* have happened, the swimlane draws it:
a step done and never undone gets a dashed, hollow mark ("expected: undo reserve") on the
lane of the step's own event, after the saga's last event; steps undone (or done) out of
order get a ring on the mark that came too early and a dashed mark where it belonged
(:func:`expectations`). The legend (:func:`legend`) is HTML beside the drawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from saga_harness.checkers.verdict import Violation
from saga_harness.history import CapturedEvent, Completion, Entry, Invoke, StatusSeen
from saga_harness.reports.svg import FONT, LINE, Labels, clip, fmt, text, text_width, time_ticks
from saga_harness.reports.timeline import FaultSpan

W, LEFT, RIGHT = 1000, 150, 24
MAX_ROWS = 16  # label rows a lane may grow to; a mark past them is labelled on hover only
TIME_AXIS = "seconds from the saga's first line"


@dataclass(frozen=True)
class Expectation:
    """A mark for what should have happened: ``label`` drawn beside it, ``detail`` on hover, placed
    just after the line ``after`` (a ref) on the lane of the line ``lane_of``."""

    label: str
    detail: str
    after: str
    lane_of: str


def expectations(v: Violation | None, entries: list[Entry]) -> tuple[list[Expectation], set[str]]:
    """What ``v`` (one instance of a finding, for the saga ``entries`` trace) says should have been
    drawn, and the refs of the marks that came out of order."""
    if v is None or v.checker != "compensation" or not v.step or not entries:
        return [], set()
    cited = sorted((e for e in entries if e.ref in set(v.evidence)), key=lambda e: e.wall)
    if "never undone" in v.actual:
        events = [e for e in entries if isinstance(e.record, CapturedEvent)]
        after = (events or entries)[-1]
        lane = cited[0] if cited else after
        return [Expectation(f"expected: undo {v.step}", f"expected: {v.expected}", after.ref, lane.ref)], set()
    if v.actual.startswith(("undone in the order", "done in the order")) and len(cited) >= 2:
        early, late = cited[0], cited[-1]
        what = f"undo {v.step}" if v.actual.startswith("undone") else v.step
        return [Expectation(f"expected: {what} here", f"expected: {v.expected}", late.ref, early.ref)], {early.ref}
    return [], set()


def _lane(entry: Entry) -> str:
    """An event's lane is its source (the service that emitted it); any other line's, its writer."""
    if isinstance(entry.record, CapturedEvent):
        return str(entry.record.event.get("source", "events"))
    return entry.process or "client"


def _short(event_type: str) -> str:
    """An event type's last two dotted parts (``com.shop.payment.captured`` → ``payment.captured``)."""
    parts = event_type.split(".")
    return ".".join(parts[-2:]) if len(parts) > 2 else event_type


def label_of(entry: Entry) -> tuple[str, str]:
    """(mark class, text) for a line of the trace."""
    record = entry.record
    if isinstance(record, CapturedEvent):
        return "m-event", _short(str(record.event.get("type")))
    if isinstance(record, StatusSeen):
        if record.outcome:
            return "m-outcome", f"{record.state} → {record.outcome}"
        return "m-status", f"{record.state}"
    if isinstance(record, Completion):
        step = record.step or record.f
        if record.outcome == "ok":
            return "m-answer", f"{step} answered {record.status if record.status is not None else ''}".strip()
        if record.outcome == "fail":
            return "m-error", f"{step} failed {record.status if record.status is not None else ''}".strip()
        return "m-error", f"{step}: no answer"
    if isinstance(record, Invoke):
        return "m-request", f"{record.step or record.f} sent"
    return "m-other", record.type


def _mark(cls: str, x: float, y: float, hover: str) -> str:
    title = f"<title>{escape(hover)}</title>"
    if cls == "m-event":
        pts = f"{x:.1f},{y - 6:.1f} {x + 6:.1f},{y:.1f} {x:.1f},{y + 6:.1f} {x - 6:.1f},{y:.1f}"
        return f'<polygon class="mark {cls}" points="{pts}">{title}</polygon>'
    if cls in ("m-status", "m-outcome"):
        r = 4.5 if cls == "m-status" else 5.5
        return (
            f'<rect class="mark {cls}" x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}">{title}</rect>'
        )
    if cls == "m-expected":
        return f'<circle class="mark {cls}" cx="{x:.1f}" cy="{y:.1f}" r="6.5">{title}</circle>'
    return f'<circle class="mark {cls}" cx="{x:.1f}" cy="{y:.1f}" r="5">{title}</circle>'


def swimlane(
    entries: list[Entry],
    faults: list[FaultSpan],
    origin: float,
    expected: list[Expectation] | None = None,
    wrong: set[str] | None = None,
) -> str:
    """One saga across services (``entries``: its lines; ``faults`` on the run's clock, whose zero is
    ``origin`` in unix seconds), with the marks of what was ``expected`` and rings on the ``wrong`` ones."""
    if not entries:
        return '<p class="muted">no history lines mention this saga</p>'
    entries = sorted(entries, key=lambda e: e.wall)
    expected, wrong = expected or [], wrong or set()
    by_ref = {e.ref: e for e in entries}
    start = entries[0].wall
    span = max(entries[-1].wall - start, 0.001)
    nudge = max(span * 0.03, 0.001)
    placed = [
        (x, by_ref[x.lane_of], by_ref[x.after].wall - start + nudge)
        for x in expected
        if x.after in by_ref and x.lane_of in by_ref
    ]
    span = max([span, *(t for _x, _e, t in placed)])
    pw = W - LEFT - RIGHT
    values, step = time_ticks(span, pw)

    def x(t: float) -> float:
        return LEFT + pw * min(1.0, max(0.0, t / span))

    labels = Labels()
    out: list[str] = []
    bands: list[str] = []
    y = 4.0
    active = [f for f in faults if f.end + origin - start >= 0 and f.start + origin - start <= span and f.end > f.start]
    if active:
        y += LINE
        for f in active:
            a, b = f.start + origin - start, f.end + origin - start
            name = f"{f.kind} {f.target}"
            spot = labels.place(x(max(a, 0)), [y, y + LINE], clip(name, 260), left=LEFT, right=W - RIGHT, gap=0)
            if spot is not None:
                out.append(text(spot[0], spot[1], clip(name, 260), "fault-label", spot[2], title=name))
        y += LINE + 4
    lanes = list(dict.fromkeys(_lane(e) for e in entries))
    lanes_top = y
    lane_y: dict[str, float] = {}
    marks: dict[str, list[tuple[str, float, str, str]]] = {lane: [] for lane in lanes}  # cls, x, text, hover
    for e in entries:
        cls, body = label_of(e)
        rel = e.wall - start
        marks[_lane(e)].append((cls, x(rel), body, f"{body} at +{rel:.3f} s ({e.ref})"))
    for xp, lane_entry, t in placed:
        marks[_lane(lane_entry)].append(("m-expected", x(t), xp.label, f"{xp.detail} (not in the history)"))
    for lane in lanes:
        my = lane_y[lane] = y + 10
        name = clip(lane, LEFT - 14)
        out.append(text(LEFT - 8, my + 4, name, "lane", "end", title=lane))
        labels.take(LEFT - 8 - text_width(name), my + 4 - FONT, LEFT - 8, my + 7)
        out.append(f'<line class="lane-line" x1="{LEFT}" y1="{my}" x2="{W - RIGHT}" y2="{my}"/>')
        rows = [my + 22 + LINE * k for k in range(MAX_ROWS)]
        used = 0
        groups: dict[tuple[str, int], list[tuple[str, float]]] = {}  # the same words at one place: one label
        for cls, mx, body, hover in sorted(marks[lane], key=lambda m: m[1]):
            out.append(_mark(cls, mx, my, hover))
            groups.setdefault((body, round(mx / 8)), []).append((cls, mx))
        for (body, _at), same in groups.items():
            cls, mx = same[0]
            words = body if len(same) == 1 else f"{body} ×{len(same)}"
            spot = labels.place(mx - 5, rows, words, left=LEFT, right=W - RIGHT, gap=0)
            if spot is None:
                continue
            tx, ty, anchor = spot
            used = max(used, rows.index(ty) + 1)
            out.append(text(tx, ty, words, "expected-label" if cls == "m-expected" else "mark-label", anchor))
        y = my + 22 + LINE * max(used, 1) - 6
    for ref in sorted(wrong & set(by_ref)):
        e = by_ref[ref]
        out.append(
            f'<circle class="wrong" cx="{x(e.wall - start):.1f}" cy="{lane_y[_lane(e)]:.1f}" r="9">'
            f"<title>out of order ({escape(e.ref)})</title></circle>"
        )
    bottom = y + 4
    for f in active:
        a, b = f.start + origin - start, f.end + origin - start
        x0, x1 = x(max(a, 0)), x(min(b, span))
        bands.append(
            f'<rect class="fault-band" x="{x0:.1f}" y="{lanes_top - 2:.1f}" width="{max(x1 - x0, 2):.1f}" '
            f'height="{bottom - lanes_top + 2:.1f}"><title>{escape(f.kind)} on {escape(f.target)}: '
            f"{f.start:.1f} s – {f.end:.1f} s of the run</title></rect>"
        )
    grid, ticks_out = [], []
    for t in values:
        if t > span * 1.0001:
            continue
        gx = x(t)
        grid.append(f'<line class="vgrid" x1="{gx:.1f}" y1="{lanes_top:.1f}" x2="{gx:.1f}" y2="{bottom:.1f}"/>')
        ticks_out.append(text(gx, bottom + 19, f"+{fmt(t, step)} s", "xtick", "middle"))
    ticks_out.append(text(W - RIGHT, bottom + 36, TIME_AXIS, "axis-title", "end"))
    head = (
        f'<svg class="chart swimlane" viewBox="0 0 {W} {bottom + 44:.0f}" width="100%" role="img" '
        'aria-label="saga trace">'
    )
    return "\n".join([head, *bands, *grid, *out, *ticks_out, "</svg>"])


_LEGEND = (
    ("m-request", "request sent"),
    ("m-answer", "answer"),
    ("m-error", "failed, or no answer"),
    ("m-event", "event (by its source)"),
    ("m-status", "status read"),
    ("m-outcome", "final status → outcome"),
)


def legend(svg: str) -> str:
    """What each mark and colour of the swimlane ``svg`` means (HTML): the kinds of mark it draws."""
    items = [(cls, name) for cls, name in _LEGEND if f"mark {cls}" in svg]
    expected, wrong, faults = "m-expected" in svg, 'class="wrong"' in svg, 'class="fault-band"' in svg
    if expected:
        items.append(("m-expected", "expected, not in the history"))
    if wrong:
        items.append(("wrong", "out of order"))
    if faults:
        items.append(("fault-band", "a fault was active"))
    out = ['<ul class="legend">']
    for cls, name in items:
        if cls == "fault-band":
            swatch = f'<rect class="{cls}" x="1" y="1" width="14" height="12"/>'
        elif cls == "wrong":
            swatch = '<circle class="wrong" cx="8" cy="7" r="5.5"/>'
        else:
            swatch = _mark(cls, 8, 7, name).replace(f"<title>{escape(name)}</title>", "")
        out.append(
            f'<li><svg width="16" height="14" viewBox="0 0 16 14" aria-hidden="true">{swatch}</svg>{escape(name)}</li>'
        )
    out.append("</ul>")
    return "".join(out)
