"""One failing history per way each invariant can break; each violation names the
saga, the step and the history lines that prove it."""

from __future__ import annotations

from handbuilt import compensated_shop_saga, completed_shop_saga, snapshots
from saga_harness.testing import HistoryBuilder


def only(verdicts, checker):
    """The violations of ``checker`` (and assert no other checker complains)."""
    bad = {c.name for c in verdicts.checks if not c.ok}
    assert checker in bad, verdicts.explain()
    return list(verdicts[checker].violations)


def refs_of(b, *types):
    return {e["ref"] for e in b.entries if e["type"] == "event" and e["event"]["type"] in types}


# -- idempotency -------------------------------------------------------------------
def test_one_key_two_sagas(shop):
    b = HistoryBuilder()
    completed_shop_saga(b)
    b.answer("key-s1", "s9")
    snapshots(b)
    [v] = only(b.check(shop, ["idempotency"]), "idempotency")
    assert "one saga for idempotency key 'key-s1'" in v.expected and "s9" in v.actual


def test_a_step_that_took_effect_twice(shop):
    b = HistoryBuilder()
    completed_shop_saga(b)
    b.event("shop.charged", "s1", amount=100)  # a second, distinct charge
    snapshots(b)
    verdicts = b.check(shop)
    [v] = only(verdicts, "idempotency")
    assert (v.saga_id, v.step) == ("s1", "charge")
    assert set(v.evidence) == refs_of(b, "shop.charged")
    # and the money no longer adds up
    assert any(x.saga_id == "s1" for x in verdicts["conservation"].violations)


def test_a_consumer_that_does_not_dedupe(shop):
    b = HistoryBuilder()
    completed_shop_saga(b)
    snapshots(b, mails=[{"saga_id": "s1", "event_id": "m1"}, {"saga_id": "s1", "event_id": "m1"}])
    [v] = only(b.check(shop, ["idempotency"]), "idempotency")
    assert v.saga_id == "s1" and v.step == "receipt" and "m1" in v.actual


# -- compensation ------------------------------------------------------------------
def test_skipped_compensation(shop):
    b = HistoryBuilder()
    compensated_shop_saga(b)
    b.entries = [e for e in b.entries if not (e["type"] == "event" and e["event"]["type"] == "shop.released")]
    vs = only(b.check(shop, ["compensation"]), "compensation")
    skipped = [v for v in vs if v.step == "reserve"]
    assert skipped and "never undone" in skipped[0].actual
    assert set(skipped[0].evidence) == refs_of(b, "shop.reserved")
    assert any("stock" in v.expected for v in vs)  # net stock is not zero either


def test_compensation_in_the_wrong_order(shop):
    b = HistoryBuilder()
    b.saga("s2", trigger="declined")
    b.event("shop.reserved", "s2", total=50, items=[], time="2026-01-01T00:00:01+00:00")
    b.event("shop.charged", "s2", amount=50, time="2026-01-01T00:00:02+00:00")
    b.event("shop.released", "s2", items=[], applied=True, time="2026-01-01T00:00:03+00:00")
    b.event("shop.refunded", "s2", amount=50, applied=True, time="2026-01-01T00:00:04+00:00")
    b.status("s2", "UNDONE", "compensated")
    [v] = only(b.check(shop, ["compensation"]), "compensation")
    assert v.saga_id == "s2" and "charge, reserve" in v.expected and "reserve, charge" in v.actual


def test_double_compensation(shop):
    b = HistoryBuilder()
    compensated_shop_saga(b)
    b.event("shop.refunded", "s2", amount=50, applied=True)
    vs = only(b.check(shop, ["compensation"]), "compensation")
    assert any(v.step == "charge" and "2 times" in v.actual for v in vs)


def test_compensation_without_its_step(shop):
    b = HistoryBuilder()
    b.saga("s3", trigger="declined")
    b.event("shop.refunded", "s3", amount=10, applied=True)
    b.status("s3", "UNDONE", "compensated")
    vs = only(b.check(shop, ["compensation"]), "compensation")
    assert any(v.step == "charge" and "never happened" in v.actual for v in vs)


def test_a_no_op_compensation_is_not_a_compensation(shop):
    b = HistoryBuilder()
    b.saga("s3", trigger="declined")
    b.event("shop.refunded", "s3", amount=0, applied=False)  # nothing to undo: fine
    b.status("s3", "UNDONE", "compensated")
    assert b.check(shop, ["compensation"]).ok


def test_non_zero_net_after_compensation(shop):
    b = HistoryBuilder()
    compensated_shop_saga(b)
    for e in b.entries:
        if e["type"] == "event" and e["event"]["type"] == "shop.refunded":
            e["event"]["data"]["amount"] = 30  # refunded less than charged
    vs = only(b.check(shop, ["compensation"]), "compensation")
    assert any("money" in v.expected and "20" in v.actual for v in vs)


def test_completed_saga_must_not_be_compensated(shop):
    b = HistoryBuilder()
    completed_shop_saga(b)
    b.event("shop.refunded", "s1", amount=100, applied=True)
    vs = only(b.check(shop, ["compensation"]), "compensation")
    assert vs[0].saga_id == "s1" and "undoes nothing" in vs[0].expected


# -- convergence --------------------------------------------------------------------
def test_a_saga_that_never_ends(shop):
    b = HistoryBuilder()
    b.saga("s4")
    b.status("s4", "CHARGING")
    b.wait(30)  # the deadline: nothing more of it
    b.phase("deadline-passed")
    [v] = only(b.check(shop, ["convergence"]), "convergence")
    assert v.saga_id == "s4" and "stuck in CHARGING" in v.actual and v.basis == "absent"


def test_services_that_disagree(shop):
    b = HistoryBuilder()
    completed_shop_saga(b)
    snapshots(b, orders=[{"saga_id": "s1", "status": "cancelled"}])
    [v] = only(b.check(shop, ["convergence"]), "convergence")
    assert v.saga_id == "s1" and v.step == "order status" and "cancelled" in v.actual


def test_completed_without_a_step(shop):
    b = HistoryBuilder()
    b.saga("s1")
    b.event("shop.reserved", "s1", total=0, items=[])
    b.event("shop.confirmed", "s1")
    b.status("s1", "DONE", "completed")
    snapshots(b, stock=[], orders=[], mails=[])  # nothing in the snapshots says it completed either
    vs = only(b.check(shop, ["convergence"]), "convergence")
    assert any(v.step == "charge" for v in vs)


def test_missing_and_stray_side_effects(shop):
    b = HistoryBuilder()
    completed_shop_saga(b)
    compensated_shop_saga(b)
    snapshots(b, mails=[{"saga_id": "s2", "event_id": "m2"}, {"saga_id": "ghost", "event_id": "m3"}])
    vs = only(b.check(shop, ["convergence"]), "convergence")
    assert {(v.saga_id, v.step) for v in vs} == {("s1", "receipt"), ("s2", "receipt"), ("ghost", "receipt")}


def test_time_to_converge_is_measured(shop):
    b = HistoryBuilder()
    b.saga("s1")
    b.wait(2.0)
    b.status("s1", "DONE", "completed")
    stats = b.check(shop, ["convergence"])["convergence"].stats["convergence_s"]
    assert 2.0 <= stats["p50"] <= 2.1 and stats["max"] == stats["p50"]


# -- state machine -------------------------------------------------------------------
def test_a_forbidden_transition(shop):
    b = HistoryBuilder()
    b.saga("s1")
    b.status("s1", "RESERVING")
    b.status("s1", "CONFIRMING")
    b.status("s1", "DONE", "completed")
    [v] = only(b.check(shop, ["state_machine"]), "state_machine")
    assert "RESERVING → CONFIRMING" in v.actual


def test_leaving_a_terminal_state(shop):
    b = HistoryBuilder()
    b.saga("s1")
    b.status("s1", "UNDONE", "compensated")
    b.status("s1", "CHARGING")
    [v] = only(b.check(shop, ["state_machine"]), "state_machine")
    assert "UNDONE → CHARGING" in v.actual


# -- outcome -------------------------------------------------------------------------
def test_a_trigger_that_ends_wrong(shop):
    b = HistoryBuilder()
    completed_shop_saga(b, sid="s5", trigger="declined")
    [v] = only(b.check(shop, ["outcome"]), "outcome")
    assert v.saga_id == "s5" and "compensated" in v.expected and v.actual == "completed"


def test_a_race_trigger_may_end_either_way(shop):
    b = HistoryBuilder()
    completed_shop_saga(b, sid="s6", trigger="race")
    b.saga("s7", trigger="race")
    b.status("s7", "UNDONE", "compensated")
    assert b.check(shop, ["outcome"]).ok


# -- conservation --------------------------------------------------------------------
def test_negative_stock(shop):
    b = HistoryBuilder()
    completed_shop_saga(b)
    snapshots(b, stock=[{"sku": "A", "initial": 0, "available": -1}])
    vs = only(b.check(shop, ["conservation"]), "conservation")
    assert any(v.step == "stock" and "-1" in v.actual for v in vs)


def test_stock_that_does_not_add_up(shop):
    b = HistoryBuilder()
    completed_shop_saga(b)
    snapshots(b, stock=[{"sku": "A", "initial": 10, "available": 7}])
    [v] = only(b.check(shop, ["conservation"]), "conservation")
    assert v.step == "stock levels" and "A" in v.expected


def test_completed_saga_charged_the_wrong_amount(shop):
    b = HistoryBuilder()
    completed_shop_saga(b)
    for e in b.entries:
        if e["type"] == "event" and e["event"]["type"] == "shop.charged":
            e["event"]["data"]["amount"] = 90
    snapshots(b)
    [v] = only(b.check(shop, ["conservation"]), "conservation")
    assert v.saga_id == "s1" and "100" in v.expected and "90" in v.actual


def test_assert_ok_explains_each_violation(shop):
    b = HistoryBuilder()
    b.saga("s4")
    b.wait(30)
    b.phase("deadline-passed")
    verdicts = b.check(shop)
    try:
        verdicts.assert_ok()
    except AssertionError as exc:
        text = str(exc)
    else:
        raise AssertionError("assert_ok passed on a failing history")
    assert "saga s4" in text and "expected: a terminal outcome" in text and "[convergence]" in text
