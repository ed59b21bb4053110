"""Each seeded bug has the effect it promises (the harness's checkers must then catch it)."""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
import time

import pytest
from sagashop.bugs import BUGS, parse_bugs


def test_unknown_bug_name_is_a_clear_error():
    with pytest.raises(ValueError, match="Did you mean 'payment.double_charge_on_redelivery'"):
        parse_bugs("payment.double_charge_on_redelivry")
    assert parse_bugs(" loyalty.no_event_dedupe, ") == ("loyalty.no_event_dedupe",)
    proc = subprocess.run(
        [sys.executable, "-m", "sagashop.serve", "payment"],
        capture_output=True,
        text=True,
        env={"SAGASHOP_BUGS": "nope", "PATH": ""},
        timeout=30,
    )
    assert proc.returncode == 2 and "unknown seeded bug 'nope'" in proc.stderr


def test_every_bug_is_named_in_one_place():
    assert len(BUGS) == 9 and all(BUGS.values())


def _charges(shop, sid):
    return [c for p in shop.by_saga("payment", "/payments", "payments", sid) for c in p["charges"]]


@pytest.mark.parametrize("bug", [False, True])
def test_double_charge_on_redelivery(make_shop, bug):
    shop = make_shop(bugs=["payment.double_charge_on_redelivery"] if bug else [])
    shop.fault("taskqueue", target="payment", duplicate=1)
    sid = shop.start("ok")
    shop.wait([sid])
    assert len(_charges(shop, sid)) == (2 if bug else 1)


@pytest.mark.parametrize("bug", [False, True])
def test_skip_compensation_leaves_stock_reserved(make_shop, bug):
    shop = make_shop(bugs=["orchestrator.skip_compensation"] if bug else [])
    sid = shop.start("capture_fail")
    view = shop.wait([sid])[sid]
    assert view["outcome"] == "compensated"  # the orchestrator believes all is well
    [res] = shop.by_saga("inventory", "/reservations", "reservations", sid)
    assert res["status"] == ("reserved" if bug else "released")


@pytest.mark.parametrize("bug", [False, True])
def test_compensate_in_forward_order(make_shop, bug):
    shop = make_shop(bugs=["orchestrator.compensate_in_forward_order"] if bug else [])
    sid = shop.start("capture_fail")
    view = shop.wait([sid])[sid]
    undo = [s["name"] for s in view["steps"] if s["kind"] == "compensation"]
    want = ["cancel_order", "void_payment", "release_inventory"]
    assert undo == (want if bug else list(reversed(want)))


@pytest.mark.parametrize("bug", [False, True])
def test_no_signal_dedupe_lets_a_duplicate_skip_the_fraud_check(make_shop, bug):
    shop = make_shop(bugs=["orchestrator.no_signal_dedupe"] if bug else [])
    shop.fault("eventbus", target="orchestrator-order", duplicate=1)
    sid = shop.start("fraud")
    view = shop.wait([sid])[sid]
    assert view["outcome"] == ("completed" if bug else "compensated")


@pytest.mark.parametrize("bug", [False, True])
def test_no_step_deadline_hangs_on_a_lost_result(make_shop, bug):
    shop = make_shop(
        bugs=["orchestrator.no_step_deadline"] if bug else [],
        extra_env={"SAGASHOP_EVENTBUS_MAX_DELIVERIES": "2", "SAGASHOP_STEP_TIMEOUT_S": "1"},
    )
    shop.fault("eventbus", target="orchestrator-fraud", drop=True)
    sid = shop.start("ok")
    deadline = time.monotonic() + 20
    while shop.get("eventbus", "/stats")["deliveries"].get("dead", 0) == 0:
        assert time.monotonic() < deadline, "the dropped delivery never died"
        time.sleep(0.1)
    shop.clear_faults()
    if bug:
        time.sleep(4)
        assert shop.saga(sid)["state"] == "FRAUD_CHECK_IN_PROGRESS"
    else:
        assert shop.wait([sid], timeout=20)[sid]["outcome"] == "completed"


@pytest.mark.parametrize("bug", [False, True])
def test_loyalty_without_dedupe_awards_twice(make_shop, bug):
    shop = make_shop(bugs=["loyalty.no_event_dedupe"] if bug else [])
    shop.fault("eventbus", target="loyalty-order", duplicate=1)
    sid = shop.start("ok")
    shop.wait([sid])
    deadline = time.monotonic() + 5
    while True:
        awards = [a for a in shop.get("loyalty", "/points")["awards"] if a["saga_id"] == sid]
        if len(awards) >= (2 if bug else 1) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    time.sleep(0.3)
    awards = [a for a in shop.get("loyalty", "/points")["awards"] if a["saga_id"] == sid]
    assert len(awards) == (2 if bug else 1)


@pytest.mark.parametrize("bug", [False, True])
def test_event_before_commit_loses_the_fact_when_the_bus_is_down(make_shop, bug):
    shop = make_shop(
        bugs=["order.event_before_commit"] if bug else [],
        # A retry budget (5 × 2 s) that outlasts the bus's restart even on a busy machine:
        # the correct system must complete once its outbox can publish again.
        extra_env={"SAGASHOP_STEP_TIMEOUT_S": "2", "SAGASHOP_STEP_MAX_ATTEMPTS": "5"},
    )
    shop.sut.supervisor.kill("eventbus", signal.SIGKILL)
    sid = shop.start("ok")
    time.sleep(1.0)  # the order service handles create-order while the bus is down
    shop.sut.supervisor.restart("eventbus")
    view = shop.wait([sid], timeout=60)[sid]
    assert view["outcome"] == ("compensated" if bug else "completed")


@pytest.mark.parametrize("bug", [False, True])
def test_unchecked_reservation_oversells_under_concurrency(make_shop, bug):
    shop = make_shop(bugs=["inventory.unchecked_reservation"] if bug else [])
    # Hold inventory until every saga waits on its reservation, so they all race.
    shop.sut.supervisor.pause("inventory")
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(lambda _: shop.start("ok", sku="SKU-SCARCE-2", qty=1), range(20)))
        deadline = time.monotonic() + 10
        while any(shop.saga(s)["state"] != "INVENTORY_RESERVE_IN_PROGRESS" for s in ids):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        shop.sut.supervisor.resume("inventory")
    views = shop.wait(ids)
    completed = sum(v["outcome"] == "completed" for v in views.values())
    stock = shop.get("inventory", "/stock/SKU-SCARCE-2")
    if bug:
        assert stock["available"] < 0 and completed > stock["initial"]
    else:
        assert stock["available"] == 0 and completed == stock["initial"] == 5


@pytest.mark.parametrize("bug", [False, True])
def test_renamed_field_drifts_the_contract(make_shop, bug):
    shop = make_shop(bugs=["payment.renamed_field"] if bug else [])
    sid = shop.start("ok")
    shop.wait([sid])
    [charge] = _charges(shop, sid)
    assert ("amount" in charge) == bug and ("amount_cents" in charge) == (not bug)
    [ev] = [
        e["event"]
        for e in shop.get("eventbus", "/events?topic=payment")["events"]
        if e["event"]["type"] == "com.sagashop.payment.captured" and e["event"]["sagaid"] == sid
    ]
    assert ("amount" in ev["data"]) == bug
