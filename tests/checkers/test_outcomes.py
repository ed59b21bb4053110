"""Outcomes a trigger accepts: one, a set, "any", and another set while faults are active —
a saga whose life (first request to outcome) overlaps a fault window."""

from __future__ import annotations

import pytest
from handbuilt import SHOP
from saga_harness.models import load_model
from saga_harness.testing import HistoryBuilder


@pytest.fixture
def shop():
    model = {k: v for k, v in SHOP.items() if k != "triggers"}
    return load_model(
        model,
        {
            "ok": {"outcome": "completed", "under_faults": ["completed", "compensated"]},
            "strict": "completed",
            "race": {"outcome": ["completed", "compensated"]},
            "anything": {"outcome": "any"},
        },
    )


def ended(b, sid, trigger, state, outcome):
    b.saga(sid, trigger=trigger)
    b.status(sid, state, outcome)


def outcome_violations(b, model):
    return [(v.saga_id, v.expected, v.actual) for v in b.check(model, ["outcome"])["outcome"].violations]


def test_a_set_of_outcomes(shop):
    b = HistoryBuilder()
    ended(b, "s1", "race", "DONE", "completed")
    ended(b, "s2", "race", "UNDONE", "compensated")
    ended(b, "s3", "race", "FAILED", "failed")
    ended(b, "s4", "anything", "FAILED", "failed")
    assert outcome_violations(b, shop) == [("s3", "one of completed, compensated (trigger 'race')", "failed")]


def test_a_saga_compensated_during_a_fault_is_fine_when_the_trigger_allows_it(shop):
    b = HistoryBuilder()
    with b.faulted("kill", "payment") as fault:
        ended(b, "s1", "ok", "UNDONE", "compensated")
    assert outcome_violations(b, shop) == []
    stats = b.check(shop, ["outcome"])["outcome"].stats
    assert stats["during_faults"] == 1 and fault["kind"] == "kill"


def test_the_same_saga_outside_any_fault_is_a_violation(shop):
    b = HistoryBuilder()
    with b.faulted("kill", "payment"):
        b.wait(1.0)
    b.wait(1.0)
    ended(b, "s1", "ok", "UNDONE", "compensated")  # started after the fault had healed
    assert outcome_violations(b, shop) == [("s1", "completed (trigger 'ok')", "compensated")]


def test_a_saga_that_started_before_a_fault_and_ended_in_it_overlaps(shop):
    b = HistoryBuilder()
    b.saga("s1", trigger="ok")
    b.fault("start", {"id": "f1", "kind": "latency", "target": "client->shop"})  # never stopped: to the end
    b.status("s1", "UNDONE", "compensated")
    assert outcome_violations(b, shop) == []


def test_under_faults_is_a_set_too(shop):
    b = HistoryBuilder()
    with b.faulted("kill", "payment"):
        ended(b, "s1", "ok", "FAILED", "failed")
    [(sid, expected, actual)] = outcome_violations(b, shop)
    assert sid == "s1" and expected == "one of completed, compensated (trigger 'ok', during a fault)"


def test_faults_relax_nothing_a_trigger_does_not_relax(shop):
    b = HistoryBuilder()
    with b.faulted("kill", "payment"):
        ended(b, "s1", "strict", "UNDONE", "compensated")
    assert outcome_violations(b, shop) == [("s1", "completed (trigger 'strict')", "compensated")]


def test_a_plain_outcome_put_in_by_model_copy_is_judged(shop):
    # lifecycle.model_with_triggers merges the SUT's plain outcomes with model_copy (no validation)
    model = shop.model_copy(update={"triggers": {**shop.triggers, "legacy": "compensated"}})
    b = HistoryBuilder()
    ended(b, "s1", "legacy", "DONE", "completed")
    assert outcome_violations(b, model) == [("s1", "compensated (trigger 'legacy')", "completed")]
