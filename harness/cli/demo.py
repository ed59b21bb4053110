"""``saga-harness demo``: the reference system, a few sagas of each outcome, a table.

It starts every process of the bundled reference system, runs a handful of
sagas per trigger, prints each saga's outcome and the state of the services,
and stops everything, leaving no process behind.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.table import Table

from harness.adapters.reference import ReferenceSystem
from harness.cli import app
from harness.errors import SutError

console = Console()

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
    per_trigger: int = typer.Option(2, "--per-trigger", min=1, max=50, help="sagas per trigger"),
    run_dir: Path = typer.Option(None, "--run-dir", help="where logs and databases go (default: runs/<time>-demo)"),
) -> None:
    """Start the reference system, run sagas of every outcome, print them, stop everything."""
    run_dir = run_dir or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-demo"
    console.print(f"[bold]saga-harness demo[/] — reference system, run directory [cyan]{run_dir}[/]")
    with ReferenceSystem(run_dir=run_dir) as sut:
        console.print(f"started {len(sut.services())} processes")
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
        for col in ("saga", "trigger", "outcome", "expected", "what happened"):
            table.add_column(col)
        wrong = 0
        for sid, view in views.items():
            want = TRIGGERS[started[sid]][4]
            ok = view["outcome"] == want
            wrong += not ok
            failed = [s["name"] for s in view["steps"] if s["status"] in ("failed", "timed_out")]
            undone = [s["name"] for s in view["steps"] if s["kind"] == "compensation"]
            steps = (f"{failed[0]} failed; undone: {', '.join(undone) or 'nothing'}" if failed
                     else f"{len(view['steps'])} steps done")
            colour = "green" if ok else "red"
            table.add_row(sid[:12], started[sid], f"[{colour}]{view['outcome']}[/]", want, steps)
        console.print(table)
    console.print(f"stopped every process; logs in [cyan]{run_dir / 'logs'}[/]")
    if wrong:
        console.print(f"[red]{wrong} saga(s) did not end as their trigger demands[/]")
        raise typer.Exit(1)


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
