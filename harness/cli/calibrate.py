"""``saga-harness calibrate``: every seeded bug caught, the clean system never flagged."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from saga_harness.cli import app
from saga_harness.cli.display import ProgressDisplay, console, show_paths
from saga_harness.errors import ConfigError
from saga_harness.progress import ProgressEvent

if TYPE_CHECKING:  # the calibration module loads every driver: imported when the command runs
    from saga_harness.calibration import JobProgress, Plan


def _current(job: JobProgress) -> Table:
    """The job in flight: target, scenario/run, seed, its run's progress, elapsed."""
    table = Table(show_header=True, box=None, header_style="bold")
    for col in ("bug", "scenario / run", "seed", "status", "elapsed"):
        table.add_column(col)
    table.add_row(
        escape(job.job.target),
        escape(job.job.name),
        str(job.job.seed),
        escape(job.state.line().split("] ", 1)[-1]),
        f"{time.monotonic() - job.started:.0f}s",
    )
    return table


def _line(record: dict[str, Any]) -> str:
    """One finished run, printed above the live display."""
    if record["verdict"] == "error":
        status = "[bold red]ERROR[/]"
    elif record["bug"]:
        status = "[green]detected[/]" if record["detected"] else "[bold red]NOT DETECTED[/]"
    else:
        status = "[green]pass[/]" if record["verdict"] == "pass" else "[bold red]FALSE POSITIVE[/]"
    failed = ", ".join(record["failed_checkers"]) or "-"
    extra = f" — {escape(record['error'])}" if record.get("error") else ""
    if record.get("retried_after"):
        extra += f" [yellow](run again after an error: {escape(record['retried_after']['error'])})[/]"
    return (
        f"{status} {escape(record['bug'] or 'clean')} · {escape(record['name'])} · seed {record['seed']} · "
        f"{record['seconds']:.1f}s · flagged by: {escape(failed)}{extra}"
    )


def _summary(result: dict[str, Any]) -> None:
    table = Table(title="calibration")
    for col in ("seeded bug", "detected", "flagged by", "expected (any of)", "runs"):
        table.add_column(col)
    for name, bug in result["bugs"].items():
        good = bug["runs"] >= 1 and bug["detected_in"] == bug["runs"]
        table.add_row(
            escape(name),
            f"[{'green' if good else 'bold red'}]{bug['detected_in']}/{bug['runs']}[/]",
            escape(", ".join(bug["checkers"]) or "-"),
            escape(", ".join(bug["expected_checkers"])),
            escape(", ".join(bug["scenarios"]) or "none"),
        )
    console.print(table)
    clean = result["clean"]
    colour = "green" if not clean["false_positives"] and not clean["errors"] else "bold red"
    console.print(
        f"clean runs: {clean['runs']}, false positives: [{colour}]{clean['false_positives']}[/]"
        + (f", crashed: [bold red]{clean['errors']}[/]" if clean["errors"] else "")
    )
    for skipped in result.get("skipped", []):
        console.print(f"[dim]skipped scenario {escape(skipped['scenario'])}: {escape(skipped['reason'])}[/]")


@app.command()
def calibrate(
    seeds: int = typer.Option(None, "--seeds", help="seeds per scenario and bug run (default 3; --quick: 1)"),
    quick: bool = typer.Option(False, "--quick", help="one seed, the shortest scenarios, few sagas (minutes)"),
    out: Path = typer.Option(None, "--out", help="calibration directory (default runs/<time>-calibration)"),
    database_url: str = typer.Option(
        None, "--database-url", help="PostgreSQL for the scenarios that require it (skipped without it)"
    ),
) -> None:
    """Run the clean reference system through the scenario catalogue and each seeded bug through
    the runs meant to expose it; write calibration.json and calibration.html. Exit 0 when every
    bug is detected in every run and no clean run is flagged."""
    # Imported here: `saga-harness --help` should not load every driver.
    from saga_harness.calibration import plan, prepare_out

    if seeds is not None and seeds < 1:
        raise ConfigError(f"--seeds must be at least 1 (got {seeds})")
    if quick and seeds not in (None, 1):
        raise ConfigError(f"--quick runs one seed; drop --seeds {seeds} or drop --quick for the full calibration")
    the_plan = plan(seeds=seeds or 3, quick=quick, database_url=database_url)
    out_dir = prepare_out(out)
    if console.is_terminal:
        result = _live(the_plan, out_dir)
    else:
        result = _plain(the_plan, out_dir)
    _summary(result)
    show_paths([("calibration", out_dir / "calibration.json"), ("report", out_dir / "calibration.html")])
    console.print(
        f"finished in {result['seconds']:.1f}s — {'[green]calibrated[/]' if result['ok'] else '[bold red]FAILED[/]'}"
    )
    raise typer.Exit(0 if result["ok"] else 1)


def calibrate_all(the_plan: Plan, out_dir: Path, **callbacks: Any) -> dict[str, Any]:
    """The calibration itself (:func:`saga_harness.calibration.calibrate`)."""
    from saga_harness.calibration import calibrate

    return calibrate(the_plan, out_dir, **callbacks)


def _live(the_plan: Plan, out_dir: Path) -> dict[str, Any]:
    """On a terminal: a progress bar over the jobs, the job in flight, a line per finished job."""
    bar = Progress(TextColumn("calibrating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)
    task = bar.add_task("runs", total=len(the_plan.jobs))
    current: list[JobProgress] = []

    def renderable() -> RenderableType:
        return Group(bar, _current(current[0])) if current else bar

    with Live(console=console, get_renderable=renderable, refresh_per_second=4, transient=True) as live:

        def start(job: JobProgress) -> None:
            current[:] = [job]

        def finished(_job: JobProgress, record: dict[str, Any]) -> None:
            bar.advance(task)
            live.console.print(_line(record), highlight=False)

        return calibrate_all(the_plan, out_dir, on_start=start, on_finish=finished)


def _plain(the_plan: Plan, out_dir: Path) -> dict[str, Any]:
    """Not on a terminal (CI, a log file): each job's progress as plain lines, a line per finished job."""
    with contextlib.ExitStack() as stack:
        display: list[ProgressDisplay] = []

        def start(job: JobProgress) -> None:
            where = f"{job.job.target} · {job.job.name} · seed {job.job.seed}"
            console.print(f"[{job.index + 1}/{job.total}] {where}", markup=False, highlight=False)
            display[:] = [stack.enter_context(ProgressDisplay())]

        def event(_job: JobProgress, e: ProgressEvent) -> None:
            display[0](e)

        def finished(_job: JobProgress, record: dict[str, Any]) -> None:
            stack.close()  # the job's last progress line
            console.print(_line(record), highlight=False)

        return calibrate_all(the_plan, out_dir, on_start=start, on_event=event, on_finish=finished)
