"""Each trigger ends in its outcome, with every completed step undone in reverse order."""

from __future__ import annotations

import pytest
from shopclient import EXPECTED, TRIGGERS

FORWARD = [
    "create_order",
    "fraud_check",
    "authorize_payment",
    "reserve_inventory",
    "capture_payment",
    "post_ledger",
    "confirm_order",
]
COMPENSATIONS = {  # trigger -> (failed step, compensations in the order they must run)
    "decline": ("authorize_payment", ["cancel_order"]),
    "fraud": ("fraud_check", ["cancel_order"]),
    "out_of_stock": ("reserve_inventory", ["void_payment", "cancel_order"]),
    "capture_fail": ("capture_payment", ["release_inventory", "void_payment", "cancel_order"]),
}


@pytest.fixture(scope="module")
def outcomes(shop):
    ids = {trigger: shop.start(trigger) for trigger in TRIGGERS}
    views = shop.wait(list(ids.values()), timeout=60)
    return {trigger: views[sid] for trigger, sid in ids.items()}


@pytest.mark.parametrize("trigger", sorted(TRIGGERS))
def test_trigger_ends_in_its_outcome(outcomes, trigger):
    view = outcomes[trigger]
    assert view["outcome"] == EXPECTED[trigger]
    assert view["state"] == {"completed": "COMPLETED", "compensated": "COMPENSATED"}[EXPECTED[trigger]]


def test_completed_saga_ran_every_step_once(outcomes, shop):
    view = outcomes["ok"]
    assert [s["name"] for s in view["steps"]] == FORWARD
    assert all(s["status"] == "done" and s["finished_at"] >= s["started_at"] for s in view["steps"])
    sid = view["saga_id"]
    [payment] = shop.by_saga("payment", "/payments", "payments", sid)
    assert payment["captured_cents"] == 1250 and payment["refunded_cents"] == 0 and len(payment["charges"]) == 1
    [order] = shop.by_saga("order", "/orders", "orders", sid)
    assert order["status"] == "confirmed"
    [entry] = shop.by_saga("ledger", "/entries", "entries", sid)
    assert entry["amount_cents"] == 1250
    assert [e["kind"] for e in shop.by_saga("email", "/emails", "emails", sid)] == ["order_confirmation"]
    awards = [a for a in shop.get("loyalty", "/points")["awards"] if a["saga_id"] == sid]
    assert [a["points"] for a in awards] == [12]


@pytest.mark.parametrize("trigger", sorted(COMPENSATIONS))
def test_failed_saga_undoes_completed_steps_in_reverse(outcomes, shop, trigger):
    failed, undo = COMPENSATIONS[trigger]
    view = outcomes[trigger]
    names = [s["name"] for s in view["steps"]]
    forward = names[: FORWARD.index(failed) + 1]
    assert forward == FORWARD[: FORWARD.index(failed) + 1]
    assert view["steps"][len(forward) - 1]["status"] == "failed"
    assert names[len(forward) :] == undo
    # The states went forward, then back through each compensation, then COMPENSATED.
    states = [t["state"] for t in view["transitions"]]
    assert states[-1] == "COMPENSATED" and [t["seq"] for t in view["transitions"]] == list(range(1, len(states) + 1))
    sid = view["saga_id"]
    [order] = shop.by_saga("order", "/orders", "orders", sid)
    assert order["status"] == "cancelled"
    for payment in shop.by_saga("payment", "/payments", "payments", sid):
        assert payment["captured_cents"] == payment["refunded_cents"]
        assert payment["authorized_cents"] == payment["voided_cents"]
    for res in shop.by_saga("inventory", "/reservations", "reservations", sid):
        assert res["status"] == "released"
    assert shop.by_saga("email", "/emails", "emails", sid) == []


def test_stock_is_restored_after_release(outcomes, shop):
    sku = TRIGGERS["capture_fail"]["sku"]
    stock = shop.get("inventory", f"/stock/{sku}")
    assert stock["available"] == stock["initial"]


def test_every_event_carries_saga_id_and_traceparent(outcomes, shop):
    sid = outcomes["capture_fail"]["saga_id"]
    events = [
        e["event"] for e in shop.get("eventbus", "/events?limit=10000")["events"] if e["event"].get("sagaid") == sid
    ]
    types = {e["type"] for e in events}
    assert {
        "com.sagashop.order.created",
        "com.sagashop.payment.capture_failed",
        "com.sagashop.inventory.released",
        "com.sagashop.saga.compensated",
    } <= types
    trace_ids = {e["traceparent"].split("-")[1] for e in events}
    assert len(trace_ids) == 1, "one saga, one trace"
    assert all(e["data"]["saga_id"] == sid for e in events)


def test_operator_list_of_failed_sagas_is_empty_when_all_compensate(outcomes, shop):
    assert shop.get("orchestrator", "/sagas?outcome=failed")["sagas"] == []
