"""The saga API's idempotency: one key, one saga, one answer."""

from __future__ import annotations

import concurrent.futures
import uuid


def test_same_key_same_body_returns_the_same_saga(shop):
    key = uuid.uuid4().hex
    first = shop.start("ok", key=key)
    again = shop.start("ok", key=key)
    assert again == first
    shop.wait([first])
    assert shop.start("ok", key=key) == first  # also after it finished
    assert len(shop.by_saga("payment", "/payments", "payments", first)) == 1


def test_same_key_other_body_is_a_conflict(shop):
    key = uuid.uuid4().hex
    sid = shop.start("ok", key=key)
    r = shop.post("orchestrator", "/sagas", json=shop.body("ok", qty=3), headers={"Idempotency-Key": key})
    assert r.status_code == 409
    assert r.json()["saga_id"] == sid


def test_concurrent_resubmissions_start_one_saga(shop):
    key = uuid.uuid4().hex
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: shop.start("ok", key=key), range(16)))
    assert len(ids) == 1
    [sid] = ids
    view = shop.wait([sid])[sid]
    assert view["outcome"] == "completed"
    created = [
        e
        for e in shop.get("eventbus", "/events?topic=order&limit=10000")["events"]
        if e["event"]["type"] == "com.sagashop.order.created" and e["event"]["sagaid"] == sid
    ]
    assert len({e["event"]["id"] for e in created}) == 1


def test_missing_key_is_rejected(shop):
    r = shop.post("orchestrator", "/sagas", json=shop.body("ok"))
    assert r.status_code == 400
    assert "Idempotency-Key" in r.json()["error"]
