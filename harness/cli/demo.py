"""``saga-harness demo``: the whole tool on the reference system, in a few minutes.

1. a handful of sagas of every outcome, printed;
2. the consumers' pacts verified against the running services (HTTP and messages);
3. a chaos scenario (duplicate deliveries) under a short Locust load with two
   workers, every invariant checked, every captured event validated — it holds;
4. the same with a seeded bug switched on — the harness catches it;
5. both HTML reports and the run index; every process stopped at the end.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.panel import Panel
from rich.table import Table
from saga_harness.cli import app
from saga_harness.cli.conclude import conclude
from saga_harness.cli.display import ProgressDisplay, console, show_paths
from saga_harness.errors import SutError
from saga_harness.lifecycle import Lifecycle, RunRequest
from saga_harness.reports import write_reports
from saga_harness.rundir import write_contracts_section

SCENARIO = "duplicate-deliveries"
BUG = "payment.double_charge_on_redelivery"


@app.command()
def demo(
    per_trigger: int = typer.Option(1, "--per-trigger", min=1, max=50, help="sagas per trigger in step 1"),
    runs: Path = typer.Option(Path("runs"), "--runs", help="where run directories go"),
    quick: bool = typer.Option(False, "--quick", help="only step 1 (start, a few sagas, stop)"),
) -> None:
    """Start the reference system, run sagas, chaos under load, a caught bug, reports."""
    t0 = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    console.print(Panel.fit("saga-harness demo — the reference saga system under test", style="bold"))
    console.rule("1. sagas of every outcome")
    _sagas(runs / f"{stamp}-demo-sagas", per_trigger)
    if quick:
        return
    # Imported here: `saga-harness --help` should not load the drivers.
    from saga_harness.contracts.verify import verify_sut
    from saga_harness.load.runner import LoadSpec, execute_load
    from saga_harness.reports import build_run_index

    console.rule("2. consumer contracts (Pact)")
    with console.status("replaying every pact against the running services…"):
        pacts, pacts_dir = verify_sut(out=runs / f"{stamp}-demo-contracts", command="saga-harness contracts verify")
    write_reports(pacts_dir)
    kinds = [i.kind for i in pacts.interactions]
    passed = sum(1 for i in pacts.interactions if i.ok)
    console.print(
        f"{passed}/{len(kinds)} interactions verified "
        f"({kinds.count('http')} HTTP, {kinds.count('message')} messages) "
        + ("[green]every pact holds[/]" if pacts.ok else "[red]contracts broken[/]")
    )
    results = []
    for label, bug in (("3. chaos under load, correct system", None), ("4. the same with a seeded bug", BUG)):
        console.rule(label)
        console.print(
            f"scenario [bold]{SCENARIO}[/], Locust 20 users with 2 workers for 10 s"
            + (f", seeded bug [bold red]{bug}[/]" if bug else "")
        )
        with ProgressDisplay() as display:
            result = execute_load(
                LoadSpec(
                    users=20,
                    spawn_rate=10,
                    duration_s=10,
                    workers=2,
                    duplicates=0.1,
                    scenario=SCENARIO,
                    seed=1,
                    bugs=bug,
                    out=runs / f"{stamp}-demo-{'bug' if bug else 'clean'}",
                    command=f"saga-harness load run --users 20 --duration 10s --workers 2 "
                    f"--scenario {SCENARIO} --seed 1" + (f" --bugs {bug}" if bug else ""),
                ),
                display,
            )
        # The report shows the pacts beside the invariants.
        write_contracts_section(result.run_dir, "pacts", pacts.to_json())
        conclude(result.verdicts, result.run_dir)
        report = result.run_dir / "report.html"
        results.append((label, result, report if report.exists() else None))
    index = build_run_index(runs)
    console.rule("summary")
    table = Table()
    for col in ("run", "verdict", "sagas", "violations", "report"):
        table.add_column(col)
    for label, result, path in results:
        v = result.verdicts
        table.add_row(
            label,
            "[green]all invariants hold[/]" if v.ok else "[red]violations caught[/]",
            str(v.stats.sagas_started),
            str(len(v.failures)),
            str(path),
        )
    console.print(table)
    show_paths([("run index", index)])
    console.print(f"demo finished in {time.monotonic() - t0:.0f}s; every process it started has stopped.")
    clean, bugged = results[0][1].verdicts, results[1][1].verdicts
    if not pacts.ok or not clean.ok or bugged.ok:
        console.print("[red]unexpected: the correct system must pass and the seeded bug must be caught[/]")
        raise typer.Exit(1)


def _sagas(run_dir: Path, per_trigger: int) -> None:
    """Step 1: ``per_trigger`` sagas of each trigger with a definite outcome, and what became of them."""
    life = Lifecycle(RunRequest(label="demo-sagas", out=run_dir, sut="reference", command="saga-harness demo --quick"))
    triggers = {n: t for n, t in life.sut.triggers().items() if t.expected_outcome != "any"}
    workload = [s for k, name in enumerate(triggers) for s in life.plan(per_trigger, mix={name: 1.0}, seed=k)]
    trigger_of = {s.key: s.trigger for s in workload}
    with life as run:
        console.print(f"started {len(run.sut.services())} processes (logs in {run_dir / 'sut' / 'logs'})")
        run.call(run.runner.drive(workload))
        if not run.call(run.runner.converge(60)):
            raise SutError("sagas did not finish within 60s; see the logs under the run directory")
        views = {sid: run.call(run.sut.saga_status(run.http, sid)) for sid in run.runner.saga_ids}
    table = Table(title="sagas")
    for col in ("saga", "trigger", "outcome", "what happened"):
        table.add_column(col)
    for sid, view in views.items():
        trigger = trigger_of[run.runner.saga_ids[sid]]
        steps = view.raw.get("steps", [])
        failed = [s["name"] for s in steps if s.get("status") in ("failed", "timed_out")]
        undone = [s["name"] for s in steps if s.get("kind") == "compensation"]
        what = f"{failed[0]} failed; undone: {', '.join(undone) or 'nothing'}" if failed else f"{len(steps)} steps done"
        colour = "green" if view.outcome == triggers[trigger].expected_outcome else "red"
        table.add_row(sid[:10], trigger, f"[{colour}]{view.outcome}[/]", what)
    console.print(table)
    console.print("stopped every process")
