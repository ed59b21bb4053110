"""Every event the reference system publishes matches its schema; the seeded contract drift does not."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from saga_harness.checkers import Verdict, Verdicts
from saga_harness.contracts.events import bundled_registry
from shopclient import Shop, start_shop

SAGA_HARNESS = str(Path(sys.executable).parent / "saga-harness")
# Every trigger, so that each fact a saga can publish on its way shows up.
MIX = "ok=0.3,decline=0.15,fraud=0.15,out_of_stock=0.15,capture_fail=0.25"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    sut = start_shop(tmp_path_factory.mktemp("shop"))
    try:
        yield Shop(sut)
    finally:
        sut.stop()


def command(shop: Shop, service: str, name: str, saga_id: str, **payload: object) -> dict:
    body = json.dumps({"command_id": f"{saga_id}:{name}", "saga_id": saga_id, **payload}).encode()
    r = shop.signed_post(service, f"/commands/{name}", body)
    assert r.status_code == 200, r.text
    return r.json()


def test_every_fact_the_reference_system_publishes_is_valid(shop):
    sagas = [shop.start(t) for t in ("ok", "decline", "capture_fail", "fraud", "out_of_stock")]
    shop.wait(sagas)
    # Late and out-of-order commands (what retries and chaos produce): the facts no plain saga shows.
    item = {"sku": "SKU-1", "qty": 1, "unit_price_cents": 100}
    late = [
        ("order", "cancel-order", "late-o", {}),
        ("order", "create-order", "late-o", {"customer_id": "c", "items": [item]}),  # creation_rejected
        ("order", "confirm-order", "late-c", {}),  # confirmation_rejected
        ("payment", "void", "late-p", {}),
        ("payment", "authorize", "late-p", {"payment_token": "tok_ok", "amount_cents": 100}),  # rejected
        ("payment", "refund", "late-r", {}),
        ("payment", "capture", "late-x", {"amount_cents": 100}),  # capture_failed: not authorized
        ("inventory", "release", "late-i", {}),
        ("inventory", "reserve", "late-i", {"items": [{"sku": "SKU-1", "qty": 1}]}),  # reservation_rejected
        ("inventory", "reserve", "late-u", {"items": [{"sku": "NO-SUCH-SKU", "qty": 1}]}),  # failed
        ("ledger", "reverse", "late-l", {}),  # reversed, nothing to reverse (entry_id null)
        ("ledger", "post", "late-l", {"amount_cents": 100}),  # post_rejected
    ]
    for service, name, saga_id, payload in late:
        command(shop, service, name, saga_id, **payload)

    registry = bundled_registry()
    wanted = registry.types - {"com.sagashop.saga.failed"}  # needs a compensation to exhaust its retries
    deadline = time.monotonic() + 30
    while True:  # the outboxes relay to the bus asynchronously
        stored = [e["event"] for e in shop.get("eventbus", "/events?limit=10000")["events"]]
        seen = {e["type"] for e in stored}
        if wanted <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert wanted <= seen, sorted(wanted - seen)
    assert seen <= registry.types, sorted(seen - registry.types)  # nothing published without a schema
    problems = {e["id"]: r.failures for e in stored if not (r := registry.validate(e)).valid}
    assert not problems, problems


def saga_harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SAGA_HARNESS, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def contracts_verdict(run_dir: Path) -> Verdict:
    return Verdicts.read(run_dir)["contracts"]


def test_a_clean_run_has_a_passing_contracts_verdict(tmp_path):
    run = ("run", "--sagas", "20", "--concurrency", "10", "--seed", "3", "--mix", MIX)
    proc = saga_harness(*run, "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    verdict = contracts_verdict(tmp_path / "r")
    assert verdict.ok, verdict.violations[:3]
    assert verdict.stats["events_checked"] > 0 and verdict.stats["unknown_types"] == []
    assert verdict.stats["valid"] == verdict.stats["events_checked"]


def test_the_renamed_field_bug_fails_the_contracts_verdict(tmp_path):
    run = ("run", "--sagas", "10", "--concurrency", "10", "--seed", "3", "--bugs", "payment.renamed_field")
    proc = saga_harness(*run, "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    verdict = contracts_verdict(tmp_path / "r")
    assert not verdict.ok
    violations = verdict.violations
    assert violations and all(v.evidence and v.saga_id for v in violations)
    assert all("/data/amount_cents" in v.actual and "com.sagashop.payment." in v.expected for v in violations)
    assert verdict.stats["by_type"]["com.sagashop.payment.authorized"]["invalid"] > 0
    assert verdict.stats["by_type"]["com.sagashop.order.created"]["invalid"] == 0


def test_the_bus_refuses_a_binary_publish_without_an_id(shop):
    # The SDK's parser would invent one; the bus checks the attributes as sent.
    headers = {"ce-specversion": "1.0", "ce-type": "com.sagashop.order.created", "ce-source": "/sagashop/order"}
    r = shop.post(
        "eventbus", "/topics/order/events", content=b"{}", headers={**headers, "content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["reason"] == "missing required attribute(s): id"
    r = shop.post(
        "eventbus",
        "/topics/order/events",
        content=b"{}",
        headers={**headers, "ce-id": "x", "content-type": "application/json"},
    )
    assert r.status_code == 202
