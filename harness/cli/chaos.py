"""``saga-harness chaos list`` and ``saga-harness chaos run``."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from saga_harness.cli import app
from saga_harness.cli.run import print_summary

chaos_app = typer.Typer(
    help="Fault scenarios: Toxiproxy link faults, process and delivery faults.", no_args_is_help=True
)
app.add_typer(chaos_app, name="chaos")
console = Console()


@chaos_app.command("list")
def list_scenarios() -> None:
    """The scenario catalogue (chaos/scenarios/*.yaml)."""
    from saga_harness.chaos.scenario import catalogue

    table = Table(title="chaos scenarios")
    for col in ("name", "faults", "description"):
        table.add_column(col)
    for scenario, _path in catalogue():
        kinds = sorted({f.kind for f in scenario.faults} | set(scenario.random.kinds if scenario.random else []))
        table.add_row(scenario.name, ", ".join(kinds) or "none", escape(scenario.description.strip()))
    console.print(table)


def _live(progress: object) -> Table:
    p = progress
    table = Table(show_header=False, box=None)
    run = p.run  # type: ignore[attr-defined]
    table.add_row("phase", f"[bold]{run.phase}[/]")
    table.add_row("sagas", f"{run.finished} done / {run.in_flight} in flight / {run.planned} planned")
    table.add_row(
        "faults",
        f"{p.faults_done}/{p.faults_total} done; active: "  # type: ignore[attr-defined]
        + (escape(", ".join(p.active_faults)) or "none"),
    )  # type: ignore[attr-defined]
    table.add_row("events captured", str(run.events))
    return table


@chaos_app.command("run")
def run_scenario(
    scenario: str = typer.Argument(..., help="a catalogue name (see `chaos list`) or a YAML file"),
    seed: int = typer.Option(0, "--seed", help="the same seed gives the same faults and workload"),
    sagas: int = typer.Option(None, "--sagas", min=0, help="override the scenario's number of sagas"),
    bugs: str = typer.Option("", "--bugs", help="reference system's seeded bugs to switch on"),
    out: Path = typer.Option(None, "--out", help="run directory (default runs/<time>-<scenario>)"),
    config: Path = typer.Option(None, "--config", help="saga-harness.toml describing your SUT"),
    database_url: str = typer.Option(None, "--database-url", help="reference system on PostgreSQL"),
) -> None:
    """Run one scenario with a live display; heal every fault, converge, check."""
    from saga_harness.chaos.run import execute_scenario
    from saga_harness.chaos.scenario import load_scenario

    loaded, _path = load_scenario(scenario)
    started = time.monotonic()
    command = " ".join(shlex.quote(a) for a in ["saga-harness", *sys.argv[1:]])
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        result = execute_scenario(
            loaded,
            seed=seed,
            sagas=sagas,
            bugs=bugs or None,
            out=out,
            config=config,
            database_url=database_url,
            command=command,
            on_progress=lambda p: live.update(_live(p)),
        )
    print_summary(result.verdicts, result.run_dir)
    console.print(f"scenario {loaded.name} finished in {time.monotonic() - started:.1f}s")
    raise typer.Exit(0 if result.verdicts["ok"] else 1)
