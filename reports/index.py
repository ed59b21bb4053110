"""The run index (``runs/index.html``): every run with its date, SUT, scenario, seed, verdict
and key figures, newest first, sortable (a small inline script; no network), linking to each
report — and trends across runs of the same scenario, clean runs apart from runs with
seeded bugs (a seeded bug is meant to fail: mixed in, it would read as a regression).
A print stylesheet keeps the tables plain."""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from pathlib import Path

from saga_harness.checkers.verdict import VERDICTS_FILE, RunInfo, Verdicts
from saga_harness.errors import HarnessError
from saga_harness.rundir import REPORT_FILE, read_load

_SORT_JS = """
document.querySelectorAll('th[data-col]').forEach(th => th.addEventListener('click', () => {
  const table = th.closest('table'), i = [...th.parentNode.children].indexOf(th);
  const rows = [...table.querySelectorAll('tbody tr')];
  const dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
  rows.sort((a, b) => { const x = a.children[i].dataset.v ?? a.children[i].textContent;
    const y = b.children[i].dataset.v ?? b.children[i].textContent;
    const nx = parseFloat(x), ny = parseFloat(y);
    return (isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny) * dir; });
  rows.forEach(r => table.querySelector('tbody').appendChild(r));
}));
"""


_VERDICT = {
    "ok": '<span class="ok">pass</span>',
    "violated": '<span class="bad">FAIL</span>',
    "inconclusive": '<span class="unsure">inconclusive</span>',
}


@dataclass(frozen=True)
class RunRow:
    """One run as the index lists it."""

    dir: str
    ok: bool
    status: str  # ok / violated / inconclusive
    sut: str | None
    scenario: str
    seed: int | None
    bugs: str
    started_at: float
    sagas: int
    p50: float | None
    violations: int
    rps: float | None
    report: bool


def _rps(run_dir: Path) -> float | None:
    try:
        load = read_load(run_dir)
    except HarnessError:
        return None
    total = ((load or {}).get("locust") or {}).get("total") or {}
    return total.get("requests_per_s")


def _runs(runs_dir: Path) -> list[RunRow]:
    out = []
    for path in sorted(runs_dir.glob(f"*/{VERDICTS_FILE}")):
        try:
            v = Verdicts.read(path)
        except HarnessError:
            continue  # a run being written, or damaged: the index lists what it can read
        run = v.run or RunInfo(run_id=path.parent.name)
        out.append(
            RunRow(
                dir=path.parent.name,
                ok=v.ok,
                status=v.status,
                sut=run.sut,
                scenario=run.scenario or "",
                seed=run.seed,
                bugs=run.bugs or "",
                started_at=run.started_at or 0.0,
                sagas=v.stats.sagas_started,
                p50=v.stats.convergence_s.get("p50"),
                violations=len(v.failures),
                rps=_rps(path.parent),
                report=(path.parent / REPORT_FILE).exists(),
            )
        )
    return sorted(out, key=lambda r: r.started_at)


def _date(started_at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(started_at)) if started_at else "—"


def _figures(values: list[float | None], unit: str) -> str:
    """A trend in words: the latest value, and the range over the runs."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    if len(vals) > 1 and min(vals) == max(vals):
        return f"{vals[0]:g}{unit} in every run"
    last = f"latest {vals[-1]:g}{unit}"
    return last if len(vals) < 2 else f"{last} (runs: {min(vals):g}–{max(vals):g}{unit})"


def _spark(values: list[float | None], label: str, unit: str) -> str:
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return f'<span class="muted">{escape(_figures(values, unit))}</span>'
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    pts = " ".join(
        f"{i * 120 / (len(values) - 1):.1f},{28 - 24 * ((v - lo) / span):.1f}"
        for i, v in enumerate(values)
        if v is not None
    )
    hover = f"{label}, oldest to newest: " + ", ".join(f"{v:g}{unit}" for v in vals)
    return (
        f'<svg width="130" height="32" role="img" aria-label="{escape(label)}"><polyline points="{pts}" '
        f'fill="none" stroke="#2563eb" stroke-width="1.5"><title>{escape(hover)}</title></polyline></svg>'
        f'<span class="muted">{escape(_figures(values, unit))}</span>'
    )


def _trends(runs: list[RunRow], caption: str, table_id: str) -> str:
    """Per scenario: how its runs' time to converge, throughput and violations went."""
    if not runs:
        return f'<h2>{escape(caption)}</h2><p class="muted" id="{table_id}">none</p>'
    by_scenario: dict[str, list[RunRow]] = {}
    for r in runs:
        by_scenario.setdefault(r.scenario or "(plain run)", []).append(r)
    rows = []
    for name, rs in sorted(by_scenario.items()):
        rows.append(
            f"<tr><td>{escape(name)}</td><td class='n'>{len(rs)}</td>"
            f"<td>{_spark([x.p50 for x in rs], 'time to converge p50', ' s')}</td>"
            f"<td>{_spark([x.rps for x in rs], 'throughput', ' req/s')}</td>"
            f"<td>{_spark([float(x.violations) for x in rs], 'violations', '')}</td></tr>"
        )
    return (
        f'<h2>{escape(caption)}</h2><table id="{table_id}"><thead><tr><th>scenario</th><th class="n">runs</th>'
        "<th>time to converge (p50)</th><th>throughput</th><th>violations</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def build_run_index(runs_dir: str | Path = "runs") -> Path:
    """Write ``<runs_dir>/index.html``; return its path."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise HarnessError(f"{runs_dir}: no such runs directory; run something first (saga-harness run …)")
    runs = _runs(runs_dir)
    rows = []
    for r in reversed(runs):
        link = f'<a href="{escape(r.dir)}/{REPORT_FILE}">{escape(r.dir)}</a>' if r.report else escape(r.dir)
        verdict = _VERDICT.get(r.status, _VERDICT["violated"])
        order = {"ok": 2, "inconclusive": 1}.get(r.status, 0)  # sorts red, amber, green
        rows.append(
            f"<tr><td class='date' data-v='{r.started_at:.0f}'>{_date(r.started_at)}</td><td>{link}</td>"
            f"<td class='v' data-v='{order}'>{verdict}</td><td class='t'>{escape(r.sut or '—')}</td>"
            f"<td class='t'>{escape(r.scenario or '—')}</td><td class='n'>{'—' if r.seed is None else r.seed}</td>"
            f"<td class='t'>{escape(', '.join(r.bugs.split(',')) if r.bugs else '—')}</td><td class='n'>{r.sagas}</td>"
            f"<td class='n'>{'—' if r.p50 is None else f'{r.p50:g}'}</td><td class='n'>{r.rps or '—'}</td>"
            f"<td class='n'>{r.violations}</td></tr>"
        )
    cols = [
        "date",
        "run",
        "verdict",
        "SUT",
        "scenario",
        "seed",
        "seeded bugs",
        "sagas",
        "converge p50 s",
        "req/s",
        "violations",
    ]
    numeric = {"seed", "sagas", "converge p50 s", "req/s", "violations"}
    num = ' class="n"'
    head = "".join(f'<th data-col="{i}"{num if c in numeric else ""}>{c}</th>' for i, c in enumerate(cols))
    clean = _trends([r for r in runs if not r.bugs], "Trends: clean runs", "trends-clean")
    seeded = _trends([r for r in runs if r.bugs], "Trends: runs with seeded bugs", "trends-bugs")
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>saga-harness runs</title>
<style>body{{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;overflow-wrap:break-word}}
table{{border-collapse:collapse;width:100%;margin-bottom:24px}}
th,td{{padding:5px 8px;border-bottom:1px solid #e6e8ec;text-align:left;vertical-align:middle}}
th{{cursor:pointer;background:#f3f4f6}} .n{{text-align:right;font-variant-numeric:tabular-nums}}
th,td.date,td.n,td.v{{white-space:nowrap}} td.t{{overflow-wrap:anywhere}}
td svg{{vertical-align:middle;margin-right:6px}}
.ok{{color:#1f7a3d;font-weight:600}}.bad{{color:#b3261e;font-weight:600}}
.unsure{{color:#9a5b00;font-weight:600}} .muted{{color:#6b7280;font-size:12px}}
@media print{{body{{margin:0;font-size:11px}} th{{background:#fff;cursor:auto}} tr{{break-inside:avoid}}
h2{{break-after:avoid}}}}</style></head><body>
<h1>saga-harness runs</h1><p>{len(runs)} run(s) in {escape(str(runs_dir.resolve()))}, newest first.
Click a column to sort.</p>
<table id="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>
{clean}
{seeded}
<script>{_SORT_JS}</script></body></html>"""
    path = runs_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
