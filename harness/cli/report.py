"""``saga-harness report RUN_DIR [-o FILE]`` and ``saga-harness report index [RUNS_DIR]``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from saga_harness.cli import app

console = Console()


@app.command()
def report(
    target: str = typer.Argument(..., metavar="RUN_DIR | index", help="a run directory, or `index`"),
    runs_dir: Path = typer.Argument(None, metavar="[RUNS_DIR]", help="with `index`: the runs directory (runs)"),
    output: Path = typer.Option(None, "-o", "--output", help="where to write the report (default RUN_DIR/report.html)"),
) -> None:
    """(Re)build a run's self-contained HTML report, or with `index` the run index with trends."""
    if target == "index":
        from saga_harness.reports.index import build_index

        console.print(f"run index: [cyan]{build_index(runs_dir or Path('runs'))}[/]")
        return
    from saga_harness.reports.html import build_report

    console.print(f"report: [cyan]{build_report(Path(target), output)}[/]")
