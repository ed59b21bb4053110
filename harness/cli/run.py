"""``saga-harness run`` and ``saga-harness check``: drive, record, judge."""

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
from saga_harness.errors import ConfigError
from saga_harness.run import RunSpec, check_history, execute, parse_duration

console = Console()


def _live_table(progress: object) -> Table:
    p = progress  # harness.runner.Progress
    table = Table(show_header=False, box=None)
    table.add_row("phase", f"[bold]{p.phase}[/]")  # type: ignore[attr-defined]
    table.add_row(
        "sagas",
        f"{p.started}/{p.planned} started, {p.finished} finished, "  # type: ignore[attr-defined]
        f"{p.in_flight} in flight",
    )  # type: ignore[attr-defined]
    table.add_row("outcomes", ", ".join(f"{k}={v}" for k, v in sorted(p.by_outcome.items())) or "-")  # type: ignore[attr-defined]
    table.add_row("events captured", str(p.events))  # type: ignore[attr-defined]
    if p.failed_requests:  # type: ignore[attr-defined]
        table.add_row("failed requests", f"[red]{p.failed_requests}[/]")  # type: ignore[attr-defined]
    return table


def print_summary(verdicts: dict, run_dir: Path) -> None:
    """The end-of-run table: each invariant, its verdict and counts, then the violations."""
    table = Table(title=f"verdicts — {verdicts.get('sut')} seed {verdicts.get('seed')}")
    for col in ("check", "verdict", "violations", "stats"):
        table.add_column(col)
    for check in verdicts["checks"]:
        verdict = "[green]ok[/]" if check["ok"] else "[bold red]VIOLATED[/]"
        stats = ", ".join(f"{k}={v}" for k, v in list(check.get("stats", {}).items())[:4])
        table.add_row(escape(check["name"]), verdict, str(len(check.get("violations", []))), escape(stats))
    console.print(table)
    stats = verdicts.get("stats", {})
    conv = stats.get("convergence_s", {})
    console.print(
        f"sagas started: {stats.get('sagas_started')}  by outcome: {stats.get('by_outcome')}  "
        f"time to converge p50={conv.get('p50')} p99={conv.get('p99')} max={conv.get('max')}"
    )
    for check in verdicts["checks"]:
        for v in check.get("violations", [])[:5]:
            console.print(
                f"[red]✗ {check['name']}[/] saga [bold]{escape(str(v.get('saga_id')))}[/] "
                f"step {escape(str(v.get('step')))}: expected {escape(str(v.get('expected')))}; "
                f"got {escape(str(v.get('actual')))}",
                highlight=False,
            )
    if not verdicts["ok"]:
        console.print(f"reproduce with: [bold]{escape(str(verdicts.get('command')))}[/]", highlight=False)
    from saga_harness.run import report

    path = report(run_dir)
    console.print(f"run directory: [cyan]{run_dir}[/]")
    if path is not None:
        console.print(f"report: [cyan]{path}[/]")


@app.command()
def run(
    sagas: int = typer.Option(100, "--sagas", min=0, help="how many sagas to start"),
    concurrency: int = typer.Option(20, "--concurrency", min=1, max=1000, help="clients in flight at once"),
    seed: int = typer.Option(0, "--seed", help="makes the workload (and faults) replayable"),
    mix: str = typer.Option("", "--mix", help="trigger weights, e.g. ok=0.7,decline=0.1,fraud=0.2"),
    duplicates: float = typer.Option(
        0.0, "--duplicates", min=0.0, max=1.0, help="share of sagas resent with the same idempotency key"
    ),
    deadline: str = typer.Option("30s", "--deadline", help="how long sagas may take to converge"),
    out: Path = typer.Option(None, "--out", help="run directory (default runs/<time>-<sut>)"),
    config: Path = typer.Option(None, "--config", help="saga-harness.toml describing your SUT"),
    bugs: str = typer.Option("", "--bugs", help="reference system's seeded bugs to switch on"),
    database_url: str = typer.Option(None, "--database-url", help="reference system on PostgreSQL"),
) -> None:
    """Start the SUT, drive sagas, wait for convergence, check every invariant."""
    spec = RunSpec(
        sagas=sagas,
        concurrency=concurrency,
        seed=seed,
        mix=mix,
        duplicates=duplicates,
        deadline_s=parse_duration(deadline, "--deadline"),
        out=out,
        config=config,
        bugs=bugs or None,
        database_url=database_url,
        command=" ".join(shlex.quote(a) for a in ["saga-harness", *sys.argv[1:]]),
    )
    started = time.monotonic()
    with Live(console=console, refresh_per_second=4, transient=True) as live:

        def show(progress: object) -> None:
            live.update(_live_table(progress))

        result = execute(spec, on_progress=show)
    print_summary(result.verdicts, result.run_dir)
    console.print(f"finished in {time.monotonic() - started:.1f}s")
    raise typer.Exit(0 if result.verdicts["ok"] else 1)


@app.command()
def check(
    history: Path = typer.Argument(..., help="a history.jsonl (or a run directory)"),
    out: Path = typer.Option(None, "--out", help="where verdicts.json and junit.xml go (default: beside it)"),
    config: Path = typer.Option(None, "--config", help="the SUT description whose model judges it"),
) -> None:
    """Re-check a recorded history offline."""
    if not history.exists():
        raise ConfigError(f"{history}: no such file or directory; give a history.jsonl or a run directory")
    verdicts, run_dir = check_history(history, out=out, config=config)
    print_summary(verdicts, run_dir)
    raise typer.Exit(0 if verdicts["ok"] else 1)
