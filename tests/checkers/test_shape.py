"""The saga's shape, end to end: where a trigger must fail (fails_at), what its status must say,
steps done in order and undone in reverse — by the harness's arrival order, not the producer's
one-second timestamps — and failed sagas judged by compensation."""

from __future__ import annotations

import pytest
from handbuilt import TRIP
from saga_harness.models import load_model
from saga_harness.testing import HistoryBuilder

SECOND = "2026-01-01T00:00:01Z"  # a whole saga within one second: the producer's time orders nothing


def only(verdicts, checker):
    bad = {c.name for c in verdicts.checks if not c.ok}
    assert checker in bad, verdicts.explain()
    return list(verdicts[checker].violations)


@pytest.fixture
def trip():
    model = {k: v for k, v in TRIP.items() if k != "triggers"}
    return load_model(
        model,
        {
            "ok": "completed",
            "no_car": {
                "outcome": "compensated",
                "fails_at": "car",
                "reason": "re:^no car",
                "error_type": "CarUnavailable",
            },
            "no_hotel": {"outcome": ["compensated", "failed"], "fails_at": "hotel", "reason": "hotel full"},
            "flaky": {"outcome": "compensated", "fails_at": "car", "under_faults": ["compensated", "failed"]},
        },
    )


def booked(b, sid, *legs, time=SECOND):
    for leg in legs:
        b.event(f"travel.{leg}.booked", "x", trip_id=sid, time=time)


def cancelled(b, sid, *legs, time=SECOND):
    for leg in legs:
        b.event(f"travel.{leg}.cancelled", "x", trip_id=sid, time=time)


def no_car(b, sid="t1", trigger="no_car", **fields):
    """Flight and hotel booked, the car refused, hotel then flight cancelled, all within a second."""
    b.saga(sid, trigger=trigger)
    booked(b, sid, "flight", "hotel")
    cancelled(b, sid, "hotel", "flight")
    fields = {"failed_step": "car", "reason": "no car left in Lisbon", "error_type": "CarUnavailable", **fields}
    b.status(sid, "CANCELLED", **fields)


# -- fails_at ------------------------------------------------------------------------------
def test_a_saga_that_fails_where_its_trigger_says_passes(trip):
    b = HistoryBuilder()
    no_car(b)
    verdicts = b.check(trip)
    assert verdicts.ok, verdicts.explain()
    assert verdicts["outcome"].stats["fails_at_checked"] == 1
    assert verdicts["compensation"].stats["order_unknown"] == 0  # arrival orders what the times cannot


def test_a_step_done_after_the_one_it_must_fail_at(trip):
    b = HistoryBuilder()
    b.saga("t1", trigger="no_hotel")
    booked(b, "t1", "flight")
    car = b.event("travel.car.booked", "x", trip_id="t1", time=SECOND)
    cancelled(b, "t1", "flight")
    b.status("t1", "CANCELLED", failed_step="hotel", reason="hotel full")
    vs = only(b.check(trip), "outcome")
    [after] = [v for v in vs if v.step == "car"]
    assert "nothing done after hotel" in after.expected and after.actual == "car was done"
    assert after.evidence == (car["ref"],)


def test_a_step_missing_before_the_one_it_must_fail_at(trip):
    b = HistoryBuilder()
    b.saga("t1", trigger="no_car")
    booked(b, "t1", "flight")
    cancelled(b, "t1", "flight")
    b.status("t1", "CANCELLED", failed_step="car", reason="no car", error_type="CarUnavailable")
    [v] = only(b.check(trip), "outcome")
    assert (v.saga_id, v.step) == ("t1", "hotel") and "hotel done before the saga failed at car" in v.expected
    assert "no travel.hotel.booked" in v.actual


@pytest.mark.parametrize(
    ("fields", "key", "shown"),
    [
        ({"failed_step": "hotel"}, "car", "failed_step = 'hotel'"),
        ({"failed_step": None}, "car", "it names no failed step"),
        ({"reason": "internal error"}, "reason", "reason = 'internal error'"),
        ({"error_type": "Exception"}, "error type", "error_type = 'Exception'"),
        ({"error_type": ""}, "error type", "it gives no error type"),
    ],
)
def test_a_status_that_names_the_wrong_step_reason_or_error_type(trip, fields, key, shown):
    b = HistoryBuilder()
    no_car(b, **fields)
    [v] = only(b.check(trip), "outcome")
    assert v.saga_id == "t1" and key in v.expected and v.actual == shown
    assert v.evidence == (b.entries[-1]["ref"],)  # the status line that recorded it


def test_the_failed_step_may_be_named_the_systems_way(trip):
    b = HistoryBuilder()
    no_car(b, failed_step="CAR")
    assert b.check(trip, ["outcome"]).ok


def test_fields_the_run_never_recorded_are_not_judged(trip):
    b = HistoryBuilder()
    b.saga("t1", trigger="no_car")
    booked(b, "t1", "flight", "hotel")
    cancelled(b, "t1", "hotel", "flight")
    b.status("t1", "CANCELLED")
    verdicts = b.check(trip)
    assert verdicts.ok, verdicts.explain()
    assert verdicts["outcome"].stats["fields_unrecorded"] == 3


def test_under_faults_a_saga_may_fail_anywhere(trip):
    b = HistoryBuilder()
    with b.faulted("cut", "trips->suppliers"):
        b.saga("t1", trigger="flaky")
        booked(b, "t1", "flight")
        b.status("t1", "STUCK", failed_step="hotel")
    verdicts = b.check(trip, ["outcome"])
    assert verdicts.ok, verdicts.explain()
    assert verdicts["outcome"].stats["judged_under_faults"] == 1
    b2 = HistoryBuilder()  # the same saga with no fault: it must fail at the car
    b2.saga("t1", trigger="flaky")
    booked(b2, "t1", "flight")
    b2.status("t1", "CANCELLED", failed_step="hotel")
    assert {v.step for v in only(b2.check(trip, ["outcome"]), "outcome")} == {"hotel", "car"}


# -- order, by arrival ---------------------------------------------------------------------
def test_compensations_arriving_in_the_wrong_order_within_one_second(trip):
    b = HistoryBuilder()
    b.saga("t1", trigger="no_car")
    booked(b, "t1", "flight", "hotel")
    cancelled(b, "t1", "flight", "hotel")  # the same second: only the arrival order tells
    b.status("t1", "CANCELLED", failed_step="car", reason="no car", error_type="CarUnavailable")
    [v] = only(b.check(trip), "compensation")
    assert v.saga_id == "t1" and v.step == "flight"
    assert v.expected == "undone in reverse order: hotel, flight"  # the reverse of the forward order
    assert v.actual == "undone in the order flight, hotel"
    assert v.evidence == tuple(
        e["ref"] for e in b.entries if e["type"] == "event" and "cancelled" in e["event"]["type"]
    )


def test_a_producer_time_never_decides_but_may_leave_the_order_unknown(trip):
    b = HistoryBuilder()
    b.saga("t1", trigger="no_car")
    booked(b, "t1", "flight", "hotel", time="2026-01-01T00:00:01.100Z")
    # arrived flight first, yet the producer stamped the hotel's cancellation first: a delayed delivery
    b.event("travel.flight.cancelled", "x", trip_id="t1", time="2026-01-01T00:00:01.300Z")
    b.event("travel.hotel.cancelled", "x", trip_id="t1", time="2026-01-01T00:00:01.200Z")
    b.status("t1", "CANCELLED", failed_step="car", reason="no car", error_type="CarUnavailable")
    verdicts = b.check(trip)
    assert verdicts.ok, verdicts.explain()
    stats = verdicts["compensation"].stats
    assert stats["order_unknown"] == 1 and stats["order_unknown_sagas"] == ["t1"]


def test_fine_timestamps_that_agree_with_a_wrong_arrival_order_are_a_violation(trip):
    b = HistoryBuilder()
    b.saga("t1", trigger="no_car")
    booked(b, "t1", "flight", "hotel", time="2026-01-01T00:00:01.100Z")
    b.event("travel.flight.cancelled", "x", trip_id="t1", time="2026-01-01T00:00:01.200Z")
    b.event("travel.hotel.cancelled", "x", trip_id="t1", time="2026-01-01T00:00:01.300Z")
    b.status("t1", "CANCELLED", failed_step="car", reason="no car", error_type="CarUnavailable")
    [v] = only(b.check(trip), "compensation")
    assert "hotel, flight" in v.expected


def test_a_completed_saga_whose_steps_arrived_out_of_order(trip):
    b = HistoryBuilder()
    b.saga("t1")
    booked(b, "t1", "flight", "car", "hotel")
    b.status("t1", "CONFIRMED")
    [v] = only(b.check(trip), "compensation")
    assert (v.saga_id, v.step) == ("t1", "car")
    assert v.expected == "steps done in order: flight, hotel, car"
    assert v.actual == "done in the order flight, car, hotel (car before hotel)"


def test_facts_one_observation_proves_have_no_order():
    model = load_model(
        {
            "steps": [
                {
                    "name": "take",
                    "done": {"answer": "checkout", "text": "ok"},
                    "undone": {"read": "r", "pointer": "/back"},
                },
                {
                    "name": "pay",
                    "done": {"answer": "checkout", "text": "ok"},
                    "undone": {"read": "r", "pointer": "/refund"},
                },
            ],
            "states": {"terminal": {"DONE": "completed", "UNDONE": "compensated"}},
        },
        {"ok": "any"},
    )
    b = HistoryBuilder()
    b.step("checkout", "s1", body="ok")
    b.status("s1", "UNDONE")
    b.read("r", {"s1": {"back": 1, "refund": 1}})  # both undone, seen in one read: which first?
    verdicts = b.check(model)
    assert verdicts.ok, verdicts.explain()
    assert verdicts["compensation"].stats["order_unknown"] == 1
    assert verdicts["compensation"].stats["forward_order_checked"] == 1


# -- failed sagas --------------------------------------------------------------------------
def test_a_failed_saga_must_undo_what_it_did_or_say_it_could_not(trip):
    b = HistoryBuilder()
    b.saga("t1", trigger="no_hotel")
    booked(b, "t1", "flight")
    b.status("t1", "STUCK", failed_step="hotel", reason="hotel full")
    [v] = only(b.check(trip), "compensation")
    assert (v.saga_id, v.step) == ("t1", "flight") and "compensations_pending" in v.expected
    assert "failed with flight done, never undone" in v.actual
    b.status("t1", "STUCK", compensations_pending=["cancel flight"])  # the system says it could not
    verdicts = b.check(trip)
    assert verdicts.ok, verdicts.explain()
    assert verdicts["compensation"].stats["declared_pending"] == 1
    assert verdicts["compensation"].stats["failed_sagas"] == 1


def test_a_failed_saga_that_undid_everything_passes(trip):
    b = HistoryBuilder()
    b.saga("t1", trigger="no_hotel")
    booked(b, "t1", "flight")
    cancelled(b, "t1", "flight")
    b.status("t1", "STUCK", failed_step="hotel", reason="hotel full")
    assert b.check(trip).ok


def test_a_compensated_saga_has_nothing_pending(trip):
    b = HistoryBuilder()
    no_car(b, compensations_pending="cancel flight")
    [v] = only(b.check(trip), "compensation")
    assert v.saga_id == "t1" and "cancel flight" in v.actual


def test_a_retried_compensation_took_effect_once(trip):
    b = HistoryBuilder()
    no_car(b, compensations_done=["cancel hotel", "cancel hotel", "cancel flight"], attempts={"cancel hotel": 2})
    [v] = only(b.check(trip), "compensation")
    assert v.step == "hotel" and "lists it 2 times" in v.actual and "2 attempts" in v.actual
    b2 = HistoryBuilder()  # retried, listed once, but its evidence seen twice
    no_car(b2, compensations_done=["cancel hotel", "cancel flight"], attempts=[{"name": "cancel hotel", "attempts": 3}])
    cancelled(b2, "t1", "hotel")
    [v2] = only(b2.check(trip), "compensation")
    assert v2.step == "hotel" and v2.actual == "cancel hotel happened 2 times (the system shows 3 attempts)"
    b3 = HistoryBuilder()  # retried three times, took effect once: fine
    no_car(b3, compensations_done=["cancel hotel", "cancel flight"], attempts={"cancel hotel": 3})
    assert b3.check(trip).ok


def reversed_within_a_second(b, sid="t1"):
    """Hotel and flight cancelled in the same second, arriving flight first (the wrong order)."""
    b.saga(sid, trigger="no_car")
    booked(b, sid, "flight", "hotel")
    cancelled(b, sid, "flight", "hotel")
    b.status(sid, "CANCELLED", failed_step="car", reason="no car", error_type="CarUnavailable")


def test_a_run_whose_delivery_reorders_events_cannot_order_them_within_a_second(trip):
    b = HistoryBuilder()
    # t0's hotel was stamped a second after its flight, yet arrived first: this run's delivery reorders
    b.saga("t0")
    b.event("travel.hotel.booked", "x", trip_id="t0", time="2026-01-01T00:00:02Z")
    b.event("travel.flight.booked", "x", trip_id="t0", time="2026-01-01T00:00:01Z")
    b.status("t0", "CONFIRMED")
    reversed_within_a_second(b)
    verdicts = b.check(trip, ["compensation"])
    assert verdicts.ok, verdicts.explain()  # t0: the times and the arrival disagree; t1: the same second
    assert verdicts["compensation"].stats["order_unknown_sagas"] == ["t0", "t1"]


@pytest.mark.parametrize(("order", "violated"), [("auto", True), ("arrival", True), ("time", False)])
def test_event_order_says_how_far_arrival_orders_events(order, violated):
    model = load_model({**{k: v for k, v in TRIP.items() if k != "triggers"}, "event_order": order})
    b = HistoryBuilder()
    reversed_within_a_second(b)
    verdicts = b.check(model, ["compensation"])
    assert (not verdicts.ok) is violated
    assert verdicts["compensation"].stats["order_unknown"] == (0 if violated else 1)


def test_with_event_order_arrival_only_the_arrival_counts(trip):
    model = load_model({**{k: v for k, v in TRIP.items() if k != "triggers"}, "event_order": "arrival"})
    b = HistoryBuilder()
    b.saga("t1")
    booked(b, "t1", "flight", time="2026-01-01T00:00:05Z")  # a skewed producer clock: arrival is the truth
    booked(b, "t1", "hotel", "car", time="2026-01-01T00:00:01Z")
    b.status("t1", "CONFIRMED")
    assert b.check(model).ok
    by_default = b.check(trip, ["compensation"])  # the producer's times contradict the arrival: unknown
    assert by_default.ok and by_default["compensation"].stats["order_unknown"] == 1


def test_reads_taken_together_are_ordered_by_the_times_the_model_points_to():
    model = load_model(
        {
            "steps": [
                {
                    "name": "payment",
                    "done": {"event": "charged"},
                    "undone": {"read": "money", "pointer": "/status", "equals": "refunded", "at": "/refunded_at"},
                },
                {
                    "name": "room",
                    "done": {"event": "held"},
                    "undone": {"read": "hold", "pointer": "/status", "equals": "released", "at": "/released_at"},
                },
                {"name": "shuttle", "done": {"event": "booked"}},
            ],
            "states": {"terminal": {"CANCELLED": "compensated"}},
        },
        {"helicopter": {"outcome": "compensated", "fails_at": "shuttle"}},
    )

    def run(refunded_at, released_at):
        b = HistoryBuilder()
        b.saga("b1", trigger="helicopter")
        b.event("charged", "b1")
        b.event("held", "b1")
        b.status("b1", "CANCELLED")
        b.read("money", {"b1": {"status": "refunded", "refunded_at": refunded_at}})
        b.read("hold", {"b1": {"status": "released", "released_at": released_at}})
        return b.check(model, ["compensation"])

    assert run(1796137347.634, 1796137347.6241).ok  # released, then refunded: the reverse of the forward order
    [v] = run(1796137347.606, 1796137347.8102)["compensation"].violations  # refunded first
    assert v.expected == "undone in reverse order: room, payment" and v.actual == "undone in the order payment, room"
    same_second = run("2026-12-01T15:02:27Z", "2026-12-01T15:02:27Z")
    assert same_second.ok and same_second["compensation"].stats["order_unknown"] == 1


@pytest.mark.parametrize(("order", "unknown"), [("auto", 0), ("arrival", 0), ("time", 1)])
def test_arrival_in_the_right_order_within_a_tick_counts_only_where_arrival_may(order, unknown):
    model = load_model({**{k: v for k, v in TRIP.items() if k != "triggers"}, "event_order": order})
    b = HistoryBuilder()
    no_car(b)
    verdicts = b.check(model, ["compensation"])
    assert verdicts.ok and verdicts["compensation"].stats["order_unknown"] == unknown


@pytest.fixture
def fanout():
    """Pay, then hold a room and book a shuttle side by side, then confirm once both are done."""
    ev = {
        name: {"done": {"event": f"{name}.done"}, "undone": {"event": f"{name}.undone"}}
        for name in ("pay", "room", "shuttle")
    }
    return load_model(
        {
            "steps": [
                {"name": "pay", **ev["pay"]},
                {"name": "room", **ev["room"]},
                {"name": "shuttle", **ev["shuttle"], "after": ["pay"]},
                {"name": "confirm", "done": {"event": "confirm.done"}, "after": ["room", "shuttle"]},
            ],
            "states": {"terminal": {"DONE": "completed", "UNDONE": "compensated"}},
        },
        {"ok": "completed", "no_room": {"outcome": "compensated", "fails_at": "room"}},
    )


def test_steps_side_by_side_may_happen_in_either_order(fanout):
    b = HistoryBuilder()
    b.saga("s1")
    for name in ("pay", "shuttle", "room", "confirm"):  # the shuttle first: fine, it waits for pay only
        b.event(f"{name}.done", "s1")
    b.status("s1", "DONE")
    b.saga("s2", trigger="no_room")
    for name in ("pay.done", "shuttle.done", "shuttle.undone", "pay.undone"):
        b.event(name, "s2")  # the room failed beside a booked shuttle: undone, then the payment
    b.status("s2", "UNDONE")
    verdicts = b.check(fanout)
    assert verdicts.ok, verdicts.explain()
    b.saga("s3")
    for name in ("pay", "shuttle", "confirm", "room"):  # confirmed before the room was held
        b.event(f"{name}.done", "s3")
    b.status("s3", "DONE")
    b.saga("s4", trigger="no_room")
    for name in ("pay.done", "shuttle.done", "pay.undone", "shuttle.undone", "confirm.done"):
        b.event(name, "s4")  # paid back before the shuttle was cancelled; and confirmed after failing
    b.status("s4", "UNDONE")
    verdicts = b.check(fanout)
    found = {(v.checker, v.saga_id, v.step) for v in verdicts.failures}
    assert found == {("compensation", "s3", "confirm"), ("compensation", "s4", "pay"), ("outcome", "s4", "confirm")}
    [s3] = [v for v in verdicts["compensation"].violations if v.saga_id == "s3"]
    assert s3.expected == "confirm done after room (it waits for pay, room, shuttle)"


def test_a_step_waits_only_for_steps_listed_before_it():
    with pytest.raises(ValueError, match="after = 'confirm' is a later step"):
        load_model(
            {
                "steps": [
                    {"name": "pay", "done": {"event": "p"}, "after": ["confirm"]},
                    {"name": "confirm", "done": {"event": "c"}},
                ]
            }
        )
