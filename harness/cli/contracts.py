"""``saga-harness contracts``: consumer contracts (Pact), CloudEvent schemas, OpenAPI fuzzing."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from saga_harness.cli import app

contracts_app = typer.Typer(
    name="contracts",
    help="Consumer contracts (Pact), CloudEvent schemas, OpenAPI fuzzing.",
    no_args_is_help=True,
)
app.add_typer(contracts_app, name="contracts")
console = Console()


def _mismatch_text(mismatches: list[dict]) -> str:
    return "; ".join(f"{m['path'] or m['kind']}: {m['reason']}" for m in mismatches[:3])


@contracts_app.command("verify")
def verify(
    pacts: Path = typer.Option(None, "--pacts", help="folder of pact files (default: the SUT's own)"),
    config: Path = typer.Option(None, "--config", help="saga-harness.toml describing your SUT"),
    provider: list[str] = typer.Option(None, "--provider", help="verify only this provider (repeatable)"),
    broker_url: str = typer.Option(
        None, "--broker-url", envvar="PACT_BROKER_BASE_URL", help="fetch pacts from a Pact Broker instead"
    ),
    broker_token: str = typer.Option(None, "--broker-token", envvar="PACT_BROKER_TOKEN", help="the broker's token"),
    bugs: str = typer.Option("", "--bugs", help="reference system's seeded bugs to switch on"),
    out: Path = typer.Option(None, "--out", help="run directory (default runs/<time>-contracts)"),
) -> None:
    """Start the SUT and verify each provider against the consumers' pacts."""
    from saga_harness.contracts.verify import verify_sut
    from saga_harness.run import new_run_dir

    run_dir = new_run_dir(out, "contracts")
    with console.status("starting the SUT and replaying the pacts…"):
        results = verify_sut(
            run_dir,
            config=config,
            bugs=bugs or None,
            pacts=pacts,
            only=list(provider or []) or None,
            broker_url=broker_url,
            broker_token=broker_token,
        )
    doc = results.to_json()
    table = Table(title="pact verification")
    for col in ("provider ← consumer", "interaction", "result", "mismatch"):
        table.add_column(col, overflow="fold")
    for i in doc["interactions"]:
        verdict = "[green]ok[/]" if i["ok"] else ("[yellow]pending[/]" if i["pending"] else "[bold red]FAILED[/]")
        table.add_row(
            escape(f"{i['provider']} ← {i['consumer']}"),
            escape(f"{i['description']} ({i['kind']})"),
            verdict,
            escape(_mismatch_text(i["mismatches"])),
        )
    console.print(table)
    for err in doc["errors"]:
        console.print(f"[red]✗[/] {escape(err)}", highlight=False)
    console.print(f"{doc['passed']} passed, {doc['failed']} failed; verifier log: [cyan]{run_dir / 'pact.log'}[/]")
    console.print(f"results: [cyan]{run_dir / 'contracts.json'}[/]")
    raise typer.Exit(0 if results.ok else 1)


@contracts_app.command("fuzz")
def fuzz(
    max_examples: int = typer.Option(25, "--max-examples", min=1, max=10_000, help="test cases per operation"),
    service: list[str] = typer.Option(None, "--service", help="fuzz only this service (repeatable)"),
    seed: int = typer.Option(0, "--seed", help="makes the generated cases replayable"),
    phases: str = typer.Option(
        "examples,fuzzing,stateful", "--phases", help="schemathesis phases: examples, coverage, fuzzing, stateful"
    ),
    config: Path = typer.Option(None, "--config", help="saga-harness.toml describing your SUT"),
    bugs: str = typer.Option("", "--bugs", help="reference system's seeded bugs to switch on"),
    out: Path = typer.Option(None, "--out", help="run directory (default runs/<time>-fuzz)"),
) -> None:
    """Start the SUT and fuzz every service's OpenAPI with schemathesis."""
    from saga_harness.contracts.fuzz import fuzz_sut
    from saga_harness.run import new_run_dir

    run_dir = new_run_dir(out, "fuzz")
    with console.status("fuzzing each service's OpenAPI…"):
        results = fuzz_sut(
            run_dir,
            config=config,
            bugs=bugs or None,
            only=list(service or []) or None,
            max_examples=max_examples,
            seed=seed,
            phases=tuple(p.strip() for p in phases.split(",") if p.strip()),
        )
    table = Table(title=f"OpenAPI fuzzing ({max_examples} examples per operation, seed {seed})")
    for col in ("service", "operations", "test cases", "result", "failures", "seconds"):
        table.add_column(col, overflow="fold")
    for s in results.services:
        found = "; ".join(f"{f.code} {f.title}: {', '.join(f.operations)}" for f in s.failures)
        found = "; ".join(filter(None, [found, *s.errors]))
        verdict = "[green]ok[/]" if s.ok else "[bold red]FAILED[/]"
        table.add_row(s.service, str(s.operations), str(s.test_cases), verdict, escape(found), f"{s.seconds:.1f}")
    console.print(table)
    console.print(f"reports: [cyan]{run_dir / 'fuzz'}[/]  results: [cyan]{run_dir / 'contracts.json'}[/]")
    raise typer.Exit(0 if results.ok else 1)
