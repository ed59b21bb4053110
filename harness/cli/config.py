"""``saga-harness config``: the reference of every ``saga-harness.toml`` key, and checking a file."""

from __future__ import annotations

from pathlib import Path

import typer
from saga_harness.cli import app
from saga_harness.cli.display import console

config_app = typer.Typer(help="The saga-harness.toml reference, and checking a description.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("reference")
def reference_cmd(
    out: Path = typer.Option(None, "--out", help="write it there (e.g. docs/config.md) instead of printing it"),
    check: bool = typer.Option(False, "--check", help="exit 1 when --out holds another text (a stale reference)"),
) -> None:
    """Every key of saga-harness.toml, generated from the config models' descriptions."""
    from saga_harness.config import reference

    text = reference()
    if out is None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    if check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            console.print(f"{out} is stale: run `saga-harness config reference --out {out}`", highlight=False)
            raise typer.Exit(1)
        console.print(f"{out} is up to date", highlight=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out}", highlight=False)


@config_app.command("check")
def check_cmd(path: Path = typer.Argument(Path("saga-harness.toml"), help="the description to check")) -> None:
    """Load and validate a description (its [model] too) without starting anything; exit 2 on a mistake."""
    from saga_harness.adapters.declarative import DeclarativeSystem

    system = DeclarativeSystem.from_file(path, Path("."))
    system.model()
    steps = ", ".join(s.name for s in system.plan.saga_steps)
    console.print(f"{path}: {system.name} is valid (start: {steps})", highlight=False)
