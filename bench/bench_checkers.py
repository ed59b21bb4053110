"""All checkers over generated histories of 100k, 300k and 1M entries.

Each size is generated to a temporary history file, then read and checked in a
fresh process so its peak RSS is its own. Writes ``bench/results/checkers.json``.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from saga_harness.checkers import DEFAULT, NEEDS_EVENTS, run_checks
from saga_harness.history import CapturedEvent, Completion, Invoke, Meta, Record, Snapshot, StatusSeen, read_history
from saga_harness.history.records import to_line
from saga_harness.models import reference_model

RESULTS = Path(__file__).parent / "results"
SIZES = (100_000, 300_000, 1_000_000)
# A quicker look on a busy machine: BENCH_CHECKERS_SIZES=100000,300000 python -m bench checkers
SIZES_ENV = "BENCH_CHECKERS_SIZES"
T = "com.sagashop."


def generate(path: Path, entries: int, seed: int = 1) -> int:
    """A realistic reference-system history with about ``entries`` lines; returns sagas.

    Lines are built from the history's record classes, as the harness writes them."""
    rng = random.Random(seed)
    wall = 1_700_000_000.0
    n = 0
    sagas: list[tuple[str, str]] = []
    with open(path, "w") as f:

        def w(record: Record, process: str = "bench") -> None:
            nonlocal wall, n
            wall += 0.0005
            f.write(json.dumps(to_line(record, mono=wall, wall=wall, process=process), separators=(",", ":")) + "\n")
            n += 1

        def ev(etype: str, sid: str, **data: object) -> None:
            event = {
                "specversion": "1.0",
                "id": f"{sid}-{etype}",
                "source": "/bench",
                "type": T + etype,
                "time": "2026-01-01T00:00:00+00:00",
                "sagaid": sid,
                "data": {"saga_id": sid, **data},
            }
            w(CapturedEvent(event), process="sink")

        w(Meta("bench", sut="reference", seed=seed))
        i = 0
        while n < entries - 10:
            sid, key = f"s{i:07d}", f"k{i}"
            ok = rng.random() < 0.75
            trigger = "ok" if ok else "capture_fail"
            request = {"customer_id": "c", "items": [{"sku": "SKU-1", "qty": 1, "unit_price_cents": 100}]}
            w(Invoke("start_saga", i, key, trigger, request), process="client")
            value = {"saga_id": sid, "state": "ORDER_CREATE_IN_PROGRESS"}
            w(Completion("ok", "start_saga", i, key, None, 202, value, sid), process="client")
            ev("order.created", sid, total_cents=100)
            ev("fraud.approved", sid)
            ev("payment.authorized", sid, amount_cents=100)
            ev("inventory.reserved", sid, items=[{"sku": "SKU-1", "qty": 1}], quantity=1)
            if ok:
                ev("payment.captured", sid, amount_cents=100)
                ev("ledger.posted", sid, amount_cents=100)
                ev("order.confirmed", sid, total_cents=100)
                w(StatusSeen(sid, "COMPLETED", "completed"), process="client")
            else:
                ev("payment.capture_failed", sid)
                ev("inventory.released", sid, items=[{"sku": "SKU-1", "qty": 1}], quantity=1, applied=True)
                ev("payment.voided", sid, amount_cents=100, applied=True)
                ev("order.cancelled", sid, applied=True)
                w(StatusSeen(sid, "COMPENSATED", "compensated"), process="client")
            sagas.append((sid, "completed" if ok else "compensated"))
            i += 1
        done = [s for s, o in sagas if o == "completed"]
        orders = [{"saga_id": s, "status": "confirmed" if o == "completed" else "cancelled"} for s, o in sagas]
        w(Snapshot("order", {"orders": orders}))
        emails = [{"saga_id": s, "kind": "order_confirmation", "event_id": f"{s}-e"} for s in done]
        w(Snapshot("email", {"emails": emails}))
        w(Snapshot("loyalty", {"awards": [{"saga_id": s, "event_id": f"{s}-e"} for s in done]}))
        stock = [{"sku": "SKU-1", "initial": 10_000_000, "available": 10_000_000 - len(done)}]
        w(Snapshot("inventory", {"stock": stock, "reservations": []}))
        w(Snapshot("ledger", {"entries": [], "balance_cents": 100 * len(done)}))
    return len(sagas)


def _measure(path: str) -> None:
    # The invariant checkers only: contracts validates every event against its JSON
    # Schema and needs an index that keeps every event, and the generated events
    # carry only the fields these checkers read (they would all be invalid).
    names = [n for n in DEFAULT if n not in NEEDS_EVENTS]
    t0 = time.perf_counter()
    verdicts = run_checks(read_history(path), reference_model(), names)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(rss, 1),
                "ok": verdicts.ok,
                "violations": len(verdicts.failures),
            }
        )
    )


def _sizes() -> tuple[int, ...]:
    text = os.environ.get(SIZES_ENV, "")
    return tuple(int(x) for x in text.split(",") if x.strip()) or SIZES


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in _sizes():
            path = Path(tmp) / f"history-{size}.jsonl"
            sagas = generate(path, size)
            proc = subprocess.run(
                [sys.executable, "-m", "bench.bench_checkers", "--measure", str(path)],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).parents[1],
            )
            figures = json.loads(proc.stdout.strip().splitlines()[-1])
            figures.update(entries=size, sagas=sagas)
            sizes.append(figures)
            print(json.dumps(figures), flush=True)
            path.unlink()
    big = sizes[-1]
    result = {
        "entries": big["entries"],
        "seconds": big["seconds"],
        "peak_rss_mb": big["peak_rss_mb"],
        "sizes": sizes,
        "target": {"seconds": 20, "peak_rss_mb": 1536},
        "seconds_per_100k": [round(s["seconds"] / (s["entries"] / 100_000), 3) for s in sizes],
    }
    (RESULTS / "checkers.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        _measure(sys.argv[2])
    else:
        main()
