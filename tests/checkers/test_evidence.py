"""Evidence without events: a saga system judged from the answers the harness observed, per-saga
reads and the status history — clean histories pass, broken ones fail, and what the evidence
could not have shown (a lost answer, a saga never read) is never a violation."""

from __future__ import annotations

from saga_harness.models import load_model
from saga_harness.testing import HistoryBuilder


def only(verdicts, checker):
    """The violations of ``checker`` (which must be among the failing checkers)."""
    bad = {c.name for c in verdicts.checks if not c.ok}
    assert checker in bad, verdicts.explain()
    return list(verdicts[checker].violations)


def refs(b, type_, **match):
    """The refs of the lines of ``type_`` whose fields equal ``match``."""
    return [e["ref"] for e in b.entries if e["type"] == type_ and all(e.get(k) == v for k, v in match.items())]


def clean(b, sagas, spent=30):
    sagas.completed(b, "c1")
    sagas.refused(b, "c2")
    sagas.reads(b, {"c1": {"status": "held", "qty": 1}, "c2": {"status": "released", "qty": 1}}, {"c1": 30, "c2": 20})
    b.snapshot("wallet", {"spent": spent})


def test_a_system_without_events_runs_clean(checkout, sagas):
    b = HistoryBuilder()
    clean(b, sagas)
    verdicts = b.check(checkout)
    assert verdicts.ok, verdicts.explain()
    assert verdicts.stats.by_outcome == {"completed": 1, "compensated": 1}
    assert verdicts["compensation"].stats["compensated_sagas"] == 1
    assert verdicts["outcome"].stats["fails_at_checked"] == 1
    assert verdicts["conservation"].stats["quantities"] == {"money": 30.0, "stock": 1.0}
    assert verdicts["idempotency"].stats["resent_keys"] == 0  # one saga's several start steps are no resend
    assert verdicts.stats.events == 0


def test_a_resent_checkout_that_charged_again(checkout, sagas):
    b = HistoryBuilder()
    clean(b, sagas, spent=60)
    again = b.step("checkout", "c1", body="Checkout successful: charged 30")
    verdicts = b.check(checkout)
    [dup] = only(verdicts, "idempotency")
    assert (dup.saga_id, dup.step) == ("c1", "charge") and "2 distinct answers" in dup.actual
    assert dup.evidence == (refs(b, "ok", step="checkout", saga_id="c1")[0], again["ref"])
    [money] = only(verdicts, "conservation")
    assert money.saga_id == "c1" and "money of a completed saga = 30" in money.expected and money.actual == "money = 60"
    assert verdicts["idempotency"].stats["resent_keys"] == 1


def test_a_resent_checkout_that_did_nothing_is_fine(checkout, sagas):
    b = HistoryBuilder()
    clean(b, sagas)
    b.step("checkout", "c1", body="Order c1 is already paid, nothing charged")
    verdicts = b.check(checkout)
    assert verdicts.ok, verdicts.explain()


def test_a_replayed_answer_is_one_effect_unless_the_model_says_otherwise(sagas, checkout_data):
    # A system with idempotency keys answers a resent request with the answer it gave first.
    data, _ = checkout_data
    data["steps"][1]["done"]["repeats"] = "replay"
    data["quantities"][0]["plus"][0]["repeats"] = "replay"
    model = load_model(data, {"ok": "completed", "poor": "compensated"})
    b = HistoryBuilder()
    clean(b, sagas, spent=30)
    b.step("checkout", "c1", body="Checkout successful: charged 30")
    assert b.check(model, ["idempotency"]).ok


def test_a_skipped_compensation_shows_in_the_read(checkout, sagas):
    b = HistoryBuilder()
    sagas.completed(b, "c1")
    sagas.refused(b, "c2")
    reads = {"c1": {"status": "held", "qty": 1}, "c2": {"status": "held", "qty": 1}}
    sagas.reads(b, reads, {"c1": 30, "c2": 20})
    b.snapshot("wallet", {"spent": 30})
    vs = only(b.check(checkout), "compensation")
    [never] = [v for v in vs if v.step == "reserve"]
    assert never.saga_id == "c2" and "never undone" in never.actual
    assert never.evidence == tuple(refs(b, "snapshot", service="reservation"))
    assert any("stock nets to zero" in v.expected and "stock=1" in v.actual for v in vs)


def test_a_lost_answer_proves_nothing(checkout, sagas):
    b = HistoryBuilder()
    b.step("create_order", "c1", body={"order_id": "c1"})
    b.lost("key-c1", step="checkout")  # reset by a fault: charged or not, no one can say
    b.status("c1", "PAID")
    sagas.refused(b, "c2")
    b.lost("key-c2", step="checkout", trigger="poor")
    sagas.reads(b, {"c1": {"status": "held", "qty": 1}, "c2": {"status": "released", "qty": 1}}, {"c1": 30, "c2": 20})
    b.snapshot("wallet", {"spent": 30})
    verdicts = b.check(checkout)
    assert verdicts.ok, verdicts.explain()
    assert verdicts["conservation"].stats["unobservable"] == {"money": 2}  # and the wallet is not judged


def test_a_saga_never_read_is_not_judged_by_reads(checkout, sagas):
    b = HistoryBuilder()
    sagas.refused(b, "c2")
    b.read("reservation", {"c2": {"error": "upstream down"}}, status=503)  # the read failed: no observation
    verdicts = b.check(checkout)
    assert verdicts.ok, verdicts.explain()
    assert verdicts["compensation"].stats["undo_unobservable"] >= 1


def test_a_completed_saga_must_show_its_steps_where_they_could_show(checkout, sagas):
    b = HistoryBuilder()
    b.step("create_order", "c1", body={"order_id": "c1"})
    b.step("checkout", "c1", body="Checkout failed: payment service unavailable", status=502)
    b.status("c1", "PAID")  # the order says paid, yet the checkout's answer said no charge
    sagas.reads(b, {"c1": {"status": "held", "qty": 1}}, {"c1": 30})
    vs = only(b.check(checkout, ["convergence"]), "convergence")
    assert [(v.saga_id, v.step) for v in vs] == [("c1", "charge")]
    assert "no answer 200 to checkout 're:^Checkout successful' for it" in vs[0].actual


def test_evidence_from_a_json_answer_a_missing_record_and_typed_states():
    model = load_model(
        {
            "steps": [
                {
                    "name": "book",
                    "done": {"answer": "start", "status": [200, 201], "pointer": "/booking/state", "in": ["BOOKED"]},
                    "undone": {"read": "booking", "status": 404},  # cancelled: the record is gone
                },
                {"name": "pay", "done": {"state": True}},
            ],
            "states": {"terminal": {"true": "completed", "false": "compensated"}},
        },
        {"ok": "completed", "refused": "compensated"},
    )
    b = HistoryBuilder()
    b.saga("s1", step="start", status=201)
    b.entries[-1]["value"] = {"booking": {"state": "BOOKED"}}
    b.status("s1", True)
    b.saga("s2", trigger="refused", step="start", status=201)
    b.entries[-1]["value"] = {"booking": {"state": "BOOKED"}}
    b.status("s2", False)
    b.read("booking", {"s1": {"id": "s1"}, "s2": None}, status={"s2": 404})
    verdicts = b.check(model)
    assert verdicts.ok, verdicts.explain()
    assert verdicts.stats.by_outcome == {"completed": 1, "compensated": 1}
    # the JSON true state is the "true" key, and 1 is not true
    b.status("s1", 1)
    [v] = only(b.check(model, ["state_machine"]), "state_machine")
    assert v.saga_id == "s1" and "true → 1" in v.actual


def test_an_answer_before_its_saga_id_is_known_counts_for_that_saga():
    model = load_model(
        {"steps": [{"name": "hold", "done": {"answer": "hold", "text": "held"}, "undone": {"answer": "cancel"}}]},
        {"ok": "completed"},
    )
    b = HistoryBuilder()
    b.answer("k1", None, 200, step="hold", body="held")  # the saga id comes with the next answer
    b.answer("k1", "s1", 200, step="create", body={"id": "s1"})
    b.status("s1", "DONE", "completed")
    verdicts = b.check(model)
    assert verdicts.ok, verdicts.explain()
    b2 = HistoryBuilder()
    b2.answer("k1", None, 200, step="hold", body="not held")
    b2.answer("k1", "s1", 200, step="create", body={"id": "s1"})
    b2.status("s1", "DONE", "completed")
    [v] = only(b2.check(model, ["convergence"]), "convergence")
    assert v.step == "hold"


def test_a_system_with_no_steps_is_still_judged():
    model = load_model(
        {"states": {"terminal": {"DONE": "completed", "UNDONE": "compensated"}, "transitions": {"NEW": ["DONE"]}}},
        {"ok": "completed"},
    )
    b = HistoryBuilder()
    b.saga("s1")
    b.status("s1", "NEW")
    b.status("s1", "DONE")
    assert b.check(model).ok
    b.saga("s2")
    b.status("s2", "NEW")
    b.status("s2", "UNDONE")  # not an edge, and not what the trigger demands
    b.answer("key-s1", "s9")  # one key, two sagas
    b.saga("s3")  # never ends
    b.wait(30)  # the deadline passes: s3 (and s9, the second saga of key-s1) stopped moving
    b.phase("deadline-passed")
    verdicts = b.check(model)
    assert {c.name for c in verdicts.checks if not c.ok} == {"state_machine", "outcome", "idempotency", "convergence"}
    assert {v.saga_id for v in verdicts.failures} == {"s1", "s2", "s3", "s9"}


def test_the_checkout_triggers_load_from_the_shape_the_config_passes(checkout_data):
    model = load_model(*checkout_data)
    assert model.triggers["ok"].accepted(False) == ("completed",)
    assert model.triggers["ok"].accepted(True) == ("completed", "compensated")
    assert model.triggers["poor"].fails_at == "charge"


def test_credit_that_fell_by_more_than_the_paid_orders_per_member_read_against_its_baseline():
    model = load_model(
        {
            "quantities": [
                {
                    "name": "money",
                    "plus": [{"read": "orders", "pointer": "/paid", "equals": True, "value": "/total", "key": "/user"}],
                }
            ],
            "balances": [
                {"name": "credit spent", "service": "users", "quantity": "money", "items": "", "key": "/body/user_id",
                 "minus": "/body/credit"},
            ],
            "non_negative": [
                {"name": "credit", "service": "users", "items": "", "field": "/body/credit", "key": "/member"}
            ],
            "states": {"terminal": {"true": "completed", "false": "compensated"}},
        },
        {"ok": "completed"},
    )  # fmt: skip

    def users(credits):
        return [
            {"pool": "rich", "member": n, "status": 200, "body": {"user_id": f"u{n}", "credit": c}}
            for n, c in enumerate(credits)
        ]

    def run(final):
        b = HistoryBuilder()
        b.snapshot("users", users([100, 100]), baseline=True)
        for sid in ("o1", "o2"):
            b.step("checkout", sid, body="Checkout successful")
            b.status(sid, True)
        b.read(
            "orders", {"o1": {"paid": True, "total": 30, "user": "u0"}, "o2": {"paid": True, "total": 20, "user": "u1"}}
        )
        b.snapshot("users", users(final))
        return b.check(model, ["conservation"])["conservation"]

    assert run([70, 80]).ok
    bad = run([40, 80])  # u0 charged twice for one paid order
    [v] = bad.violations
    assert v.step == "credit spent" and "users u0: -/body/credit = 30" in v.expected and v.actual == "60"

    # A read the service did not answer (a 503, a refused connection) is not a level of zero: that member
    # is not judged; the others still are.
    def failed(n):
        return {"pool": "rich", "member": n, "status": 503, "body": {"error": "injected by saga-harness"}}

    b = HistoryBuilder()
    b.snapshot("users", [failed(0), users([100, 100])[1]], baseline=True)
    for sid in ("o1", "o2"):
        b.step("checkout", sid, body="Checkout successful")
        b.status(sid, True)
    b.read("orders", {"o1": {"paid": True, "total": 30, "user": "u0"}, "o2": {"paid": True, "total": 20, "user": "u1"}})
    b.snapshot("users", users([70, 60]))  # u1 lost 40 for a 20 order: still caught
    check = b.check(model, ["conservation"])["conservation"]
    assert [v.expected for v in check.violations] == [v.expected.replace("u0", "u1").replace("30", "20")]
    assert check.stats["unread_items"] == 1


def test_states_announced_by_events_count_but_a_late_announcement_proves_no_move():
    model = load_model(
        {
            "states": {
                "terminal": {"CONFIRMED": "completed", "CANCELLED": "compensated"},
                "transitions": {"PENDING": ["CONFIRMED", "CANCELLED"]},
            }
        }
    )
    b = HistoryBuilder()
    b.saga("s1")
    b.status("s1", "PENDING", source="event")
    b.status("s1", "CANCELLED", "compensated")
    b.status("s1", "PENDING", source="event")  # redelivered, or late: it was PENDING before
    b.status("s1", "CONFIRMED", "completed", source="event")  # late news of a state never polled
    assert b.check(model, ["state_machine"]).ok
    b.saga("s2")  # announced before the saga was read ended: they are its path
    b.status("s2", "PENDING", source="event")
    b.status("s2", "CONFIRMED", "completed", source="event")
    b.status("s2", "CANCELLED", "compensated", source="event")
    vs = b.check(model, ["state_machine"])["state_machine"].violations
    assert {v.saga_id for v in vs} == {"s2"} and "CONFIRMED → CANCELLED" in {v.actual for v in vs}
    b.saga("s3")  # the harness's own reads always count
    b.status("s3", "CANCELLED", "compensated")
    b.status("s3", "PENDING")
    assert {v.saga_id for v in b.check(model, ["state_machine"])["state_machine"].violations} == {"s2", "s3"}


def test_a_step_done_once_per_order_line():
    model = load_model(
        {
            "steps": [
                {
                    "name": "reserve",
                    "compensation": "release",
                    "done": {"event": "reserved", "per": "/data/sku"},
                    "undone": {"event": "released", "per": "/data/sku"},
                },
                {"name": "pay", "done": {"event": "paid"}},
            ],
            "states": {"terminal": {"DONE": "completed", "UNDONE": "compensated"}},
        },
        {"ok": "completed", "declined": "compensated"},
    )
    b = HistoryBuilder()
    b.saga("s1")
    b.event("reserved", "s1", sku="A")
    b.event("reserved", "s1", sku="B")  # a second line, not a second effect
    b.event("paid", "s1")
    b.status("s1", "DONE")
    b.saga("s2", trigger="declined")
    b.event("reserved", "s2", sku="A")
    b.event("reserved", "s2", sku="B")
    b.event("released", "s2", sku="B")
    b.event("released", "s2", sku="A")
    b.status("s2", "UNDONE")
    verdicts = b.check(model)
    assert verdicts.ok, verdicts.explain()
    b.event("reserved", "s1", sku="A")  # line A reserved twice
    b.saga("s3", trigger="declined")
    b.event("reserved", "s3", sku="A")
    b.event("reserved", "s3", sku="B")
    b.event("released", "s3", sku="B")  # line A never released
    b.status("s3", "UNDONE")
    verdicts = b.check(model)
    [twice] = verdicts["idempotency"].violations
    assert (twice.saga_id, twice.expected) == ("s1", "reserve (part A) takes effect once")
    [kept] = verdicts["compensation"].violations
    assert kept.saga_id == "s3" and kept.actual == "reserve (part A) completed and was never undone"
