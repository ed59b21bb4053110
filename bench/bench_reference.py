"""Throughput and start-to-outcome latency of the reference system.

Closed loop: ``CONCURRENCY`` clients each start a saga (aiohttp), wait for its
outcome (heard from a tap subscribed in batched mode to the bus's ``saga``
topic, so the measurement adds no polling load), and start the next, for
``DURATION_S``.
Writes ``bench/results/reference_throughput.json`` (SQLite) and
``reference_throughput_postgres.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from saga_harness.adapters.reference import ReferenceSystem
from saga_harness.lifecycle import Lifecycle, RunRequest
from saga_harness.ports import free_ports

RESULTS = Path(__file__).parent / "results"
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "30"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "128"))
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _drive(sut: ReferenceSystem) -> dict[str, Any]:
    outcomes: dict[str, asyncio.Future] = {}
    early: dict[str, tuple[str, float]] = {}

    async def tap(request: web.Request) -> web.Response:
        now = time.monotonic()
        for event in json.loads(await request.read()):  # batched mode: a JSON array of events
            sid, outcome = event["data"]["saga_id"], event["data"].get("outcome")
            if outcome:
                fut = outcomes.get(sid)
                if fut is None:
                    early[sid] = (outcome, now)
                elif not fut.done():
                    fut.set_result((outcome, now))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/tap", tap)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    [port] = free_ports(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    orch = sut.url("orchestrator")
    latencies: list[float] = []
    results: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:
        r = await http.post(
            sut.url("eventbus") + "/subscriptions",
            json={
                "name": "bench-tap",
                "topic": "saga",
                "push_endpoint": f"http://127.0.0.1:{port}/tap",
                "content_mode": "batch",  # the measuring tap costs the system little
            },
        )
        assert r.status in (200, 201), await r.text()
        stop_at = time.monotonic() + DURATION_S
        window: list[float] = []

        async def client(i: int) -> None:
            rng = random.Random(i)
            while time.monotonic() < stop_at:
                body = {
                    "customer_id": f"bench_{i}",
                    "payment_token": "tok_ok",
                    "items": [{"sku": f"SKU-{rng.randint(1, 100)}", "qty": 1, "unit_price_cents": 999}],
                }
                t0 = time.monotonic()
                async with http.post(orch + "/sagas", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}) as resp:
                    sid = (await resp.json())["saga_id"]
                fut = asyncio.get_running_loop().create_future()
                outcomes[sid] = fut
                if sid in early:
                    fut.set_result(early.pop(sid))
                try:
                    outcome, t1 = await asyncio.wait_for(fut, timeout=60)
                except TimeoutError:
                    results["timeout"] = results.get("timeout", 0) + 1
                    continue
                results[outcome] = results.get(outcome, 0) + 1
                latencies.append(t1 - t0)
                window.append(t1)

        t_start = time.monotonic()
        await asyncio.gather(*(client(i) for i in range(CONCURRENCY)))
        elapsed = time.monotonic() - t_start
    await runner.cleanup()
    in_window = [t for t in window if t <= t_start + DURATION_S]
    return {
        "sagas_per_s": round(len(in_window) / DURATION_S, 1),
        "p50_s": round(_pct(latencies, 0.50), 4),
        "p99_s": round(_pct(latencies, 0.99), 4),
        "mean_s": round(statistics.fmean(latencies), 4) if latencies else None,
        "sagas": len(latencies),
        "by_outcome": results,
        "all_reached_outcome": results.get("timeout", 0) == 0,
        "concurrency": CONCURRENCY,
        "duration_s": DURATION_S,
        "elapsed_s": round(elapsed, 1),
    }


def run(database: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = PG_URL if database == "postgres" else None
        # Through the run lifecycle, like every run: the SUT shut down (schemas dropped) whatever happens.
        request = RunRequest(label="bench", out=Path(tmp) / "run", sut="reference", database_url=url, observe=False)
        with Lifecycle(request) as run:
            assert isinstance(run.sut, ReferenceSystem)
            figures = run.call(_drive(run.sut))
    figures.update(database=database, cores=os.cpu_count(), target={"sagas_per_s": 100, "p99_s": 2.0})
    figures["meets_target"] = figures["sagas_per_s"] >= 100 and figures["p99_s"] < 2.0
    return figures


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    for database, name in (("sqlite", "reference_throughput.json"), ("postgres", "reference_throughput_postgres.json")):
        figures = run(database)
        (RESULTS / name).write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
