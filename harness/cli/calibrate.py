"""``saga-harness calibrate``: every seeded bug caught, the clean system never flagged."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from saga_harness.cli import app
from saga_harness.errors import ConfigError

console = Console()


def _current(job: Any) -> Table:
    """The job in flight: target, scenario/run, seed, phase, elapsed."""
    table = Table(show_header=True, box=None, header_style="bold")
    for col in ("bug", "scenario / run", "seed", "status", "elapsed"):
        table.add_column(col)
    table.add_row(
        escape(job.job.target),
        escape(job.job.name),
        str(job.job.seed),
        escape(job.phase),
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
    from saga_harness.calibration import calibrate as run_calibration
    from saga_harness.calibration import plan, prepare_out

    if seeds is not None and seeds < 1:
        raise ConfigError(f"--seeds must be at least 1 (got {seeds})")
    if quick and seeds not in (None, 1):
        raise ConfigError(f"--quick runs one seed; drop --seeds {seeds} or drop --quick for the full calibration")
    the_plan = plan(seeds=seeds or 3, quick=quick, database_url=database_url)
    out_dir = prepare_out(out)
    bar = Progress(TextColumn("calibrating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)
    task = bar.add_task("runs", total=len(the_plan.jobs))
    with Live(console=console, refresh_per_second=4, transient=True) as live:

        def show(job: Any) -> None:
            live.update(Group(bar, _current(job)))

        def finished(_job: Any, record: dict[str, Any]) -> None:
            bar.advance(task)
            live.console.print(_line(record), highlight=False)

        result = run_calibration(the_plan, out_dir, on_start=show, on_phase=show, on_finish=finished)
    _summary(result)
    console.print(f"calibration: [cyan]{out_dir / 'calibration.json'}[/]")
    console.print(f"report: [cyan]{out_dir / 'calibration.html'}[/]")
    console.print(
        f"finished in {result['seconds']:.1f}s — {'[green]calibrated[/]' if result['ok'] else '[bold red]FAILED[/]'}"
    )
    raise typer.Exit(0 if result["ok"] else 1)
