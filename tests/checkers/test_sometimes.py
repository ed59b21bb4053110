"""Sometimes-assertions: what a run must see at least once, or it proved nothing and fails as vacuous.
Hand-built histories: each assertion met, and not met."""

from __future__ import annotations

from handbuilt import compensated_shop_saga, completed_shop_saga
from saga_harness.checkers.verdict import EXIT_OK, EXIT_VIOLATED
from saga_harness.history.records import HttpCall
from saga_harness.testing import HistoryBuilder


def run(sometimes: list[dict], *sagas, calls: tuple[HttpCall, ...] = (), settled: bool = True) -> HistoryBuilder:
    b = HistoryBuilder()
    b.meta(extra={"sometimes": sometimes})
    for saga in sagas:
        saga(b)
    for call in calls:
        b.add(call, process="httpfaults")
    if settled:
        b.settled()
    return b


def lost(path: str, method: str = "POST", link: str = "taskqueue->payment") -> HttpCall:
    return HttpCall(link, 1, method, path, status=None, rule="f0-lose_answer", action="lose_answer")


def test_a_compensation_that_happened_meets_its_assertion(shop):
    verdicts = run([{"compensated": "charge"}], compensated_shop_saga).check(shop, ["sometimes"])
    check = verdicts["sometimes"]
    assert check.status == "ok" and check.stats == {"asked": 1, "met": 1}
    assert check.examined is not None and check.examined.facts == 1


def test_a_run_that_never_compensated_is_vacuous(shop):
    verdicts = run([{"compensated": "charge"}], completed_shop_saga).check(shop, ["sometimes"])
    check = verdicts["sometimes"]
    assert check.status == "violated" and verdicts.exit_code == EXIT_VIOLATED
    (v,) = check.violations
    assert v.expected == "at least once: compensation of charge" and "vacuous" in v.actual


def test_an_outcome_seen_meets_it_and_one_never_seen_does_not(shop):
    met = run([{"outcome": "compensated"}], compensated_shop_saga).check(shop, ["sometimes"])
    unmet = run([{"outcome": "compensated"}], completed_shop_saga).check(shop, ["sometimes"])
    assert met["sometimes"].status == "ok"
    assert unmet["sometimes"].status == "violated"


def test_a_lost_answer_on_the_named_call_meets_it(shop):
    spec = {"action": "lose_answer", "method": "POST", "path": "/payments/*/capture"}
    verdicts = run([spec], completed_shop_saga, calls=(lost("/payments/p1/capture"),)).check(shop, ["sometimes"])
    assert verdicts["sometimes"].status == "ok" and verdicts.exit_code == EXIT_OK


def test_a_lost_answer_on_another_call_or_link_does_not(shop):
    spec = {"action": "lose_answer", "method": "POST", "path": "/payments/*/capture", "link": "taskqueue->payment"}
    for call in (
        lost("/payments/p1/refund"),
        lost("/payments/p1/capture", method="GET"),
        lost("/payments/p1/capture", link="taskqueue->inventory"),
        HttpCall("taskqueue->payment", 1, "POST", "/payments/p1/capture", status=200),  # no fault on it
    ):
        verdicts = run([spec], completed_shop_saga, calls=(call,)).check(shop, ["sometimes"])
        (v,) = verdicts["sometimes"].violations
        assert v.expected == "at least once: a lose answer on POST /payments/*/capture on taskqueue->payment"


def test_unmet_while_the_evidence_was_still_arriving_is_inconclusive(shop):
    b = run([{"compensated": "charge"}], completed_shop_saga, settled=False)
    b.settled(drained=False, events_last_s=40.0)
    assert b.check(shop, ["sometimes"])["sometimes"].status == "inconclusive"


def test_a_run_that_asked_nothing_examined_nothing(shop):
    check = run([], completed_shop_saga).check(shop, ["sometimes"])["sometimes"]
    assert check.status == "ok" and check.examined is None
