"""``saga-harness explore``: one fault at one call, for every call the sagas make."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from saga_harness.cli import app
from saga_harness.cli.display import console, elapsed_since, show_paths
from saga_harness.cli.options import CONFIG_HELP, ENV_HELP, SUT_HELP, command_line, parse_env
from saga_harness.durations import parse_duration

_SHOWN = {"ok": "ok", "violated": "[bold red]VIOLATED[/]", "inconclusive": "[yellow]inconclusive[/]"}
_SHORT = {
    "http_error": "error",
    "lose_answer": "lost answer",
    "duplicate_request": "sent twice",
    "http_error_always": "always error",
    "duplicate": "delivered twice",
}


@app.command("explore")
def explore_command(
    faults: str = typer.Option(
        "http_error,lose_answer,duplicate_request,duplicate",
        "--faults",
        help="fault kinds, comma-separated: http_error (an error before the call takes effect), lose_answer (the "
        "answer lost after it), duplicate_request, delay_answer, cut_body, http_error_always (every such call fails: "
        "the step fails), duplicate (every push of a component delivered twice)",
    ),
    links: str = typer.Option("", "--links", help="only the calls on these links (comma-separated; default all)"),
    sagas: int = typer.Option(6, "--sagas", min=1, help="sagas per run"),
    mix: str = typer.Option(
        "", "--mix", help="trigger weights, e.g. ok=1 (only sagas meant to complete: every failure is a fault's)"
    ),
    seed: int = typer.Option(0, "--seed", help="the same seed gives the same workload and the same calls hit"),
    max_runs: int = typer.Option(None, "--max-runs", min=0, help="at most this many fault runs"),
    budget: str = typer.Option(None, "--time", help="stop starting runs after this long, e.g. 10m"),
    deadline: str = typer.Option("60s", "--deadline", help="how long each run's sagas may take to converge"),
    out: Path = typer.Option(None, "--out", help="where the runs and explore.json go (default runs/TIME-explore)"),
    config: Path = typer.Option(None, "--config", help=CONFIG_HELP),
    sut: str = typer.Option(None, "--sut", help=SUT_HELP),
    bugs: str = typer.Option("", "--bugs", help="the SUT's seeded bugs to switch on"),
    database_url: str = typer.Option(None, "--database-url", help="reference system on PostgreSQL"),
    env: list[str] = typer.Option(None, "--env", help=ENV_HELP),
) -> None:
    """Learn the calls one saga makes across the links (a clean run with every link behind the HTTP fault
    proxy), then run each call with each fault kind — exactly one fault, at the first such call — and judge
    every invariant. Prints the call × fault matrix; writes explore.json and, for each failing cell, a
    counterexample in its run directory (saga-harness replay).

    Exit status: 0 every cell holds; 1 a cell (or the clean baseline) violates a check; 3 none violated but
    one was inconclusive; 2 a usage, config or start-up error.
    """
    from saga_harness.chaos.explore import Target, explore
    from saga_harness.lifecycle import run_dir_for
    from saga_harness.workload import parse_mix

    kinds = [f.strip() for f in faults.split(",") if f.strip()]
    out_dir = run_dir_for(out, "explore")
    started = time.monotonic()

    from saga_harness.reports import write_reports

    def shown(cell, i: int, n: int) -> None:  # noqa: ANN001 - a Cell
        if cell.run_dir:
            write_reports(Path(cell.run_dir))  # each cell's own report, linked from the grid
        hit = "" if cell.hit is None else (" (hit)" if cell.hit else " (not hit)")
        console.print(
            f"[{i + 1}/{n}] {escape(cell.link)} {escape(cell.call)} × {cell.fault}: "
            f"{_SHOWN.get(cell.verdict, cell.verdict)}{hit} {cell.seconds:.0f}s",
            highlight=False,
        )

    result = explore(
        Target(sut=sut, config=config, bugs=bugs or None, database_url=database_url, env=parse_env(env)),
        out_dir,
        faults=kinds,
        links=[x.strip() for x in links.split(",") if x.strip()],
        sagas=sagas,
        mix=parse_mix(mix, None),
        seed=seed,
        max_runs=max_runs,
        time_s=parse_duration(budget, "--time") if budget else None,
        deadline_s=parse_duration(deadline, "--deadline"),
        command=command_line(),
        on_cell=shown,
    )
    table = Table(title=f"explore: {result.sut}, seed {result.seed}, {result.sagas} sagas per run")
    table.add_column("link · call", overflow="fold", ratio=3)
    for kind in result.faults:  # short headers: the grid must fit a terminal
        table.add_column(_SHORT.get(kind, kind), justify="center", overflow="fold", ratio=1)
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for cell in result.cells:
        text = _SHOWN.get(cell.verdict, cell.verdict)
        if cell.verdict == "violated":
            text += "\n" + escape("; ".join(sorted({k.split(" · ")[0] for k in cell.findings})))
        if cell.hit is False:
            text = f"[dim]not hit[/]\n({text})"
        rows.setdefault((cell.link, cell.call), {})[cell.fault] = text
    for (link, call), cells in rows.items():
        table.add_row(f"{escape(link)} · {escape(call)}", *(cells.get(k, "[dim]-[/]") for k in result.faults))
    console.print(table)
    base = result.baseline
    if base is not None and base.verdict != "ok":
        console.print(f"baseline (no fault): {_SHOWN.get(base.verdict, base.verdict)}", highlight=False)
    console.print(
        f"explored {len(result.cells)} of {result.planned} points ({result.unpruned} before pruning; "
        f"{result.skipped} not run: the budget) in {result.runs} runs: {len(result.violated)} violated",
        highlight=False,
    )
    from saga_harness.reports import build_explore_report

    report = build_explore_report(out_dir / "explore.json")
    show_paths([("explore.json", out_dir / "explore.json"), ("report", report), ("runs", out_dir)])
    console.print(f"explore finished in {elapsed_since(started)}", highlight=False)
    statuses = {c.verdict for c in result.cells} | ({base.verdict} if base is not None else set())
    raise typer.Exit(1 if "violated" in statuses else 3 if "inconclusive" in statuses else 0)
