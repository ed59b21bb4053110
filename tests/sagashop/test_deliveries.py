"""Duplicate and redelivered commands and events change nothing: handlers dedupe."""

from __future__ import annotations

from shopclient import EXPECTED, TRIGGERS


def _check_effects_once(shop, views):
    for sid, view in views.items():
        payments = shop.by_saga("payment", "/payments", "payments", sid)
        assert len(payments) <= 1
        for p in payments:
            assert len(p["charges"]) <= 1, f"saga {sid} charged {len(p['charges'])} times"
            assert len(p["refunds"]) <= 1
        emails = shop.by_saga("email", "/emails", "emails", sid)
        assert len(emails) == (1 if view["outcome"] == "completed" else 0)
        awards = [a for a in shop.get("loyalty", "/points")["awards"] if a["saga_id"] == sid]
        assert len(awards) == (1 if view["outcome"] == "completed" else 0)
        entries = shop.by_saga("ledger", "/entries", "entries", sid)
        assert sum(e["amount_cents"] for e in entries) == (view["total_cents"] if view["outcome"] == "completed" else 0)


def test_every_push_delivered_three_times(make_shop):
    shop = make_shop()
    shop.fault("taskqueue", duplicate=2)
    shop.fault("eventbus", duplicate=2)
    ids = {shop.start(trigger): trigger for trigger in TRIGGERS for _ in range(2)}
    views = shop.wait(list(ids), timeout=60)
    for sid, view in views.items():
        assert view["outcome"] == EXPECTED[ids[sid]], view
    _check_effects_once(shop, views)
    stats = shop.get("loyalty", "/healthz")
    assert stats["status"] == "ok"


def test_redelivery_of_everything_after_the_fact(shop):
    ids = {shop.start(trigger): trigger for trigger in TRIGGERS}
    views = shop.wait(list(ids))
    for component in ("taskqueue", "eventbus"):
        r = shop.post(component, "/admin/redeliver", json={"since_s": 600})
        assert r.status_code == 200 and r.json()["redelivered"] > 0
    # Let the redeliveries land, then nothing may have changed.
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pending = [shop.get(c, "/stats") for c in ("taskqueue", "eventbus")]
        if all(s.get("tasks", s.get("deliveries", {})).get("pending", 0) == 0 for s in pending):
            break
        time.sleep(0.2)
    after = {sid: shop.saga(sid) for sid in ids}
    for sid in ids:
        assert after[sid]["outcome"] == views[sid]["outcome"]
        assert after[sid]["transitions"] == views[sid]["transitions"], "a redelivered fact moved a finished saga"
    _check_effects_once(shop, after)


def test_delayed_and_dropped_deliveries_still_converge(make_shop):
    shop = make_shop()
    shop.fault("taskqueue", delay_s=0.3, probability=0.5)
    shop.fault("eventbus", drop=True, probability=0.3)
    ids = {shop.start(trigger): trigger for trigger in TRIGGERS for _ in range(2)}
    views = shop.wait(list(ids), timeout=90)
    for sid, view in views.items():
        assert view["outcome"] == EXPECTED[ids[sid]]
    _check_effects_once(shop, views)
