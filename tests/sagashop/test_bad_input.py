"""Bad input answers 4xx with a JSON error: never 500, never a half-applied change."""

from __future__ import annotations

import json
import uuid

import pytest

BAD_SAGA_BODIES = {
    "malformed json": b'{"customer_id": "c", "items": [',
    "wrong types": json.dumps({"customer_id": 5, "items": "many", "payment_token": []}).encode(),
    "negative qty": json.dumps(
        {"customer_id": "c", "payment_token": "tok_ok", "items": [{"sku": "SKU-1", "qty": -2, "unit_price_cents": 100}]}
    ).encode(),
    "zero qty": json.dumps(
        {"customer_id": "c", "payment_token": "tok_ok", "items": [{"sku": "SKU-1", "qty": 0, "unit_price_cents": 100}]}
    ).encode(),
    "negative price": json.dumps(
        {"customer_id": "c", "payment_token": "tok_ok", "items": [{"sku": "SKU-1", "qty": 1, "unit_price_cents": -1}]}
    ).encode(),
    "unknown sku": json.dumps(
        {"customer_id": "c", "payment_token": "tok_ok", "items": [{"sku": "NOPE-9", "qty": 1, "unit_price_cents": 100}]}
    ).encode(),
    "no items": json.dumps({"customer_id": "c", "payment_token": "tok_ok", "items": []}).encode(),
    "extra field": json.dumps(
        {
            "customer_id": "c",
            "payment_token": "tok_ok",
            "admin": True,
            "items": [{"sku": "SKU-1", "qty": 1, "unit_price_cents": 1}],
        }
    ).encode(),
    "oversized": json.dumps({"customer_id": "c" * 200_000, "payment_token": "t", "items": []}).encode(),
    "not an object": b"[1, 2, 3]",
}


@pytest.mark.parametrize("case", sorted(BAD_SAGA_BODIES))
def test_bad_saga_request_is_a_4xx_json_error_and_starts_nothing(shop, case):
    before = len(shop.get("orchestrator", "/sagas?limit=100000")["sagas"])
    r = shop.http.post(
        shop.url("orchestrator") + "/sagas",
        content=BAD_SAGA_BODIES[case],
        headers={"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"},
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert isinstance(r.json(), dict) and r.json()
    assert len(shop.get("orchestrator", "/sagas?limit=100000")["sagas"]) == before


@pytest.mark.parametrize(
    "component,path",
    [
        ("payment", "/commands/capture"),
        ("inventory", "/commands/reserve"),
        ("order", "/commands/create-order"),
        ("ledger", "/commands/post"),
        ("fraud", "/commands/check"),
    ],
)
def test_bad_signed_command_is_rejected_without_effect(shop, component, path):
    for body in (
        b"{not json",
        json.dumps({"command_id": "", "saga_id": "x"}).encode(),
        json.dumps(
            {"command_id": "c1", "saga_id": "s1", "amount_cents": -5, "items": [{"qty": -1}], "customer_id": 3}
        ).encode(),
    ):
        r = shop.signed_post(component, path, body)
        assert r.status_code == 422, (r.status_code, r.text)
        assert "error" in r.json()
    outbox = shop.get(component, "/healthz")
    assert outbox["status"] == "ok"


def test_reserve_of_unknown_sku_is_a_business_failure_not_a_crash(shop):
    body = json.dumps(
        {
            "command_id": f"{uuid.uuid4().hex}:reserve_inventory",
            "saga_id": uuid.uuid4().hex,
            "items": [{"sku": "NOPE", "qty": 1}],
        }
    ).encode()
    r = shop.signed_post("inventory", "/commands/reserve", body)
    assert r.status_code == 200
    assert r.json()["event_type"] == "com.sagashop.inventory.reservation_failed"
    assert r.json()["result"]["reason"] == "unknown sku"


def test_unknown_reads_are_404_json(shop):
    for component, path in [
        ("orchestrator", "/sagas/nope"),
        ("payment", "/payments/nope"),
        ("inventory", "/stock/NOPE"),
        ("order", "/orders/nope"),
        ("loyalty", "/points/nope"),
    ]:
        r = shop.http.get(shop.url(component) + path)
        assert r.status_code == 404 and "error" in r.json(), (component, r.text)


def test_taskqueue_and_bus_reject_bad_input(shop):
    r = shop.post("taskqueue", "/queues/nope/tasks", json={"path": "/x", "payload": {}})
    assert r.status_code == 404
    r = shop.post("taskqueue", "/queues/payment/tasks", json={"path": "no-slash", "payload": {}})
    assert r.status_code == 422
    r = shop.http.post(
        shop.url("eventbus") + "/topics/t/events",
        content=b'{"id": "1"}',
        headers={"Content-Type": "application/cloudevents+json"},
    )
    assert r.status_code == 400 and "missing" in r.json()["reason"]
    r = shop.http.post(
        shop.url("eventbus") + "/topics/t/events",
        content=json.dumps({"id": "1", "source": "/s", "type": "t", "specversion": "0.3"}).encode(),
        headers={"Content-Type": "application/cloudevents+json"},
    )
    assert r.status_code == 400
    r = shop.post("eventbus", "/subscriptions", json={"name": "bad name!", "topic": "t", "push_endpoint": "x"})
    assert r.status_code == 422
