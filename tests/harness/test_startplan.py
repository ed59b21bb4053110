"""The start plan, pure: templates, answers, captures, the sequence of steps, pools, typed states,
outcome rules, events that announce states, and the count of starts — no network."""

from __future__ import annotations

import random

import pytest
from saga_harness.startplan import (
    MISSING,
    Answer,
    EventStates,
    OutcomeRule,
    Pool,
    StartPlan,
    StartSequence,
    StartTally,
    StatusSpec,
    Step,
    TemplateError,
    decode_answer,
    draw_members,
    extract,
    fill,
    member_values,
    outcome_of,
    placeholders,
    saga_variables,
    state_key,
)
from saga_harness.workload import Trigger, plan


def test_templates_keep_types_fill_paths_and_refuse_unknown_names():
    v = {"i": 7, "quantity": 2, "user": {"user_id": "u1", "credit": 100}, "flag": True, "request": {"a": 1}}
    assert fill("{quantity}", v) == 2  # a lone placeholder keeps its type (a JSON number)
    assert fill("{request}", v) == {"a": 1}
    assert fill("/add/{user.user_id}/{user.credit}", v) == "/add/u1/100"
    assert fill("/f/{flag}", v) == "/f/true"  # JSON's spelling in a path, not Python's True
    assert fill("o-{i:04d}", v) == "o-0007"
    assert fill("{{literal}}", v) == "{literal}"
    assert fill({"q": ["{quantity}", "x{i}"]}, v) == {"q": [2, "x7"]}
    assert fill("/o/{order_id}", v, partial=True) == "/o/{order_id}"
    with pytest.raises(TemplateError, match=r"\{order_id\} is not known here"):
        fill("/o/{order_id}", v, where="step 'checkout' path")
    assert placeholders({"p": "/a/{user.user_id}/{order_id}", "n": 1}) == {"user.user_id", "order_id"}


@pytest.mark.parametrize(
    "ctype,body,is_json,value",
    [
        ("application/json", b'{"order_id": "o1"}', True, {"order_id": "o1"}),
        ("text/html; charset=utf-8", b"User: u1 credit updated to: 100", False, "User: u1 credit updated to: 100"),
        (
            "text/html",
            b"<html><h1>500 Internal Server Error</h1></html>",
            False,
            "<html><h1>500 Internal Server Error</h1></html>",
        ),
        ("application/json", b"{broken", False, "{broken"),
        ("", b"", False, ""),
        (None, b"[1, 2]", True, [1, 2]),
    ],
)
def test_any_answer_decodes_without_raising(ctype, body, is_json, value):
    answer = decode_answer(500, ctype, body)
    assert answer.is_json is is_json and answer.value() == value


def test_long_text_answers_are_recorded_bounded():
    answer = decode_answer(502, "text/html", b"x" * 100_000)
    assert len(answer.value()) < 5000 and answer.value().endswith("…")


def test_extract_by_pointer_or_regex():
    text = decode_answer(200, "text/plain", b"Item: i1 stock updated to: 5")
    assert extract("re:stock updated to: (\\d+)", text) == "5"
    assert extract("re:nothing (here)", text) is MISSING
    doc = decode_answer(200, "application/json", b'{"a": {"b": [10, 20]}}')
    assert extract("/a/b/1", doc) == 20 and extract("/a/c", doc) is MISSING
    mislabelled = decode_answer(200, "text/plain", b'{"id": "x"}')
    assert extract("/id", mislabelled) == "x"


def test_typed_states_match_json_values_not_python_spellings():
    terminal = {"true": "completed", "false": "compensated", "null": "failed", "3": "failed", "DONE": "completed"}
    assert outcome_of(True, terminal) == "completed" and outcome_of(False, terminal) == "compensated"
    assert outcome_of(None, terminal) == "failed" and outcome_of(3, terminal) == "failed"
    assert outcome_of("DONE", terminal) == "completed" and outcome_of("RUNNING", terminal) is None
    assert state_key(True) == "true" and outcome_of(True, {"True": "completed"}) is None
    spec = StatusSpec("s", "/o/{saga_id}", "/paid", {"true": "completed", "false": "compensated"}, {"why": "/reason"})
    reading = spec.read(Answer.of_document({"paid": False, "reason": "no credit"}))
    assert reading is not None and (reading.state, reading.outcome, dict(reading.fields)) == (
        False,
        "compensated",
        {"why": "no credit"},
    )
    assert spec.read(decode_answer(404, "text/plain", b"Order not found")) is None


SHOP = StartPlan(
    (
        Step("create_user", "gw", "/payment/create_user", capture={"user_id": "/user_id"}, once_per="user"),
        Step(
            "create_order", "gw", "/orders/create/{user.user_id}", capture={"order_id": "/order_id"}, saga_id="order_id"
        ),
        Step("add_item", "gw", "/orders/addItem/{order_id}/{item.item_id}/{quantity}"),
        Step("add_second", "gw", "/orders/addItem/{order_id}/{item2.item_id}/1", when="item2"),
        Step("checkout", "gw", "/orders/checkout/{order_id}", expect=(200, 400)),
    ),
    {"rich": Pool("rich", "user", 3, {"credit": 100}), "plenty": Pool("plenty", "item", 2, {"price": 7})},
    resend="checkout",
    outcomes=(
        OutcomeRule("checkout", "completed", (200,), "re:^Checkout successful"),
        OutcomeRule("checkout", "compensated", (400,), "re:^Checkout failed", record={"reason": "re:failed: (.*)"}),
    ),
)


def test_a_sequence_captures_ids_for_later_paths_and_says_where_the_saga_id_is():
    members = {"user": ("user", {"user_id": "u1"}), "item": ("item", {"item_id": "i1"})}
    v = saga_variables(key="k1", seed=0, i=0, seq100=1, rand100=5, request={"quantity": 2}, members=members)
    seq = StartSequence(SHOP.saga_steps, v, key="k1")
    steps = list(seq.runs())
    assert [s.name for s in steps] == ["create_order", "add_item", "checkout"]  # no item2 drawn
    assert seq.request(steps[0]).path == "/orders/create/u1"
    assert seq.request(steps[0]).headers == {}  # no idempotency key: the step has no header for it
    result = seq.took(steps[0], decode_answer(200, "application/json", b'{"order_id": "o9"}'))
    assert result.ok and result.saga_id == "o9" and seq.saga_id == "o9"
    assert seq.request(steps[1]).path == "/orders/addItem/o9/i1/2"
    refused = seq.took(steps[2], decode_answer(400, "text/plain", b"Checkout failed: insufficient credit"))
    assert refused.ok  # 400 is in this step's `expect`
    assert SHOP.outcome("checkout", decode_answer(400, "text/plain", b"Checkout failed: insufficient credit")) == (
        "compensated",
        {"reason": "insufficient credit"},
    )
    broken = seq.took(steps[1], decode_answer(500, "text/html", b"<h1>500</h1>"))
    assert not broken.ok and broken.error == "HTTP 500"  # outside the default 2xx: the sequence ends


def test_a_missing_capture_ends_the_sequence_with_a_reason():
    seq = StartSequence(SHOP.saga_steps, {"user": {"user_id": "u"}}, key="k")
    first = next(seq.runs())
    result = seq.took(first, decode_answer(200, "text/html", b"created"))
    assert not result.ok and "saga id" in (result.error or "")


def test_setup_steps_capture_into_the_member_and_when_skips_falsy_values():
    steps = (
        Step("create_item", "gw", "/item/create/{item.price}", capture={"item_id": "/item_id"}, once_per="item"),
        Step("add_stock", "gw", "/stock/add/{item.item_id}/{item.stock}", once_per="item", when="item.stock"),
    )
    seq = StartSequence(steps, {"item": {"price": 10, "stock": 0}}, key=None, capture_into="item")
    first = next(seq.runs())
    assert seq.request(first).path == "/item/create/10"
    seq.took(first, decode_answer(200, "application/json", b'{"item_id": "i7"}'))
    assert seq.variables["item"]["item_id"] == "i7"
    assert [s.name for s in seq.runs()] == ["create_item"]  # stock 0: add_stock skipped


def test_a_client_chosen_saga_id_is_known_before_the_answer():
    seq = StartSequence((Step("start", "t", "/trips", body={"id": "{key}"}, saga_id="{key}"),), {"key": "k5"}, key="k5")
    step = next(seq.runs())
    req = seq.request(step)
    assert seq.saga_id == "k5" and req.body == {"id": "k5"}


def test_a_resent_step_reports_the_saga_id_its_own_answer_names():
    seq = StartSequence((Step("start", "t", "/s", saga_id="/id"),), {}, key="k")
    step = next(seq.runs())
    seq.took(step, Answer.of_document({"id": "a"}))
    again = seq.took(step, Answer.of_document({"id": "b"}))  # a second saga for one key: recorded as answered
    assert again.saga_id == "b" and seq.saga_id == "a"


def test_the_resend_step_defaults_to_the_last_saga_step_and_the_plan_round_trips_as_json():
    assert SHOP.resend_step.name == "checkout"
    assert StartPlan(SHOP.steps).resend_step.name == "checkout"
    assert StartPlan.from_json(SHOP.to_json()) == SHOP
    single = StartPlan.single({"path": "/sagas", "saga_id": "/saga_id"})
    assert single.steps[0].idempotency_header == "Idempotency-Key" and single.steps[0].body == "{request}"


def test_pool_members_are_drawn_from_the_seed_and_replay():
    pools = dict(SHOP.pools)
    triggers = {
        "ok": Trigger(
            "ok", {"quantity": 2, "who": "{user.user_id}"}, "completed", uses={"user": "rich", "item": "plenty"}
        )
    }
    a = plan(50, triggers=triggers, mix={"ok": 1.0}, seed=3, pools=pools)
    b = plan(50, triggers=triggers, mix={"ok": 1.0}, seed=3, pools=pools)
    assert [p.members for p in a] == [p.members for p in b]
    assert {p.members["user"][1] for p in a} == {0, 1, 2}  # every member of the pool of three is drawn
    assert a[0].body["who"] == "{user.user_id}"  # filled once the member is set up
    assert draw_members({"u": "rich"}, pools, random.Random(1)) == draw_members({"u": "rich"}, pools, random.Random(1))
    assert member_values(Pool("p", "user", 2, {"name": "user-{n}", "credit": 5}), 1) == {
        "name": "user-1",
        "credit": 5,
        "n": 1,
        "pool": "p",
    }


def test_events_announce_states_by_a_pointer_or_a_mapping():
    by_type = EventStates("/subject", "/type", {"booking.confirmed": "CONFIRMED"}, {"reason": "/data/reason"})
    terminal = {"CONFIRMED": "completed"}
    found = by_type.read({"type": "booking.confirmed", "subject": "b1", "data": {"reason": "ok"}}, terminal)
    assert found is not None and found[0] == "b1"
    assert (found[1].state, found[1].outcome, dict(found[1].fields)) == ("CONFIRMED", "completed", {"reason": "ok"})
    assert by_type.read({"type": "payment.charged", "subject": "b1"}, terminal) is None
    by_field = EventStates("/data/saga_id", "/data/state")
    assert by_field.read({"data": {"saga_id": "s", "state": True}}, {"true": "completed"})[1].outcome == "completed"


def test_the_tally_counts_each_key_once_whatever_its_steps():
    tally = StartTally()
    lines = [
        {"type": "ok", "f": "start_saga", "key": "a", "saga_id": "s1"},
        {"type": "ok", "f": "start_saga", "key": "a", "saga_id": "s1"},
        {"type": "fail", "f": "start_saga", "key": "b", "status": 500},
        {"type": "info", "f": "start_saga", "key": "c"},
        {"type": "ok", "f": "lookup_saga", "key": "c", "saga_id": "s3"},
        {"type": "ok", "f": "setup", "key": None},
    ]
    for line in lines:
        tally.add(line)
    assert tally.counts() == {"sagas": 3, "started": 2, "failed": 1, "unanswered": 1, "found_later": 1, "lost": 1}
