"""Correct histories pass every checker, for both models."""

from __future__ import annotations

from handbuilt import compensated_shop_saga, completed_shop_saga, snapshots
from saga_harness.testing import HistoryBuilder


def test_correct_shop_history_passes_everything(shop):
    b = HistoryBuilder()
    completed_shop_saga(b)
    compensated_shop_saga(b)
    snapshots(b)
    verdicts = b.check(shop)
    assert verdicts.ok, verdicts.explain()
    assert {c.name for c in verdicts.checks} >= {
        "idempotency",
        "compensation",
        "convergence",
        "state_machine",
        "outcome",
        "conservation",
    }
    assert verdicts.stats.sagas_started == 2
    assert verdicts.stats.by_outcome == {"completed": 1, "compensated": 1}
    assert verdicts["convergence"].stats["convergence_s"]["max"] > 0


def test_correct_trip_history_passes_everything(trip):
    b = HistoryBuilder()
    b.saga("t1", trigger="ok")
    for leg in ("flight", "hotel", "car"):
        b.event(f"travel.{leg}.booked", "ignored", trip_id="t1")
    b.status("t1", "CONFIRMED")
    b.saga("t2", trigger="no_car")
    b.event("travel.flight.booked", "x", trip_id="t2", time="2026-01-01T00:00:01Z")
    b.event("travel.hotel.booked", "x", trip_id="t2", time="2026-01-01T00:00:02Z")
    b.event("travel.hotel.cancelled", "x", trip_id="t2", time="2026-01-01T00:00:03Z")
    b.event("travel.flight.cancelled", "x", trip_id="t2", time="2026-01-01T00:00:04Z")
    b.status("t2", "CANCELLED")
    verdicts = b.check(trip)
    assert verdicts.ok, verdicts.explain()
    assert verdicts.stats.by_outcome == {"completed": 1, "compensated": 1}


def test_the_same_event_delivered_twice_to_the_sink_is_not_a_duplicate(shop):
    b = HistoryBuilder()
    completed_shop_saga(b)
    for e in b.entries:
        if e["type"] == "event" and e["event"]["type"] == "shop.charged":
            e["event"]["id"] = "ev-dup"
    # the second delivery of that very event (same source and id), late: it proves nothing new
    b.event("shop.charged", "s1", event_id="ev-dup", amount=100)
    snapshots(b, orders=[{"saga_id": "s1", "status": "confirmed"}])
    verdicts = b.check(shop)
    assert verdicts.ok, verdicts.explain()
    assert verdicts["idempotency"].stats["keys"] == 1
