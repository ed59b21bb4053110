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
import uuid
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from saga_harness.adapters.reference import ReferenceSystem
from saga_harness.cli import app
from saga_harness.errors import SutError

console = Console()
SCENARIO = "duplicate-deliveries"
BUG = "payment.double_charge_on_redelivery"

# trigger -> (customer, token, sku, qty, expected outcome)
TRIGGERS = {
    "ok": ("cust_demo", "tok_ok", "SKU-1", 1, "completed"),
    "decline": ("cust_demo", "tok_decline", "SKU-2", 1, "compensated"),
    "fraud": ("cust_fraud", "tok_ok", "SKU-3", 1, "compensated"),
    "out_of_stock": ("cust_demo", "tok_ok", "SKU-SCARCE-1", 50, "compensated"),
    "capture_fail": ("cust_demo", "tok_capture_fail", "SKU-4", 2, "compensated"),
}


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
    from saga_harness.cli.run import print_summary
    from saga_harness.contracts.results import write_section
    from saga_harness.contracts.verify import verify_sut
    from saga_harness.load.runner import LoadSpec, execute_load
    from saga_harness.reports.index import build_index
    from saga_harness.run import report

    console.rule("2. consumer contracts (Pact)")
    with console.status("replaying every pact against the running services…"):
        pacts = verify_sut(runs / f"{stamp}-demo-contracts").to_json()
    kinds = [i["kind"] for i in pacts["interactions"]]
    console.print(
        f"{pacts['passed']}/{len(kinds)} interactions verified "
        f"({kinds.count('http')} HTTP, {kinds.count('message')} messages) "
        + ("[green]every pact holds[/]" if pacts["ok"] else "[red]contracts broken[/]")
    )
    results = []
    for label, bug in (("3. chaos under load, correct system", None), ("4. the same with a seeded bug", BUG)):
        console.rule(label)
        console.print(
            f"scenario [bold]{SCENARIO}[/], Locust 20 users with 2 workers for 10 s"
            + (f", seeded bug [bold red]{bug}[/]" if bug else "")
        )
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
            )
        )
        write_section(result.run_dir, "pacts", pacts)  # the report shows the pacts beside the invariants
        print_summary(result.verdicts, result.run_dir)
        results.append((label, result, report(result.run_dir)))
    index = build_index(runs)
    console.rule("summary")
    table = Table()
    for col in ("run", "verdict", "sagas", "violations", "report"):
        table.add_column(col)
    for label, result, path in results:
        v = result.verdicts
        n = sum(len(c["violations"]) for c in v["checks"])
        table.add_row(
            label,
            "[green]all invariants hold[/]" if v["ok"] else "[red]violations caught[/]",
            str(v["stats"]["sagas_started"]),
            str(n),
            str(path),
        )
    console.print(table)
    console.print(f"run index: [cyan]{index}[/]")
    console.print(f"demo finished in {time.monotonic() - t0:.0f}s; every process it started has stopped.")
    clean, bugged = results[0][1].verdicts, results[1][1].verdicts
    if not pacts["ok"] or not clean["ok"] or bugged["ok"]:
        console.print("[red]unexpected: the correct system must pass and the seeded bug must be caught[/]")
        raise typer.Exit(1)


def _sagas(run_dir: Path, per_trigger: int) -> None:
    with ReferenceSystem(run_dir=run_dir) as sut:
        console.print(f"started {len(sut.services())} processes (logs in {run_dir / 'logs'})")
        orch = sut.url("orchestrator")
        started: dict[str, str] = {}
        with httpx.Client(timeout=10) as http:
            for trigger, (cust, token, sku, qty, _want) in TRIGGERS.items():
                for _ in range(per_trigger):
                    body = {
                        "customer_id": cust,
                        "payment_token": token,
                        "items": [{"sku": sku, "qty": qty, "unit_price_cents": 1999}],
                    }
                    r = http.post(orch + "/sagas", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
                    if r.status_code != 202:
                        raise SutError(f"the orchestrator at {orch} answered {r.status_code} to POST /sagas: {r.text}")
                    started[r.json()["saga_id"]] = trigger
            views = _wait(http, orch, list(started), timeout=60)
    table = Table(title="sagas")
    for col in ("saga", "trigger", "outcome", "what happened"):
        table.add_column(col)
    for sid, view in views.items():
        want = TRIGGERS[started[sid]][4]
        failed = [s["name"] for s in view["steps"] if s["status"] in ("failed", "timed_out")]
        undone = [s["name"] for s in view["steps"] if s["kind"] == "compensation"]
        what = (
            f"{failed[0]} failed; undone: {', '.join(undone) or 'nothing'}"
            if failed
            else f"{len(view['steps'])} steps done"
        )
        colour = "green" if view["outcome"] == want else "red"
        table.add_row(sid[:10], started[sid], f"[{colour}]{view['outcome']}[/]", what)
    console.print(table)
    console.print("stopped every process")


def _wait(http: httpx.Client, orch: str, ids: list[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    done: dict[str, dict] = {}
    while len(done) < len(ids):
        for sid in ids:
            if sid not in done:
                view = http.get(f"{orch}/sagas/{sid}").json()
                if view.get("outcome"):
                    done[sid] = view
        if time.monotonic() > deadline:
            missing = [s for s in ids if s not in done]
            raise SutError(
                f"{len(missing)} saga(s) did not finish within {timeout:.0f}s, e.g. {missing[0]}; "
                f"see the logs under the run directory"
            )
        time.sleep(0.1)
    return {sid: done[sid] for sid in ids}
