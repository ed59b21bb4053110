"""``saga-harness load run``: Locust load (single or distributed), optionally with chaos."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table
from saga_harness.cli import app
from saga_harness.cli.conclude import conclude
from saga_harness.cli.display import ProgressDisplay, console, elapsed_since
from saga_harness.cli.options import CONFIG_HELP, ENV_HELP, SUT_HELP, command_line, parse_env
from saga_harness.durations import parse_duration

load_app = typer.Typer(help="Locust load on a saga system, judged by the same checkers.", no_args_is_help=True)
app.add_typer(load_app, name="load")


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
    config: Path = typer.Option(None, "--config", help=CONFIG_HELP),
    sut: str = typer.Option(None, "--sut", help=SUT_HELP),
    env: list[str] = typer.Option(None, "--env", help=ENV_HELP),
    deadline: str = typer.Option("60s", "--deadline", help="how long sagas may take to converge after load"),
) -> None:
    """Run Locust headless against the SUT, then heal, converge and check every invariant.

    Exit status: 0 every check holds; 1 a violation is proved; 3 inconclusive (no violation
    proved, but a check could not be judged: evidence still arriving, the machine starved, a saga
    still progressing when observation ended); 2 a usage, config or start-up error.
    """
    # Imported here: `saga-harness --help` should not load the load driver (and the chaos engine).
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
        sut=sut,
        config=config,
        env=parse_env(env),
        deadline_s=parse_duration(deadline, "--deadline"),
        command=command_line(),
    )
    started = time.monotonic()
    with ProgressDisplay() as display:
        result = execute_load(spec, display)
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
    status = conclude(result.verdicts, result.run_dir)
    console.print(f"load run finished in {elapsed_since(started)}", highlight=False)
    raise typer.Exit(status)
