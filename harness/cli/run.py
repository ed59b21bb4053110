"""``saga-harness run`` and ``saga-harness check``: drive, record, judge; judge again offline."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from saga_harness.cli import app
from saga_harness.cli.conclude import conclude
from saga_harness.cli.display import ProgressDisplay, console, elapsed_since
from saga_harness.cli.options import CONFIG_HELP, ENV_HELP, SUT_HELP, command_line, parse_env
from saga_harness.durations import parse_duration
from saga_harness.errors import ConfigError
from saga_harness.lifecycle import rejudge
from saga_harness.run import RunSpec, execute


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
    out: Path = typer.Option(None, "--out", help="run directory (default runs/TIME-SUT)"),
    config: Path = typer.Option(None, "--config", help=CONFIG_HELP),
    sut: str = typer.Option(None, "--sut", help=SUT_HELP),
    bugs: str = typer.Option("", "--bugs", help="the SUT's seeded bugs to switch on"),
    database_url: str = typer.Option(None, "--database-url", help="reference system on PostgreSQL"),
    env: list[str] = typer.Option(None, "--env", help=ENV_HELP),
) -> None:
    """Start the SUT, drive sagas, wait for convergence, check every invariant.

    Exit status: 0 every check holds; 1 a violation is proved; 3 inconclusive (no violation
    proved, but a check could not be judged: evidence still arriving, the machine starved, a saga
    still progressing when observation ended); 2 a usage, config or start-up error.
    """
    spec = RunSpec(
        sagas=sagas,
        concurrency=concurrency,
        seed=seed,
        mix=mix,
        duplicates=duplicates,
        deadline_s=parse_duration(deadline, "--deadline"),
        out=out,
        sut=sut,
        config=config,
        bugs=bugs or None,
        database_url=database_url,
        env=parse_env(env),
        command=command_line(),
    )
    started = time.monotonic()
    with ProgressDisplay() as display:
        result = execute(spec, display)
    status = conclude(result.verdicts, result.run_dir)
    console.print(f"finished in {elapsed_since(started)}", highlight=False)
    raise typer.Exit(status)


@app.command()
def check(
    history: Path = typer.Argument(..., help="a history.jsonl (or a run directory)"),
    out: Path = typer.Option(None, "--out", help="where verdicts.json and junit.xml go (default: beside it)"),
    config: Path = typer.Option(None, "--config", help="the SUT description whose model judges it"),
    sut: str = typer.Option(None, "--sut", help="the SUT plugin whose model judges it (default: the run's)"),
) -> None:
    """Judge a recorded history again, offline (nothing is started): the same verdicts, the same exit status.

    Exit status: 0 every check holds; 1 a violation is proved; 3 inconclusive (no violation
    proved, but a check could not be judged: evidence still arriving, the machine starved, a saga
    still progressing when observation ended); 2 a usage, config or start-up error.
    """
    if not history.exists():
        raise ConfigError(f"{history}: no such file or directory; give a history.jsonl or a run directory")
    verdicts, run_dir = rejudge(history, out, config=config, sut=sut)
    source = (history if history.is_dir() else history.parent).resolve()
    raise typer.Exit(conclude(verdicts, run_dir, source if source != run_dir else None))
