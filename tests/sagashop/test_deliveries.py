"""Duplicate and redelivered commands and events change nothing: handlers dedupe."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid

from sagashop import events, signing
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


def _eventually_effects_once(shop, views, timeout: float = 30) -> None:
    """The consumers hear facts on their own time (a dropped push waits for its retry): wait for them."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _check_effects_once(shop, views)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_every_push_delivered_three_times(make_shop):
    shop = make_shop()
    shop.fault("taskqueue", duplicate=2)
    shop.fault("eventbus", duplicate=2)
    ids = {shop.start(trigger): trigger for trigger in TRIGGERS for _ in range(2)}
    views = shop.wait(list(ids), timeout=60)
    for sid, view in views.items():
        assert view["outcome"] == EXPECTED[ids[sid]], view
    _eventually_effects_once(shop, views)
    stats = shop.get("loyalty", "/healthz")
    assert stats["status"] == "ok"


def test_redelivery_of_everything_after_the_fact(shop):
    ids = {shop.start(trigger): trigger for trigger in TRIGGERS}
    views = shop.wait(list(ids))
    for component in ("taskqueue", "eventbus"):
        r = shop.post(component, "/admin/redeliver", json={"since_s": 600})
        assert r.status_code == 200 and r.json()["redelivered"] > 0
    # Let the redeliveries land, then nothing may have changed.
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
    _eventually_effects_once(shop, views)


def _batch_sink(secret: str, received: list[tuple[int, list[str]]]) -> http.server.ThreadingHTTPServer:
    """A subscriber that records (status, event ids) per push and fails any push holding 'poison'."""

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ts, sig = self.headers[signing.TIMESTAMP_HEADER], self.headers[signing.SIGNATURE_HEADER]
            ok = self.headers["Content-Type"] == events.BATCH and signing.verify(secret, body, ts, sig) is None
            ids = [e["id"] for e in json.loads(body)] if ok else []
            status = 200 if ok and "poison" not in ids else 500
            received.append((status, ids))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_batched_subscribers_get_arrays_and_a_poison_event_travels_alone(shop):
    received: list[tuple[int, list[str]]] = []
    server = _batch_sink(shop.secret, received)
    topic = f"batch-{uuid.uuid4().hex[:6]}"
    good = [f"good-{i}" for i in range(30)]
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    batch = [
        events.new_event(type_="com.example.test", source="/test", data={}, saga_id="s", traceparent=trace, event_id=i)
        for i in [*good[:15], "poison", *good[15:]]
    ]
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}/"
        sub = {"name": topic, "topic": topic, "push_endpoint": endpoint, "content_mode": "batch", "max_deliveries": 3}
        assert shop.post("eventbus", "/subscriptions", json=sub).status_code == 201
        headers = {"Content-Type": events.BATCH}
        r = shop.post("eventbus", f"/topics/{topic}/events", content=json.dumps(batch), headers=headers)
        assert r.status_code == 202 and r.json()["accepted"] == 31  # (analytics hears every topic too)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            landed = {i for status, ids in received if status == 200 for i in ids}
            dead = shop.get("eventbus", f"/events?topic={topic}.deadletter")["events"]
            if landed >= set(good) and dead:
                break
            time.sleep(0.2)
    finally:
        server.shutdown()
    assert landed >= set(good), sorted(set(good) - landed)
    assert [e["event"]["id"] for e in dead] == ["poison"]
    assert max(len(ids) for _status, ids in received) > 1, "nothing was batched"
    # The poison held its first batch back once; after that it went alone, until its budget ran out.
    poisoned = [ids for _status, ids in received if "poison" in ids]
    assert len(poisoned) == 3 and len(poisoned[0]) > 1 and poisoned[1:] == [["poison"], ["poison"]], poisoned


def test_a_batch_of_commands_gets_one_answer_per_command(shop):
    """The task queue's batched push: each command in its own transaction, with its own status."""
    sid = uuid.uuid4().hex
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    good = {"command_id": f"{sid}:authorize_payment", "saga_id": sid, "payment_token": "tok_ok", "amount_cents": 700}
    bad = {"command_id": f"{sid}:x", "saga_id": sid, "payment_token": "tok_ok", "amount_cents": -5}
    items = [{"traceparent": trace, "body": good}, {"traceparent": None, "body": bad}]
    items.append({"traceparent": None, "body": good})
    r = shop.signed_post("payment", "/commands/authorize:batch", json.dumps(items).encode())
    assert r.status_code == 200, r.text
    first, invalid, again = r.json()["results"]
    assert (first["status"], first["result"]) == (200, "processed")
    assert first["event_type"] == "com.sagashop.payment.authorized"
    assert invalid["status"] == 422 and invalid["detail"][0]["loc"] == ["amount_cents"]
    assert (again["status"], again["result"]) == (200, "duplicate")  # the same command: its fact, again
    [payment] = shop.by_saga("payment", "/payments", "payments", sid)
    assert payment["authorized_cents"] == 700
    deadline = time.monotonic() + 15
    while True:  # the fact reaches the bus through the payment service's outbox, on its own time
        published = shop.get("eventbus", "/events?topic=payment&limit=10000")["events"]
        mine = [e["event"] for e in published if e["event"]["data"].get("saga_id") == sid]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # The duplicate republished the stored fact: the same event, same id.
    assert mine and len({e["id"] for e in mine}) == 1, mine
    event = mine[0]
    assert event["traceparent"].split("-")[1] == trace.split("-")[1], "the command's trace went on to its fact"
