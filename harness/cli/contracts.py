"""``saga-harness contracts``: consumer contracts (Pact), CloudEvent schemas, OpenAPI fuzzing."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from saga_harness.cli import app
from saga_harness.cli.display import ProgressDisplay, console, show_paths
from saga_harness.cli.options import CONFIG_HELP, SUT_HELP, command_line
from saga_harness.reports import write_reports

contracts_app = typer.Typer(
    name="contracts",
    help="Consumer contracts (Pact), CloudEvent schemas, OpenAPI fuzzing.",
    no_args_is_help=True,
)
app.add_typer(contracts_app, name="contracts")


@contracts_app.command("verify")
def verify(
    pacts: Path = typer.Option(None, "--pacts", help="folder of pact files (default: the SUT's own)"),
    config: Path = typer.Option(None, "--config", help=CONFIG_HELP),
    sut: str = typer.Option(None, "--sut", help=SUT_HELP),
    provider: list[str] = typer.Option(None, "--provider", help="verify only this provider (repeatable)"),
    broker_url: str = typer.Option(
        None, "--broker-url", envvar="PACT_BROKER_BASE_URL", help="fetch pacts from a Pact Broker instead"
    ),
    broker_token: str = typer.Option(None, "--broker-token", envvar="PACT_BROKER_TOKEN", help="the broker's token"),
    bugs: str = typer.Option("", "--bugs", help="the SUT's seeded bugs to switch on"),
    out: Path = typer.Option(None, "--out", help="run directory (default runs/TIME-contracts)"),
) -> None:
    """Start the SUT and verify each provider against the consumers' pacts."""
    # Imported here: `saga-harness --help` should not load Pact's verifier.
    from saga_harness.contracts.verify import verify_sut

    with ProgressDisplay() as display:
        results, run_dir = verify_sut(
            out=out,
            sut=sut,
            config=config,
            bugs=bugs or None,
            pacts=pacts,
            only=list(provider or []) or None,
            broker_url=broker_url,
            broker_token=broker_token,
            command=command_line(),
            listener=display,
        )
    write_reports(run_dir)
    table = Table(title="pact verification")
    for col in ("provider ← consumer", "interaction", "result", "mismatch"):
        table.add_column(col, overflow="fold")
    for i in results.interactions:
        verdict = "[green]ok[/]" if i.ok else ("[yellow]pending[/]" if i.pending else "[bold red]FAILED[/]")
        mismatch = "; ".join(f"{m.path or m.kind}: {m.reason}" for m in i.mismatches[:3])
        table.add_row(
            escape(f"{i.provider} ← {i.consumer}"), escape(f"{i.description} ({i.kind})"), verdict, escape(mismatch)
        )
    console.print(table)
    for err in results.errors:
        console.print(f"[red]✗[/] {escape(err)}", highlight=False)
    failed = sum(1 for i in results.interactions if not (i.ok or i.pending))
    console.print(f"{len(results.interactions) - failed} passed, {failed} failed")
    show_paths([("verifier log", run_dir / "pact.log"), ("results", run_dir / "contracts.json")])
    raise typer.Exit(0 if results.ok else 1)


@contracts_app.command("fuzz")
def fuzz(
    max_examples: int = typer.Option(25, "--max-examples", min=1, max=10_000, help="test cases per operation"),
    service: list[str] = typer.Option(None, "--service", help="fuzz only this service (repeatable)"),
    seed: int = typer.Option(0, "--seed", help="makes the generated cases replayable"),
    phases: str = typer.Option(
        "examples,fuzzing,stateful", "--phases", help="schemathesis phases: examples, coverage, fuzzing, stateful"
    ),
    config: Path = typer.Option(None, "--config", help=CONFIG_HELP),
    sut: str = typer.Option(None, "--sut", help=SUT_HELP),
    bugs: str = typer.Option("", "--bugs", help="the SUT's seeded bugs to switch on"),
    out: Path = typer.Option(None, "--out", help="run directory (default runs/TIME-fuzz)"),
) -> None:
    """Start the SUT and fuzz every service's OpenAPI with schemathesis."""
    # Imported here: `saga-harness --help` should not load the fuzzing driver.
    from saga_harness.contracts.fuzz import fuzz_sut

    with ProgressDisplay() as display:
        results, run_dir = fuzz_sut(
            out=out,
            sut=sut,
            config=config,
            bugs=bugs or None,
            only=list(service or []) or None,
            max_examples=max_examples,
            seed=seed,
            phases=tuple(p.strip() for p in phases.split(",") if p.strip()),
            command=command_line(),
            listener=display,
        )
    write_reports(run_dir)
    table = Table(title=f"OpenAPI fuzzing ({max_examples} examples per operation, seed {seed})")
    for col in ("service", "operations", "test cases", "result", "failures", "seconds"):
        table.add_column(col, overflow="fold")
    for s in results.services:
        found = "; ".join(f"{f.code} {f.title}: {', '.join(f.operations)}" for f in s.failures)
        found = "; ".join(filter(None, [found, *s.errors]))
        verdict = "[green]ok[/]" if s.ok else "[bold red]FAILED[/]"
        table.add_row(s.service, str(s.operations), str(s.test_cases), verdict, escape(found), f"{s.seconds:.1f}")
    console.print(table)
    show_paths([("reports", run_dir / "fuzz"), ("results", run_dir / "contracts.json")])
    raise typer.Exit(0 if results.ok else 1)
