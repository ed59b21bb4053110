"""``saga-harness calibrate``: every seeded bug caught, the clean system never flagged — the reference
system, systems described by a saga-harness.toml (``--config``), the bundled worked examples
(``--examples``), optionally again under CPU contention (``--contention``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from saga_harness.checkers.verdict import EXIT_INCONCLUSIVE
from saga_harness.cli import app
from saga_harness.cli.display import PLAIN_EVERY_S, console, show_paths
from saga_harness.errors import ConfigError

if TYPE_CHECKING:  # the calibration module loads every driver: imported when the command runs
    from saga_harness.calibration import JobProgress


class JobsView:
    """The jobs in flight, drawn as the calibration goes: on a terminal a progress bar and a row per
    job; otherwise a line per job every few seconds. Its methods are the calibration's callbacks
    (called from the jobs' threads)."""

    def __init__(self, total: int) -> None:
        self.running: dict[int, JobProgress] = {}
        self.lock = threading.Lock()
        self.bar = Progress(
            TextColumn("calibrating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        )
        self.task = self.bar.add_task("runs", total=total)
        self.live: Live | None = None
        self.stop = threading.Event()
        self.printer: threading.Thread | None = None

    def __enter__(self) -> JobsView:
        if console.is_terminal:
            self.live = Live(console=console, get_renderable=self.renderable, refresh_per_second=4, transient=True)
            self.live.start()
        else:
            self.printer = threading.Thread(target=self._print_lines, name="calibration-lines", daemon=True)
            self.printer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
        self.stop.set()
        if self.printer is not None:
            self.printer.join(5)

    def start(self, job: JobProgress) -> None:
        with self.lock:
            self.running[job.index] = job
        if self.live is None:
            console.print(f"{self._label(job)}: starting", markup=False, highlight=False, soft_wrap=True)

    def finish(self, job: JobProgress, record: dict[str, Any]) -> None:
        with self.lock:
            self.running.pop(job.index, None)
        self.bar.advance(self.task)
        console.print(_line(record), highlight=False, soft_wrap=True)

    def renderable(self) -> RenderableType:
        table = Table(show_header=True, box=None, header_style="bold")
        for col in ("system", "bug", "scenario / run", "seed", "status", "elapsed"):
            table.add_column(col)
        with self.lock:
            jobs = sorted(self.running.values(), key=lambda j: j.index)
        for job in jobs:
            table.add_row(
                escape(job.job.sut) + (f" [dim](busy {job.job.contention})[/]" if job.job.contention else ""),
                escape(job.job.target),
                escape(job.job.name),
                str(job.job.seed),
                escape(job.state.line().split("] ", 1)[-1]),
                f"{time.monotonic() - job.started:.0f}s",
            )
        return Group(self.bar, table) if jobs else self.bar

    def _print_lines(self) -> None:
        while not self.stop.wait(PLAIN_EVERY_S):
            with self.lock:
                jobs = sorted(self.running.values(), key=lambda j: j.index)
            for job in jobs:
                status = job.state.line().split("] ", 1)[-1]
                elapsed = time.monotonic() - job.started
                line = f"{self._label(job)}: [{elapsed:6.1f}s] {status}"
                console.print(line, markup=False, highlight=False, soft_wrap=True)

    @staticmethod
    def _label(job: JobProgress) -> str:
        j = job.job
        busy = f" · busy {j.contention}" if j.contention else ""
        return f"[{job.index + 1}/{job.total}] {j.sut} · {j.target} · {j.name} · seed {j.seed}{busy}"


def _line(record: dict[str, Any]) -> str:
    """One finished run, printed above the live display."""
    if record["verdict"] == "error":
        status = "[bold red]ERROR[/]"
    elif record["bug"]:
        status = (
            "[green]detected[/]"
            if record["detected"]
            else "[yellow]NOT DETECTED (held back: inconclusive)[/]"
            if record.get("held_back")
            else "[bold red]NOT DETECTED[/]"
        )
    elif record["verdict"] == "inconclusive":
        status = "[yellow]inconclusive[/]"
    else:
        status = "[green]pass[/]" if record["verdict"] == "pass" else "[bold red]FALSE POSITIVE[/]"
    failed = ", ".join(record["failed_checkers"]) or "-"
    extra = f" — {escape(record['error'])}" if record.get("error") else ""
    if record.get("inconclusive_checkers"):
        extra += f" [yellow](inconclusive: {escape(', '.join(record['inconclusive_checkers']))})[/]"
    if record.get("retried_after"):
        extra += f" [yellow](run again after an error: {escape(record['retried_after']['error'])})[/]"
    busy = f" · busy {record['contention']}" if record.get("contention") else ""
    return (
        f"{status} {escape(record.get('sut') or 'reference')} · {escape(record['bug'] or 'clean')} · "
        f"{escape(record['name'])} · seed {record['seed']}{busy} · "
        f"{record['seconds']:.1f}s · flagged by: {escape(failed)}{extra}"
    )


def _summary(result: dict[str, Any]) -> None:
    table = Table(title="calibration")
    for col in ("seeded bug", "detected", "flagged by", "expected (any of)", "runs"):
        table.add_column(col)
    for name, bug in result["bugs"].items():
        good = bug["runs"] >= 1 and bug["detected_in"] == bug["runs"]
        busy = bug.get("under_contention") or {}
        shown = f"{bug['detected_in']}/{bug['runs']}" + (
            f" ({busy['detected_in']}/{busy['runs']} busy)" if busy.get("runs") else ""
        )
        table.add_row(
            escape(name),
            f"[{'green' if good else 'bold red'}]{shown}[/]",
            escape(", ".join(bug["checkers"]) or "-"),
            escape(", ".join(bug["expected_checkers"])),
            escape(", ".join(bug["scenarios"]) or "none"),
        )
    console.print(table)
    for sut, part in (result.get("suts") or {"": {"clean": result["clean"]}}).items():
        clean = part["clean"]
        colour = "green" if not clean["false_positives"] and not clean["errors"] else "bold red"
        busy = clean.get("under_contention") or {}
        console.print(
            (f"{escape(sut)}: " if sut else "")
            + f"clean runs: {clean['runs']}, false positives: [{colour}]{clean['false_positives']}[/]"
            + f", inconclusive: {clean.get('inconclusive', 0)}"
            + (f", crashed: [bold red]{clean['errors']}[/]" if clean["errors"] else "")
            + (
                f"; under contention: {busy['runs']} runs, {busy['false_positives']} false positives, "
                f"{busy['inconclusive']} inconclusive"
                if busy.get("runs")
                else ""
            )
        )
    for skipped in result.get("skipped", []):
        console.print(f"[dim]skipped scenario {escape(skipped['scenario'])}: {escape(skipped['reason'])}[/]")


@app.command()
def calibrate(
    seeds: int = typer.Option(None, "--seeds", help="seeds per scenario and bug run (default 3; --quick: 1)"),
    quick: bool = typer.Option(False, "--quick", help="one seed, few sagas, the shortest runs for the bugs"),
    jobs: int = typer.Option(1, "--jobs", help="runs at once (each its own SUT and ports)"),
    out: Path = typer.Option(None, "--out", help="calibration directory (default runs/TIME-calibration)"),
    config: list[Path] = typer.Option(
        None, "--config", help="a system described by a saga-harness.toml with a [calibration] section (repeatable)"
    ),
    examples: bool = typer.Option(
        False, "--examples", help="add the bundled worked examples (minishop, hotelbus, tripbook; a source checkout)"
    ),
    contention: int = typer.Option(
        0, "--contention", min=0, help="then run the first seed's runs again with N busy processes pinned to the cores"
    ),
    database_url: str = typer.Option(
        None, "--database-url", help="PostgreSQL for the scenarios that require it (skipped without it)"
    ),
) -> None:
    """Run each system's clean runs on every seed and each seeded bug through the runs meant to expose it
    (the reference system by default: its scenario catalogue; or the systems given with --config, plus the
    worked examples with --examples); write calibration.json and calibration.html. Exit 0 when every bug
    is detected in every run and no clean run is flagged (an inconclusive run is counted apart); 3 when
    that holds except for bug runs whose finding was held back as inconclusive (a starved machine); 1
    when a bug is missed, a clean run flagged or a run crashed twice."""
    # Imported here: `saga-harness --help` should not load every driver.
    from saga_harness.calibration import calibrate as run_calibration
    from saga_harness.calibration import described_plan, example_configs, merge, plan, prepare_out, with_contention

    if seeds is not None and seeds < 1:
        raise ConfigError(f"--seeds must be at least 1 (got {seeds})")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1 (got {jobs}): how many runs go on at once")
    if quick and seeds not in (None, 1):
        raise ConfigError(f"--quick runs one seed; drop --seeds {seeds} or drop --quick for the full calibration")
    configs = list(config or [])
    plans = [] if configs else [plan(seeds=seeds or 3, quick=quick, database_url=database_url)]
    if examples:
        configs += [p for p in example_configs() if p.resolve() not in {c.resolve() for c in configs}]
    plans += [described_plan(c, seeds=seeds or 3, quick=quick) for c in configs]
    the_plan = merge(*plans)
    if contention:
        the_plan = with_contention(the_plan, busy=contention)
    out_dir = prepare_out(out)
    with JobsView(len(the_plan.jobs)) as view:
        result = run_calibration(the_plan, out_dir, on_start=view.start, on_finish=view.finish, jobs=jobs)
    _summary(result)
    show_paths([("calibration", out_dir / "calibration.json"), ("report", out_dir / "calibration.html")])
    words = {
        "calibrated": "[green]calibrated[/]",
        "inconclusive": "[yellow]inconclusive[/] (bug runs held back: every other run as it should be; rerun on a "
        "quieter machine or with fewer --jobs)",
        "failed": "[bold red]FAILED[/]",
    }
    console.print(f"finished in {result['seconds']:.1f}s — {words[result['status']]}")
    raise typer.Exit({"calibrated": 0, "inconclusive": EXIT_INCONCLUSIVE, "failed": 1}[result["status"]])
