"""How the command line shows a run: its progress while it runs, its verdicts when it is judged.

:class:`ProgressDisplay` is a :data:`~saga_harness.progress.Listener`: it folds the
run's progress events into a :class:`~saga_harness.progress.ProgressState` and draws
it — a live table when stdout is a terminal, else one plain line every few seconds
(so ``saga-harness run … > log`` shows the run as it goes). :func:`show_verdicts`
prints the verdicts (ok, VIOLATED or INCONCLUSIVE), every finding — one line per
cause, its first sagas and history lines, never a silent cap — what the run covered,
and the command that reproduces the run, on one line whatever the terminal's width.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from rich.console import Console, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from saga_harness.checkers import Verdicts
from saga_harness.checkers.coverage import Coverage
from saga_harness.checkers.findings import Finding
from saga_harness.progress import ProgressEvent, ProgressState

console = Console()
PLAIN_EVERY_S = 3.0


class ProgressDisplay:
    """A thread-safe listener that shows a run's progress; use it as a context manager around the run.

    ``console``: where to draw (its ``is_terminal`` picks the live view or plain lines);
    ``every_s``: how often a plain line is printed.
    """

    def __init__(self, out: Console | None = None, every_s: float = PLAIN_EVERY_S) -> None:
        self.console = out or console
        self.every_s = every_s
        self.state = ProgressState()
        self._heard = False  # nothing to show before the first event (a run refused before it starts)
        self._t0 = 0.0  # the run's start on this process's monotonic clock (from the first event)
        self._printed = ""
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._stop = threading.Event()
        self._printer: threading.Thread | None = None

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if not self._heard:
                self._t0 = time.monotonic() - event.elapsed_s
            self.state = self.state.apply(event)
            self._heard = True

    def _now(self) -> ProgressState:
        # The state, aged to now: a phase with no news (a SUT starting) still shows the time passing.
        if self.state.finished is not None:
            return self.state
        return replace(self.state, elapsed_s=max(self.state.elapsed_s, time.monotonic() - self._t0))

    def __enter__(self) -> ProgressDisplay:
        if self.console.is_terminal:
            self._live = Live(
                console=self.console, get_renderable=self.renderable, refresh_per_second=4, transient=True
            )
            self._live.start()
        else:
            self._printer = threading.Thread(target=self._print_lines, name="progress-lines", daemon=True)
            self._printer.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._printer is not None:
            self._stop.set()
            self._printer.join(5)
            self._printer = None
            self._line()  # where it ended

    def _print_lines(self) -> None:
        while not self._stop.wait(self.every_s):
            self._line()

    def _line(self) -> None:
        with self._lock:
            if not self._heard:
                return
            line = self._now().line()
            if line == self._printed:
                return
            self._printed = line
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self.console.file.flush()

    def renderable(self) -> RenderableType:
        """The live view of the state so far."""
        with self._lock:
            s = self._now() if self._heard else self.state
        table = Table(show_header=False, box=None)
        table.add_row("phase", f"[bold]{escape(s.phase)}[/]")
        if s.sagas is not None:
            c = s.sagas
            planned = f"/{c.planned}" if c.planned else ""
            table.add_row("sagas", f"{c.started}{planned} started, {c.finished} finished, {c.in_flight} in flight")
            outcomes = ", ".join(f"{k}={v}" for k, v in sorted(c.by_outcome.items())) or "-"
            table.add_row("outcomes", escape(outcomes))
            table.add_row("events captured", str(c.events))
            if c.failed_requests:
                table.add_row("requests unanswered", f"[red]{c.failed_requests}[/]")
        if s.load is not None:
            table.add_row("load", f"{s.load.load_elapsed_s:.0f}s of {s.load.duration_s:.0f}s, {s.load.users} users")
        if s.faults is not None and s.faults.total:
            active = escape(", ".join(s.faults.active)) or "none"
            table.add_row("faults", f"{s.faults.done}/{s.faults.total} done; active: {active}")
        table.add_row("elapsed", f"{s.elapsed_s:.0f}s")
        return table


STATUS_MARKUP = {
    "ok": "[green]ok[/]",
    "violated": "[bold red]VIOLATED[/]",
    "inconclusive": "[bold yellow]INCONCLUSIVE[/]",
}
FINDING_MARK = {"violated": "[red]✗", "inconclusive": "[yellow]?", "note": "[cyan]·"}


def show_verdicts(verdicts: Verdicts, out: Console | None = None) -> None:
    """The verdicts table, the run's figures, every finding (one line each, its first sagas and
    history lines), what the run covered, the verdict with its exit status, and how to reproduce a
    run that did not pass."""
    out = out or console
    run = verdicts.run
    title = f"verdicts — {run.sut} seed {run.seed}" if run is not None else "verdicts"
    table = Table(title=escape(title))
    for col in ("check", "status", "violations", "inconclusive", "examined", "stats"):
        table.add_column(col)
    for check in verdicts.checks:
        stats = ", ".join(f"{k}={_stat(v)}" for k, v in list(check.stats.items())[:4])
        seen = check.examined
        examined = f"{seen.sagas} sagas, {seen.facts} facts" if seen is not None else "-"
        table.add_row(
            escape(check.name),
            STATUS_MARKUP[check.status],
            str(len(check.violations)),
            str(len(check.inconclusive)),
            examined,
            escape(stats),
        )
    out.print(table)
    stats, conv = verdicts.stats, verdicts.stats.convergence_s
    out.print(
        f"sagas started: {stats.sagas_started}  by outcome: {stats.by_outcome}  "
        f"time to converge p50={_num(conv.get('p50'))} p99={_num(conv.get('p99'))} max={_num(conv.get('max'))}",
        markup=False,
        highlight=False,
    )
    starts = stats.starts
    if starts and (starts.get("failed") or starts.get("unanswered") or starts.get("lost")):
        # Starts that failed or got no answer are shown, never silently dropped.
        out.print(
            f"[yellow]starts:[/] {starts.get('sagas', 0)} sagas, {starts.get('started', 0)} started, "
            f"{starts.get('failed', 0)} answered outside `expect`, {starts.get('unanswered', 0)} unanswered, "
            f"{starts.get('found_later', 0)} found later, {starts.get('lost', 0)} never started or lost",
            highlight=False,
        )
    show_findings(verdicts, out)
    show_coverage(verdicts, out)
    show_status(verdicts, out)
    if not verdicts.ok and run is not None and run.command:
        # One unbroken line, whatever the terminal's width: it is meant to be copied.
        out.print(Text("reproduce with: ") + Text(run.command, style="bold"), soft_wrap=True, highlight=False)


def finding_line(finding: Finding) -> str:
    """One finding as plain text: its checker, title, first sagas with their history lines, and how
    many more ("and 25 more sagas"); never a ``None``."""
    named = [i for i in finding.first if i.saga_id is not None]
    if named:
        shown = ", ".join(f"{i.saga_id} ({', '.join(i.evidence[:2])})" if i.evidence else i.saga_id for i in named)
        more = finding.more_sagas
        tail = f": {shown}" + (f" … and {more} more saga{'s' if more != 1 else ''}" if more else "")
    else:
        refs = [r for i in finding.first for r in i.evidence][:3]
        tail = f" ({', '.join(refs)})" if refs else ""
    return f"{finding.checker}: {finding.title}{tail}"


def show_findings(verdicts: Verdicts, out: Console | None = None) -> None:
    """Every finding, one line each (violated, then inconclusive with why, then notes): no silent cap."""
    out = out or console
    for finding in verdicts.findings:
        mark = FINDING_MARK[finding.status]
        out.print(f"{mark} {escape(finding_line(finding))}[/]", highlight=False, soft_wrap=True)
        if finding.status == "inconclusive" and finding.reason:
            out.print(f"    [yellow]not judged:[/] {escape(finding.reason)}", highlight=False, soft_wrap=True)


def coverage_lines(coverage: Coverage) -> list[str]:
    """What the run covered, in a few plain lines (steps, faults, triggers, checkers)."""
    lines = []
    if coverage.steps:
        steps = "; ".join(
            f"{s.step} {s.done} done"
            + (f", {s.failed} failed" if s.failed else "")
            + (f", {s.compensated} compensated" if s.compensated else "")
            for s in coverage.steps
        )
        lines.append(f"steps: {steps}")
    for f in coverage.faults:
        effect = "no effect" if f.no_effect else f"touched {f.touched} ({f.involved} by evidence, {f.stalled} stalled)"
        lines.append(
            f"fault {f.id} ({f.kind} {f.target}, {f.duration_s:g} s at {f.start_s:g} s): "
            f"{f.in_flight} sagas in flight, {effect}"
        )
    if coverage.triggers:
        triggers = "; ".join(
            f"{t.trigger} → " + ", ".join(f"{o} {n}" for o, n in t.outcomes.items()) for t in coverage.triggers
        )
        lines.append(f"triggers: {triggers}")
    examined = [c for c in coverage.checkers if c.sagas is not None]
    if examined:
        lines.append("examined: " + "; ".join(f"{c.checker} {c.sagas} sagas, {c.facts} facts" for c in examined))
    return lines


def show_coverage(verdicts: Verdicts, out: Console | None = None) -> None:
    """What the verdicts rest on, and a warning for what the run did not cover or could not see."""
    out = out or console
    coverage = verdicts.coverage
    for line in coverage_lines(coverage):
        out.print(f"[dim]covered:[/] {escape(line)}", highlight=False, soft_wrap=True)
    reason = coverage.observation.get("reason")
    if reason:
        out.print(f"[yellow]observation incomplete:[/] {escape(str(reason))}", highlight=False, soft_wrap=True)
    for warning in coverage.warnings:
        out.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)


def show_status(verdicts: Verdicts, out: Console | None = None) -> None:
    """The run's verdict in one line, with its exit status (and why, when inconclusive)."""
    out = out or console
    status = verdicts.status
    text = {
        "ok": "every check holds",
        "violated": f"{len(verdicts.failures)} violation(s) proved",
        "inconclusive": "no violation proved, but the run could not support a verdict (neither green nor red)",
    }[status]
    out.print(f"verdict: {STATUS_MARKUP[status]} — {escape(text)} (exit {verdicts.exit_code})", highlight=False)


def _num(value: object) -> str:
    return "-" if value is None else str(value)


def _stat(value: object) -> str:
    """A checker's figure as text: nested tables flattened, nothing shown as ``None``."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_stat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_stat(v) for v in value) + "]"
    return str(value)


def show_paths(paths: Iterable[tuple[str, Path | None]], out: Console | None = None) -> None:
    """``label: path`` lines (a path on one line, whatever the width); None paths are skipped."""
    out = out or console
    for label, path in paths:
        if path is not None:
            out.print(Text(f"{label}: ") + Text(str(path), style="cyan"), soft_wrap=True, highlight=False)


def elapsed_since(started: float) -> str:
    """``12.3s`` since ``started`` (a ``time.monotonic()``)."""
    return f"{time.monotonic() - started:.1f}s"
