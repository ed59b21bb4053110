"""``saga-harness load run``: Locust load (single or distributed), optionally with chaos."""

from __future__ import annotations

import json
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
from saga_harness.run import parse_duration

load_app = typer.Typer(help="Locust load on a saga system, judged by the same checkers.", no_args_is_help=True)
app.add_typer(load_app, name="load")
console = Console()


def _live(p: object) -> Table:
    table = Table(show_header=False, box=None)
    table.add_row("phase", f"[bold]{p.phase}[/]")  # type: ignore[attr-defined]
    table.add_row("elapsed", f"{p.elapsed_s:.0f}s of {p.duration_s:.0f}s, {p.users} users")  # type: ignore[attr-defined]
    table.add_row("events captured", str(p.events))  # type: ignore[attr-defined]
    table.add_row("active faults", escape(", ".join(p.active_faults)) or "none")  # type: ignore[attr-defined]
    return table


@load_app.command("run")
def run_load(
    users: int = typer.Option(20, "--users", min=1, max=10_000),
    spawn_rate: float = typer.Option(10.0, "--spawn-rate", min=0.1),
    duration: str = typer.Option("20s", "--duration", help="load ends by itself after this"),
    workers: int = typer.Option(0, "--workers", min=0, max=64, help="0: one Locust process; K: a master + K workers"),
    mix: str = typer.Option("", "--mix", help="trigger weights, e.g. ok=0.8,decline=0.2"),
    duplicates: float = typer.Option(0.1, "--duplicates", min=0.0, max=1.0),
    scenario: str = typer.Option(None, "--scenario", help="a chaos scenario to run at the same time"),
    seed: int = typer.Option(0, "--seed"),
    bugs: str = typer.Option("", "--bugs"),
    out: Path = typer.Option(None, "--out"),
    config: Path = typer.Option(None, "--config"),
    deadline: str = typer.Option("60s", "--deadline", help="how long sagas may take to converge after load"),
) -> None:
    """Run Locust headless against the SUT, then heal, converge and check every invariant."""
    from saga_harness.load.runner import LoadSpec, execute_load

    spec = LoadSpec(
        users=users,
        spawn_rate=spawn_rate,
        duration_s=parse_duration(duration, "--duration"),
        workers=workers,
        mix=mix,
        duplicates=duplicates,
        scenario=scenario,
        seed=seed,
        bugs=bugs or None,
        out=out,
        config=config,
        deadline_s=parse_duration(deadline, "--deadline"),
        command=" ".join(shlex.quote(a) for a in ["saga-harness", *sys.argv[1:]]),
    )
    started = time.monotonic()
    with Live(console=console, refresh_per_second=2, transient=True) as live:
        result = execute_load(spec, on_progress=lambda p: live.update(_live(p)))
    summary = json.loads((result.run_dir / "load.json").read_text())
    total = summary.get("locust", {}).get("total", {})
    table = Table(title="load")
    for col in ("requests", "failures", "req/s", "p50 ms", "p99 ms", "sagas", "converged after load"):
        table.add_column(col)
    table.add_row(
        str(total.get("requests")),
        str(total.get("failures")),
        str(total.get("requests_per_s")),
        str(total.get("p50_ms")),
        str(total.get("p99_ms")),
        str(summary.get("sagas_started")),
        f"{summary.get('convergence_after_load_s')}s",
    )
    console.print(table)
    print_summary(result.verdicts, result.run_dir)
    console.print(f"load run finished in {time.monotonic() - started:.1f}s")
    raise typer.Exit(0 if result.verdicts["ok"] else 1)
