"""``saga-harness chaos list`` and ``saga-harness chaos run``."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from saga_harness.cli import app
from saga_harness.cli.conclude import conclude
from saga_harness.cli.display import ProgressDisplay, console, elapsed_since
from saga_harness.cli.options import CONFIG_HELP, ENV_HELP, SUT_HELP, command_line, parse_env

chaos_app = typer.Typer(
    help="Fault scenarios: Toxiproxy link faults, process and delivery faults.", no_args_is_help=True
)
app.add_typer(chaos_app, name="chaos")


@chaos_app.command("list")
def list_scenarios() -> None:
    """The scenario catalogue (chaos/scenarios/*.yaml)."""
    # Imported here: `saga-harness --help` should not load the scenario machinery (pydantic, YAML).
    from saga_harness.chaos.scenario import catalogue

    table = Table(title="chaos scenarios")
    for col in ("name", "faults", "description"):
        table.add_column(col)
    for scenario, _path in catalogue():
        kinds = sorted({f.kind for f in scenario.faults} | set(scenario.random.kinds if scenario.random else []))
        table.add_row(scenario.name, ", ".join(kinds) or "none", escape(scenario.description.strip()))
    console.print(table)


@chaos_app.command("run")
def run_scenario(
    scenario: str = typer.Argument(..., help="a catalogue name (see `chaos list`) or a YAML file"),
    seed: int = typer.Option(0, "--seed", help="the same seed gives the same faults and workload"),
    sagas: int = typer.Option(None, "--sagas", min=0, help="override the scenario's number of sagas"),
    bugs: str = typer.Option("", "--bugs", help="the SUT's seeded bugs to switch on"),
    out: Path = typer.Option(None, "--out", help="run directory (default runs/TIME-SCENARIO)"),
    config: Path = typer.Option(None, "--config", help=CONFIG_HELP),
    sut: str = typer.Option(None, "--sut", help=SUT_HELP),
    database_url: str = typer.Option(None, "--database-url", help="reference system on PostgreSQL"),
    env: list[str] = typer.Option(None, "--env", help=ENV_HELP),
    shrink: bool = typer.Option(
        False,
        "--shrink",
        help="if the run fails, reduce it to a minimal failing one (fewer faults, fewer sagas, "
        "narrower windows) by re-running it; writes shrunk.yaml in the run directory",
    ),
    shrink_runs: int = typer.Option(24, "--shrink-runs", min=1, help="at most this many re-runs when shrinking"),
) -> None:
    """Run one scenario with a progress display; heal every fault, converge, check.

    Exit status: 0 every check holds; 1 a violation is proved; 3 inconclusive (no violation
    proved, but a check could not be judged: evidence still arriving, the machine starved, a saga
    still progressing when observation ended); 2 a usage, config or start-up error.
    """
    # Imported here: `saga-harness --help` should not load the chaos engine.
    from saga_harness.chaos.run import execute_scenario
    from saga_harness.chaos.scenario import load_scenario

    loaded, _path = load_scenario(scenario)
    started = time.monotonic()
    with ProgressDisplay() as display:
        result = execute_scenario(
            loaded,
            seed=seed,
            sagas=sagas,
            bugs=bugs or None,
            out=out,
            sut=sut,
            config=config,
            database_url=database_url,
            env=parse_env(env),
            command=command_line(),
            listener=display,
        )
    status = conclude(result.verdicts, result.run_dir)
    console.print(f"scenario {loaded.name} finished in {elapsed_since(started)}", highlight=False)
    if shrink and status == 1:
        shrink_failing(result.run_dir, shrink_runs)
    raise typer.Exit(status)


def shrink_failing(run_dir: Path, max_runs: int) -> None:
    """Shrink the failing run in ``run_dir`` and say what it came to."""
    from saga_harness.chaos.shrink import shrink_run

    def shown(i: int, faults: list, sagas: int, failed: bool) -> None:  # noqa: ANN001
        verdict = "[bold red]fails[/]" if failed else "passes"
        console.print(f"shrink #{i}: {len(faults)} fault(s), {sagas} sagas: {verdict}", highlight=False)

    started = time.monotonic()
    console.print(f"shrinking (at most {max_runs} runs) …", highlight=False)
    shrunk, path = shrink_run(run_dir, max_runs=max_runs, on_trial=shown)
    kinds = ", ".join(f"{f.kind} {f.link or f.process or f.target}" for f in shrunk.faults) or "no fault at all"
    console.print(
        f"shrunk to {len(shrunk.faults)} fault(s) ({escape(kinds)}) and {shrunk.sagas} sagas in {shrunk.runs} runs, "
        f"{elapsed_since(started)}",
        highlight=False,
    )
    console.print(f"minimal scenario: {path}", highlight=False, soft_wrap=True)
