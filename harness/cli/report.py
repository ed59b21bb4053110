"""``saga-harness report RUN_DIR [-o FILE]`` and ``saga-harness report index [RUNS_DIR]``."""

from __future__ import annotations

from pathlib import Path

import typer
from saga_harness.cli import app
from saga_harness.cli.display import show_paths


@app.command()
def report(
    target: str = typer.Argument(..., metavar="RUN_DIR | index", help="a run directory, or `index`"),
    runs_dir: Path = typer.Argument(None, metavar="[RUNS_DIR]", help="with `index`: the runs directory (runs)"),
    output: Path = typer.Option(None, "-o", "--output", help="where to write the report (default RUN_DIR/report.html)"),
) -> None:
    """(Re)build a run's self-contained HTML report, or with `index` the run index with trends."""
    # Imported here: `saga-harness --help` should not load the report templates.
    from saga_harness.reports import build_report, build_run_index

    if target == "index":
        show_paths([("run index", build_run_index(runs_dir or Path("runs")))])
        return
    show_paths([("report", build_report(Path(target), output))])
