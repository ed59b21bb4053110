"""kill -9 of any process kind, then its restart, loses no saga."""

from __future__ import annotations

import random
import signal
import threading
import time

import httpx
import pytest
from shopclient import EXPECTED, TRIGGERS

KINDS = ["orchestrator", "taskqueue", "eventbus", "payment", "inventory", "loyalty"]


@pytest.mark.parametrize("victim", KINDS)
def test_kill_and_restart_loses_no_saga(make_shop, victim):
    shop = make_shop()
    rng = random.Random(victim)
    ids: dict[str, str] = {}
    lock = threading.Lock()

    def drive(n: int) -> None:
        deadline = time.monotonic() + 30
        while len(ids) < n and time.monotonic() < deadline:
            trigger = rng.choice(sorted(TRIGGERS))
            try:
                sid = shop.start(trigger)
            except (AssertionError, httpx.HTTPError):
                time.sleep(0.05)
                continue  # the orchestrator itself may be down for a moment
            with lock:
                ids[sid] = trigger
            time.sleep(0.01)

    driver = threading.Thread(target=drive, args=(60,))
    driver.start()
    time.sleep(0.4)
    shop.sut.supervisor.kill(victim, signal.SIGKILL)
    time.sleep(0.5)
    shop.sut.supervisor.restart(victim)
    driver.join()
    views = shop.wait(list(ids), timeout=120)
    assert len(views) >= 20
    for sid, view in views.items():
        assert view["outcome"] == EXPECTED[ids[sid]], (sid, ids[sid], view["state"])
    # Services agree with the orchestrator.
    for sid, view in views.items():
        orders = shop.by_saga("order", "/orders", "orders", sid)
        want = "confirmed" if view["outcome"] == "completed" else "cancelled"
        assert [o["status"] for o in orders] == [want], (sid, orders)
        for p in shop.by_saga("payment", "/payments", "payments", sid):
            assert len(p["charges"]) <= 1
            net = p["captured_cents"] - p["refunded_cents"]
            assert net == (view["total_cents"] if view["outcome"] == "completed" else 0)
