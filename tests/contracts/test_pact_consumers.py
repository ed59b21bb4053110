"""Consumer tests: each consumer in the reference system states what it needs.

Each test drives the consumer's side against Pact's mock provider (HTTP) or
feeds the consumer's real handler the described message (CloudEvents), and
writes the pact (specification V4) into ``contracts/pacts/``. Matchers stand
where a value varies (ids, times, signatures); literals where the consumer
depends on the exact value (event types, sources, states).

Provider verification (``test_pact_provider.py``) replays these files against
the running reference system.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pact import Pact, match
from sagashop import events, signing
from sagashop.orchestrator.definition import PLACE_ORDER
from sqlalchemy import create_engine, select

PACTS = Path(__file__).resolve().parents[2] / "contracts" / "pacts"
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
TRACEPARENT = r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
SECRET = "consumer-test-secret"


def new_pact(consumer: str, provider: str) -> Pact:
    return Pact(consumer, provider).with_specification("V4")


def write(pact: Pact) -> None:
    PACTS.mkdir(parents=True, exist_ok=True)
    pact.write_file(PACTS, overwrite=True)


def cloudevent(service: str, fact: str, data: dict[str, Any]) -> dict[str, Any]:
    """A structured-mode CloudEvent as a consumer expects it from ``service``."""
    return {
        "specversion": "1.0",
        "id": match.str("0b6f1c3e9a2d4e5f8a7b6c5d4e3f2a1b"),
        "source": f"/sagashop/{service}",
        "type": events.event_type(service, fact),
        "time": match.regex("2026-11-30T12:00:00.000000Z", regex=RFC3339),
        "datacontenttype": "application/json",
        "sagaid": match.str("pact-0123456789ab"),
        "traceparent": match.regex("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", regex=TRACEPARENT),
        "data": {"saga_id": match.str("pact-0123456789ab"), "command_id": match.str("pact-0123456789ab:cmd"), **data},
    }


def signed_headers(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", **signing.sign(SECRET, body)}


SIGNATURE_HEADERS = {
    signing.TIMESTAMP_HEADER: match.regex("1764504000", regex=r"^\d+$"),
    signing.SIGNATURE_HEADER: match.regex("v1=" + "0" * 64, regex=r"^v1=[0-9a-f]{64}$"),
}


# --- HTTP pacts --------------------------------------------------------------------------------


def test_client_and_the_saga_api() -> None:
    """The harness's workload (the client) against the orchestrator's saga API."""
    pact = new_pact("client", "orchestrator")
    order = {
        "customer_id": "cust-1",
        "items": [{"sku": "SKU-1", "qty": 1, "unit_price_cents": 1250}],
        "payment_token": "tok_visa",
    }
    (
        pact.upon_receiving("a request to start a saga")
        .with_request("POST", "/sagas")
        .with_header("Idempotency-Key", match.str("key-0001"))
        .with_body(order, "application/json")
        .will_respond_with(202)
        .with_body({"saga_id": match.str("3f1c0d9e"), "state": match.str("ORDER_CREATE_IN_PROGRESS")})
    )
    (
        pact.upon_receiving("a saga request reusing an Idempotency-Key with a different body")
        .given("a saga was started with Idempotency-Key key-used")
        .with_request("POST", "/sagas")
        .with_header("Idempotency-Key", "key-used")
        .with_body({**order, "payment_token": "tok_other"}, "application/json")
        .will_respond_with(409)
        .with_body({"error": match.str("Idempotency-Key already used with a different body"), "saga_id": match.str()})
    )
    (
        pact.upon_receiving("a saga request without an Idempotency-Key")
        .with_request("POST", "/sagas")
        .with_body(order, "application/json")
        .will_respond_with(400)
        .with_body({"error": match.str("missing Idempotency-Key header")})
    )
    (
        pact.upon_receiving("a status request for an unknown saga")
        .with_request("GET", "/sagas/no-such-saga")
        .will_respond_with(404)
        .with_body({"error": "saga not found", "saga_id": "no-such-saga"})
    )
    with pact.serve() as srv:
        base = str(srv.url).rstrip("/")
        r = httpx.post(f"{base}/sagas", json=order, headers={"Idempotency-Key": "key-0001"})
        assert r.status_code == 202 and r.json()["saga_id"]
        r = httpx.post(
            f"{base}/sagas", json={**order, "payment_token": "tok_other"}, headers={"Idempotency-Key": "key-used"}
        )
        assert r.status_code == 409
        assert httpx.post(f"{base}/sagas", json=order).status_code == 400
        assert httpx.get(f"{base}/sagas/no-such-saga").status_code == 404
    write(pact)


def test_orchestrator_enqueues_commands() -> None:
    pact = new_pact("orchestrator", "taskqueue")
    task = {
        "name": "saga-1:authorize_payment:1",
        "path": "/commands/authorize",
        "payload": {"command_id": "saga-1:authorize_payment:1", "saga_id": "saga-1", "payment_token": "tok_visa"},
        "headers": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    }
    (
        pact.upon_receiving("a command for the payment queue")
        .with_request("POST", "/queues/payment/tasks")
        .with_body(task, "application/json")
        .will_respond_with(201)
        .with_body({"name": match.str(task["name"]), "queue": "payment", "created": True})
    )
    (
        pact.upon_receiving("a command for a queue that does not exist")
        .with_request("POST", "/queues/nowhere/tasks")
        .with_body(task, "application/json")
        .will_respond_with(404)
        .with_body({"error": "unknown queue", "queue": "nowhere"})
    )
    # What the orchestrator's outbox sends: its commands in batches, each naming its queue.
    batch = [
        {"queue": "payment", **task, "name": "saga-2:authorize_payment:1"},
        {"queue": "inventory", **task, "name": "saga-2:reserve_inventory:1"},
    ]
    (
        pact.upon_receiving("a batch of commands for several queues")
        .with_request("POST", "/tasks:batchCreate")
        .with_body(batch, "application/json")
        .will_respond_with(201)
        .with_body(
            [
                {"name": match.str(batch[0]["name"]), "queue": "payment", "created": True},
                {"name": match.str(batch[1]["name"]), "queue": "inventory", "created": True},
            ]
        )
    )
    with pact.serve() as srv:
        base = str(srv.url).rstrip("/")
        assert httpx.post(f"{base}/queues/payment/tasks", json=task).status_code == 201
        assert httpx.post(f"{base}/queues/nowhere/tasks", json=task).status_code == 404
        assert httpx.post(f"{base}/tasks:batchCreate", json=batch).status_code == 201
    write(pact)


COMMANDS: dict[str, list[tuple[str, str | None, str, dict[str, Any], str, dict[str, Any]]]] = {
    # provider -> [(description, state, command, payload, fact, result data the consumer reads)]
    "payment": [
        (
            "an authorize command",
            None,
            "authorize",
            {"payment_token": "tok_visa", "amount_cents": 2500},
            "authorized",
            {"payment_id": match.str("pay_saga-10"), "amount_cents": match.int(2500)},
        ),
        (
            "a capture command for an authorized payment",
            "a payment of 2500 cents is authorized for saga saga-2",
            "capture",
            {"amount_cents": 2500},
            "captured",
            {"payment_id": match.str("pay_saga-2"), "amount_cents": match.int(2500)},
        ),
    ],
    "inventory": [
        (
            "a reserve command for stocked items",
            "SKU-1 has 5 in stock",
            "reserve",
            {"items": [{"sku": "SKU-1", "qty": 2}]},
            "reserved",
            {"reservation_id": match.str("res_saga-10"), "quantity": match.int(2)},
        ),
        (
            "a reserve command for more than is in stock",
            "SKU-2 has 1 in stock",
            "reserve",
            {"items": [{"sku": "SKU-2", "qty": 3}]},
            "reservation_failed",
            {"reason": "out of stock", "sku": "SKU-2"},
        ),
    ],
    "order": [
        (
            "a create-order command",
            None,
            "create-order",
            {"customer_id": "cust-1", "items": [{"sku": "SKU-1", "qty": 2, "unit_price_cents": 1250}]},
            "created",
            {"order_id": match.str("ord_saga-10"), "total_cents": 2500},
        ),
        (
            "a confirm-order command for an open order",
            "an order is open for saga saga-2",
            "confirm-order",
            {},
            "confirmed",
            {"order_id": match.str("ord_saga-2"), "customer_id": match.str("cust-1"), "total_cents": match.int(2500)},
        ),
    ],
}


def saga_for(state: str | None, index: int) -> str:
    """The saga a command is for: the one its provider state names, else a fresh one per interaction."""
    named = re.search(r"saga (saga-\d+)", state or "")
    return named.group(1) if named else f"saga-{index + 10}"


@pytest.mark.parametrize("provider", sorted(COMMANDS))
def test_task_queue_pushes_commands(provider: str) -> None:
    """The task queue pushes signed commands; the orchestrator reads the command result."""
    pact = new_pact("taskqueue", provider)
    for i, (description, state, command, payload, fact, result) in enumerate(COMMANDS[provider]):
        saga = saga_for(state, i)
        body = {"command_id": f"{saga}:{command}:1", "saga_id": saga, **payload}
        interaction = pact.upon_receiving(description)
        if state:
            interaction.given(state)
        (
            interaction.with_request("POST", f"/commands/{command}")
            .with_headers(SIGNATURE_HEADERS)
            .with_body(body, "application/json")
            .will_respond_with(200)
            .with_body(
                {
                    "status": match.regex("processed", regex=r"^(processed|duplicate)$"),
                    "command_id": body["command_id"],
                    "event_type": events.event_type(provider, fact),
                    "result": {"saga_id": saga, "command_id": body["command_id"], **result},
                }
            )
        )
    # Under load the queue pushes several tasks for one command at once: one answer per command.
    description, state, command, payload, fact, _result = COMMANDS[provider][0]
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    batch = [
        {"traceparent": trace, "body": {"command_id": f"saga-{n}:{command}:1", "saga_id": f"saga-{n}", **payload}}
        for n in (30, 31)
    ]
    interaction = pact.upon_receiving(f"{description}, twice, in one batch")
    if state:
        interaction.given(state)
    (
        interaction.with_request("POST", f"/commands/{command}:batch")
        .with_headers(SIGNATURE_HEADERS)
        .with_body(batch, "application/json")
        .will_respond_with(200)
        .with_body(
            {
                "results": [
                    {
                        "status": 200,
                        "result": match.regex("processed", regex=r"^(processed|duplicate)$"),
                        "command_id": item["body"]["command_id"],
                        "event_type": events.event_type(provider, fact),
                    }
                    for item in batch
                ]
            }
        )
    )
    with pact.serve() as srv:
        base = str(srv.url).rstrip("/")
        for i, (_d, state, command, payload, _f, _r) in enumerate(COMMANDS[provider]):
            saga = saga_for(state, i)
            raw = json.dumps({"command_id": f"{saga}:{command}:1", "saga_id": saga, **payload}).encode()
            r = httpx.post(f"{base}/commands/{command}", content=raw, headers=signed_headers(raw))
            assert r.status_code == 200, r.text
        raw = json.dumps(batch).encode()
        command = COMMANDS[provider][0][2]
        r = httpx.post(f"{base}/commands/{command}:batch", content=raw, headers=signed_headers(raw))
        assert r.status_code == 200, r.text
    write(pact)


def test_services_publish_facts_to_the_bus() -> None:
    pact = new_pact("payment", "eventbus")
    # A literal event (no fresh id or time), so the pact file only changes when the contract does.
    event = {
        "specversion": "1.0",
        "id": "0b6f1c3e9a2d4e5f8a7b6c5d4e3f2a1b",
        "source": "/sagashop/payment",
        "type": events.event_type("payment", "authorized"),
        "time": "2026-11-30T12:00:00.000000Z",
        "datacontenttype": "application/json",
        "sagaid": "saga-1",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "data": {"saga_id": "saga-1", "command_id": "saga-1:authorize:1", "payment_id": "pay_1", "amount_cents": 2500},
    }
    (
        pact.upon_receiving("a fact published in structured mode")
        .with_request("POST", "/topics/payment/events")
        .with_header("Content-Type", events.STRUCTURED)
        .with_body(json.dumps(event), events.STRUCTURED)
        .will_respond_with(202)
        .with_body({"accepted": 1, "deliveries": match.int(3)})
    )
    (
        pact.upon_receiving("an event without an id")
        .with_request("POST", "/topics/payment/events")
        .with_header("Content-Type", events.STRUCTURED)
        .with_body(json.dumps({k: v for k, v in event.items() if k != "id"}), events.STRUCTURED)
        .will_respond_with(400)
        .with_body({"error": "invalid CloudEvent", "reason": match.str("missing id")})
    )
    # What the services' outboxes send: facts in batched mode (a JSON array of structured events).
    second = {**event, "id": "1c7f2d4fab3e5f6a9b8c7d6e5f4a3b2c", "type": events.event_type("payment", "captured")}
    (
        pact.upon_receiving("facts published in batched mode")
        .with_request("POST", "/topics/payment/events")
        .with_header("Content-Type", events.BATCH)
        .with_body(json.dumps([event, second]), events.BATCH)
        .will_respond_with(202)
        .with_body({"accepted": 2, "deliveries": match.int(6)})
    )
    with pact.serve() as srv:
        base = str(srv.url).rstrip("/")
        batched = {"Content-Type": events.BATCH}
        assert (
            httpx.post(f"{base}/topics/payment/events", content=json.dumps([event, second]), headers=batched)
        ).status_code == 202
        headers = {"Content-Type": events.STRUCTURED}
        assert (
            httpx.post(f"{base}/topics/payment/events", content=json.dumps(event), headers=headers).status_code == 202
        )
        bad = json.dumps({k: v for k, v in event.items() if k != "id"})
        assert httpx.post(f"{base}/topics/payment/events", content=bad, headers=headers).status_code == 400
    write(pact)


def test_bus_pushes_events_to_a_subscriber() -> None:
    """The bus pushes in binary mode, signed; loyalty answers with what it did."""
    pact = new_pact("eventbus", "loyalty")
    data = {"saga_id": "saga-1", "command_id": "saga-1:confirm:1", "order_id": "ord_saga-1"}
    data |= {"customer_id": "cust-1", "total_cents": 2500}
    ce = {
        "ce-specversion": "1.0",
        "ce-id": match.str("0b6f1c3e9a2d4e5f8a7b6c5d4e3f2a1b"),
        "ce-source": "/sagashop/order",
        "ce-type": events.event_type("order", "confirmed"),
        "ce-sagaid": match.str("saga-1"),
    }
    (
        pact.upon_receiving("an order-confirmed event in binary mode")
        .with_request("POST", "/events")
        .with_headers({**ce, **SIGNATURE_HEADERS})
        .with_body(data, "application/json")
        .will_respond_with(200)
        .with_body({"status": match.regex("processed", regex=r"^(processed|duplicate)$")})
    )
    # What the bus sends the system's own subscribers: batches (a JSON array of structured events).
    batch = [cloudevent("order", "confirmed", {k: v for k, v in data.items() if k not in ("saga_id", "command_id")})]
    batch.append({**batch[0], "id": match.str("1c7f2d4fab3e5f6a9b8c7d6e5f4a3b2c")})
    (
        pact.upon_receiving("order-confirmed events in batched mode")
        .with_request("POST", "/events")
        .with_headers({"Content-Type": events.BATCH, **SIGNATURE_HEADERS})
        .with_body(batch, events.BATCH)
        .will_respond_with(200)
        .with_body({"status": "batch", "statuses": [match.regex("processed", regex=r"^(processed|duplicate)$")] * 2})
    )
    with pact.serve() as srv:
        sent = {
            "specversion": "1.0",
            "source": "/sagashop/order",
            "type": events.event_type("order", "confirmed"),
            "time": "2026-11-30T12:00:00.000000Z",
            "datacontenttype": "application/json",
            "sagaid": "saga-1",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "data": data,
        }
        raw_batch = json.dumps([{**sent, "id": "e-1"}, {**sent, "id": "e-2"}]).encode()
        headers = {**signed_headers(raw_batch), "Content-Type": events.BATCH}
        assert httpx.post(str(srv.url).rstrip("/") + "/events", content=raw_batch, headers=headers).status_code == 200
        raw = json.dumps(data).encode()
        headers = signed_headers(raw) | {
            "ce-specversion": "1.0",
            "ce-id": "e-1",
            "ce-source": "/sagashop/order",
            "ce-type": events.event_type("order", "confirmed"),
            "ce-sagaid": "saga-1",
        }
        assert httpx.post(str(srv.url).rstrip("/") + "/events", content=raw, headers=headers).status_code == 200
    write(pact)


# --- message pacts -----------------------------------------------------------------------------


def handled_by_orchestrator(body: str | bytes | None, _metadata: dict[str, object]) -> None:
    """What the orchestrator reads from a fact: its type (a step's outcome), saga and command."""
    event = json.loads(body or b"{}")
    events.from_dict(event)  # the SDK the orchestrator parses with accepts it
    facts = {s.ok for s in PLACE_ORDER} | {f for s in PLACE_ORDER for f in s.fail}
    facts |= {s.compensation.done for s in PLACE_ORDER if s.compensation}
    assert event["type"] in facts, event["type"]
    assert event["sagaid"] == event["data"]["saga_id"] and event["data"]["command_id"]


ORCHESTRATOR_FACTS: dict[str, dict[str, dict[str, Any]]] = {
    "payment": {
        "authorized": {"payment_id": match.str("pay_1"), "amount_cents": match.int(2500)},
        "declined": {"payment_id": match.str("pay_1"), "reason": match.str("card declined")},
        "captured": {"payment_id": match.str("pay_1"), "amount_cents": match.int(2500)},
        "capture_failed": {"payment_id": match.str("pay_1"), "reason": match.str("not authorized")},
        "voided": {"payment_id": match.str("pay_1"), "applied": match.bool(True)},
        "refunded": {"payment_id": match.str("pay_1"), "applied": match.bool(True)},
    },
    "inventory": {
        "reserved": {"reservation_id": match.str("res_1"), "quantity": match.int(2)},
        "reservation_failed": {"reason": match.str("out of stock")},
        "released": {"reservation_id": match.str("res_1"), "applied": match.bool(True)},
    },
    "order": {
        "created": {"order_id": match.str("ord_1"), "total_cents": match.int(2500)},
        "confirmed": {"order_id": match.str("ord_1")},
        "cancelled": {"order_id": match.str("ord_1"), "applied": match.bool(True)},
    },
    "fraud": {"approved": {"customer_id": match.str("cust-1")}, "rejected": {"reason": match.str("customer flagged")}},
    "ledger": {
        "posted": {"entry_id": match.str("led_1"), "amount_cents": match.int(2500)},
        "reversed": {"amount_cents": match.int(2500), "applied": match.bool(True)},
    },
}


def expect_event(pact: Pact, service: str, fact: str, data: dict[str, Any]) -> None:
    """A message interaction: the CloudEvent ``service`` publishes for ``fact``, as this consumer needs it."""
    (
        pact.upon_receiving(events.event_type(service, fact), "Async")
        .with_body(cloudevent(service, fact, data), events.STRUCTURED)
        .with_metadata({"contentType": events.STRUCTURED})
    )


def verify_consumer(pact: Pact, module: Any, handler: Any, check: Any) -> None:
    """Feed each described event to the consumer's real ``handler`` on a fresh database, ``check`` what it
    wrote, and write the pact."""
    engine = create_engine("sqlite://")
    module.metadata.create_all(engine)

    def handle(body: str | bytes | None, _m: dict[str, object]) -> None:
        with engine.begin() as conn:
            handler(conn, json.loads(body or b"{}"))
            check(conn)

    pact.verify(handle, "Async")
    write(pact)


@pytest.mark.parametrize("provider", sorted(ORCHESTRATOR_FACTS))
def test_orchestrator_hears_facts(provider: str) -> None:
    pact = new_pact("orchestrator", provider)
    for fact, data in ORCHESTRATOR_FACTS[provider].items():
        expect_event(pact, provider, fact, data)
    pact.verify(handled_by_orchestrator, "Async")
    write(pact)


CONFIRMED = {"order_id": match.str("ord_1"), "customer_id": match.str("cust-1"), "total_cents": match.int(2500)}


def test_loyalty_awards_points_for_confirmed_orders() -> None:
    from sagashop.consumers import loyalty

    pact = new_pact("loyalty", "order")
    expect_event(pact, "order", "confirmed", CONFIRMED)

    def one_point_per_unit(conn: Any) -> None:
        assert conn.execute(select(loyalty.points.c.points)).scalar() == 25

    verify_consumer(pact, loyalty, loyalty.award, one_point_per_unit)


def test_email_notifies_confirmations_and_refunds() -> None:
    from sagashop.consumers import email

    pact = new_pact("email", "order")
    expect_event(pact, "order", "confirmed", CONFIRMED)

    def addressed(conn: Any) -> None:
        assert conn.execute(select(email.emails.c.customer_id)).scalar() == "cust-1"

    verify_consumer(pact, email, email.send("order_confirmation"), addressed)

    pact = new_pact("email", "payment")
    data = {"payment_id": match.str("pay_1"), "amount_cents": match.int(2500), "applied": match.bool(True)}
    expect_event(pact, "payment", "refunded", data)

    def quotes_the_amount(conn: Any) -> None:
        # The refund notice quotes the amount: the field this consumer cannot do without.
        assert conn.execute(select(email.emails.c.amount_cents)).scalar() == 2500

    verify_consumer(pact, email, email.send("refund_notice"), quotes_the_amount)


def test_analytics_counts_confirmed_revenue() -> None:
    from sagashop.consumers import analytics

    pact = new_pact("analytics", "order")
    expect_event(pact, "order", "confirmed", {"order_id": match.str("ord_1"), "total_cents": match.int(2500)})

    def revenue(conn: Any) -> None:
        got = conn.execute(select(analytics.counters.c.value).where(analytics.counters.c.name == "revenue_cents"))
        assert got.scalar() == 2500

    verify_consumer(pact, analytics, analytics.count, revenue)
