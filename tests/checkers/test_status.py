"""A verdict's status: ok, violated (proved by evidence) or inconclusive (the run could not
support a verdict); slow is not stuck; what absent evidence may prove; one finding per cause;
what a run covered. Hand-built histories, each meant to fail the way its name says."""

from __future__ import annotations

import json

import pytest
from handbuilt import SHOP, compensated_shop_saga, completed_shop_saga, snapshots
from saga_harness.checkers import Verdict, Verdicts, run_checks
from saga_harness.checkers.observation import STARVED_LOOP_LAG_P99_MS, observe
from saga_harness.checkers.verdict import EXIT_INCONCLUSIVE, EXIT_OK, EXIT_VIOLATED
from saga_harness.history import build_index
from saga_harness.history.records import CapturedEvent
from saga_harness.model import SagaModel
from saga_harness.testing import HistoryBuilder


def unfinished(b: HistoryBuilder, sid: str, states: list[str], every_s: float) -> None:
    """A saga seen in ``states``, one every ``every_s`` seconds."""
    b.saga(sid)
    for state in states:
        b.wait(every_s)
        b.status(sid, state)


def deadline_passed(b: HistoryBuilder, after_s: float) -> None:
    b.wait(after_s)
    b.phase("deadline-passed", pending=1)


# -- slow is not stuck --------------------------------------------------------------------------
def test_a_saga_whose_states_stop_changing_is_stuck(shop):
    b = HistoryBuilder()
    unfinished(b, "s1", ["RESERVING", "CHARGING"], every_s=1)
    deadline_passed(b, after_s=25)  # nothing for 25 s: more than the 10 s quiet window
    verdicts = b.check(shop, ["convergence"])
    check = verdicts["convergence"]
    assert check.status == "violated" and verdicts.exit_code == EXIT_VIOLATED
    [v] = check.violations
    assert v.saga_id == "s1" and v.basis == "absent" and v.kind == "violation"
    assert "stuck in CHARGING" in v.actual and "25.0 s" in v.actual
    assert check.stats["stuck"] == 1 and check.stats["still_progressing"] == 0


def test_a_stuck_saga_seen_standing_still_on_an_unstarved_machine_stands_in_a_starved_run(shop):
    # The run was starved while it was busy (20 of 32 s), but the saga then stood still for 12 s
    # while the machine was not: the harness saw it stuck, a busy stretch elsewhere excuses nothing.
    b = HistoryBuilder()
    unfinished(b, "s1", ["RESERVING", "CHARGING"], every_s=1)
    starved(b, 20)
    for _ in range(12):
        b.machine(cpu_busy_pct=99.0, sut_cpu_pct=0.0, cores=2)  # busy machine, idle SUT: not starved
    b.phase("deadline-passed", pending=1)
    assert observe(build_index(b.entries, shop)).starved
    check = b.check(shop, ["convergence"])["convergence"]
    assert check.status == "violated", check
    [v] = check.violations
    assert (
        v.basis == "present"
        and "stuck in CHARGING" in v.actual
        and "of it on a machine that was not starved" in v.actual
    )


def test_a_saga_standing_still_only_while_the_machine_was_starved_is_held_back(shop):
    b = HistoryBuilder()
    unfinished(b, "s1", ["RESERVING", "CHARGING"], every_s=1)
    for _ in range(6):
        b.machine()
    starved(b, 20)  # most of its quiet window starved: only 6 s clear, under the 10 s window
    b.phase("deadline-passed", pending=1)
    check = b.check(shop, ["convergence"])["convergence"]
    assert check.status == "inconclusive" and not check.violations
    [v] = check.inconclusive
    assert v.basis == "absent" and "starved" in (v.reason or "")


def test_a_saga_still_changing_at_the_deadline_is_slow_not_stuck(shop):
    b = HistoryBuilder()
    unfinished(b, "s1", ["RESERVING", "CHARGING", "CONFIRMING"], every_s=12)  # slowly, but moving
    deadline_passed(b, after_s=2)
    verdicts = b.check(shop, ["convergence"])
    check = verdicts["convergence"]
    assert check.status == "inconclusive" and not check.violations and verdicts.status == "inconclusive"
    assert not verdicts.ok and verdicts.exit_code == EXIT_INCONCLUSIVE
    [v] = check.inconclusive
    assert v.kind == "slow" and "still progressing in CONFIRMING" in v.actual and "2.0 s before the end" in v.actual
    assert "slow, not stuck" in (v.reason or "") and "slow, not stuck" in (check.reason or "")
    assert check.stats["still_progressing"] == 1 and check.stats["stuck"] == 0
    [f] = check.findings
    assert f.status == "inconclusive" and f.kind == "slow"


def test_an_event_after_the_deadline_shows_a_quiet_status_is_still_moving(shop):
    # Its state did not change for 20 s, but its charge arrived after the harness stopped polling.
    b = HistoryBuilder()
    unfinished(b, "s1", ["RESERVING", "CHARGING"], every_s=1)
    deadline_passed(b, after_s=20)
    b.wait(1)
    b.event("shop.charged", "s1", amount=10)
    check = b.check(shop, ["convergence"])["convergence"]
    assert check.status == "inconclusive" and check.stats["still_progressing"] == 1


def test_the_quiet_window_is_the_models(shop):
    b = HistoryBuilder()
    unfinished(b, "s1", ["RESERVING"], every_s=1)
    deadline_passed(b, after_s=4)
    assert b.check(shop, ["convergence"])["convergence"].status == "inconclusive"  # 4 s < 10 s: still moving
    patient = shop.model_copy(update={"convergence": shop.convergence.model_copy(update={"quiet_s": 3.0})})
    assert b.check(patient, ["convergence"])["convergence"].status == "violated"  # 4 s > 3 s: stuck


def test_a_saga_that_finished_late_is_measured_against_the_objective_not_violated(shop):
    b = HistoryBuilder()
    b.phase("workload-start")
    b.saga("s1")
    b.wait(31)  # then everything, and done: 31 s after its request
    b.event("shop.reserved", "s1", total=10, items=[])
    b.event("shop.charged", "s1", amount=10)
    b.event("shop.confirmed", "s1")
    b.status("s1", "DONE", "completed")
    completed_shop_saga(b, "s2")
    b.phase("converged", pending=0, deadline_s=40)
    snapshots(
        b,
        mails=[{"saga_id": "s1", "event_id": "m1"}, {"saga_id": "s2", "event_id": "m2"}],
        orders=[{"saga_id": "s1", "status": "confirmed"}, {"saga_id": "s2", "status": "confirmed"}],
    )
    check = b.check(shop, ["convergence"])["convergence"]
    assert check.status == "ok" and check.stats["objective_s"] == 40  # the run's deadline
    assert check.stats["slow"] == 0
    strict = shop.model_copy(update={"convergence": shop.convergence.model_copy(update={"objective_s": 20.0})})
    check = b.check(strict, ["convergence"])["convergence"]
    assert check.status == "ok" and check.stats["slow"] == 1
    [note] = check.notes
    assert note.saga_id == "s1" and note.kind == "slow" and "after 31.0 s" in note.actual
    [f] = check.findings
    assert f.status == "note" and f.title == "took longer than the 20 s time-to-converge objective in 1 saga"


# -- what absent evidence may prove --------------------------------------------------------------
def double_charges_and_missing_events(b: HistoryBuilder) -> None:
    """s1 charged twice (evidence present); s2 compensated but never released (evidence absent)."""
    completed_shop_saga(b, "s1")
    b.event("shop.charged", "s1", amount=100)  # a second, distinct charge
    compensated_shop_saga(b, "s2")
    b.entries = [e for e in b.entries if not (e["type"] == "event" and e["event"]["type"] == "shop.released")]


def starved(b: HistoryBuilder, seconds: int) -> None:
    for _ in range(seconds):
        b.machine(loop_lag_p99_ms=STARVED_LOOP_LAG_P99_MS * 3)


def test_a_starved_run_holds_back_absent_evidence_but_never_a_double_charge(shop):
    b = HistoryBuilder()
    double_charges_and_missing_events(b)
    starved(b, 10)
    for _ in range(10):
        b.machine()  # half the run starved: above the 20 % threshold
    verdicts = b.check(shop)
    assert observe(build_index(b.entries, shop)).starved
    idem = verdicts["idempotency"]
    assert idem.status == "violated" and [(v.saga_id, v.step) for v in idem.violations] == [("s1", "charge")]
    assert any(v.saga_id == "s1" and v.basis == "present" for v in verdicts["conservation"].violations)
    comp = verdicts["compensation"]
    assert comp.status == "inconclusive" and not comp.violations
    held = {(v.saga_id, v.step) for v in comp.inconclusive}
    assert ("s2", "reserve") in held and all(v.basis == "absent" for v in comp.inconclusive)
    assert "the machine was starved for 10 of 20 s" in (comp.reason or "")
    assert verdicts.status == "violated" and verdicts.exit_code == EXIT_VIOLATED  # the double charge stands


def test_the_same_history_on_a_quiet_machine_is_violated(shop):
    b = HistoryBuilder()
    double_charges_and_missing_events(b)
    for _ in range(20):
        b.machine()
    b.machine(loop_lag_p99_ms=STARVED_LOOP_LAG_P99_MS * 3)  # one slow second is no starvation
    comp = b.check(shop)["compensation"]
    assert comp.status == "violated" and any(v.saga_id == "s2" and v.step == "reserve" for v in comp.violations)


def test_a_sut_starved_of_cpu_by_other_work(shop):
    b = HistoryBuilder()
    compensated_shop_saga(b, "s2")
    b.entries = [e for e in b.entries if not (e["type"] == "event" and e["event"]["type"] == "shop.released")]
    for _ in range(5):
        # The machine saturated; the SUT's processes got 40 % of one core out of two cores' 100 %.
        b.machine(cpu_busy_pct=98.0, sut_cpu_pct=40.0, cores=2)
    assert b.check(shop, ["compensation"])["compensation"].status == "inconclusive"
    b2 = HistoryBuilder()
    b2.entries = [e for e in b.entries if e["type"] != "machine"]
    for _ in range(5):
        b2.machine(cpu_busy_pct=98.0, sut_cpu_pct=180.0, cores=2)  # the SUT itself is what keeps it busy
    assert b2.check(shop, ["compensation"])["compensation"].status == "violated"


@pytest.mark.parametrize(
    ("sample", "is_starved"),
    [
        ({"loop_lag_p99_ms": STARVED_LOOP_LAG_P99_MS + 1}, True),  # the harness fell a poll behind
        ({"loop_lag_p99_ms": STARVED_LOOP_LAG_P99_MS}, False),
        ({"cpu_busy_pct": 99.0, "sut_cpu_pct": 60.0, "cores": 2}, True),  # 30 % of the machine: under half of 99
        ({"cpu_busy_pct": 99.0, "sut_cpu_pct": 120.0, "cores": 2}, False),  # 60 %: the SUT is what keeps it busy
        ({"cpu_busy_pct": 80.0, "sut_cpu_pct": 10.0, "cores": 2}, False),  # not saturated
        ({"cpu_busy_pct": 99.0, "sut_cpu_pct": 0.0, "cores": 2}, False),  # idle (or a first reading): not starved
        ({"cpu_busy_pct": 99.0, "sut_cpu_pct": 10.0, "cores": None}, False),  # cores unknown: shares cannot be compared
        # Where the kernel says how long the SUT waited for a CPU, that decides (not the shares):
        ({"cpu_busy_pct": 100.0, "sut_cpu_pct": 13.0, "cores": 2, "sut_wait_pct": 0.4}, False),  # idle (stuck) SUT
        ({"cpu_busy_pct": 100.0, "sut_cpu_pct": 40.0, "cores": 2, "sut_wait_pct": 90.0}, True),  # ready, no CPU
        ({"cpu_busy_pct": 100.0, "sut_cpu_pct": 150.0, "cores": 2, "sut_wait_pct": 30.0}, False),  # ran far more
        ({"cpu_busy_pct": 50.0, "sut_cpu_pct": 20.0, "cores": 2, "sut_wait_pct": 20.0}, False),  # under a quarter
    ],
)
def test_what_a_starved_second_is(sample, is_starved):
    from saga_harness.checkers.observation import starved as starved_sample
    from saga_harness.history.index import MachineSample

    assert starved_sample(MachineSample(wall=1.0, interval_s=1.0, **sample)) is is_starved


def test_a_missed_compensation_after_the_evidence_settled_stands_on_a_starved_machine(shop):
    # The release never came: held back while it might still be on its way; once the run recorded that
    # nothing more was coming (drained, the last snapshots agreeing), a starved machine changes nothing.
    def skipped_release(settled: bool) -> HistoryBuilder:
        b = HistoryBuilder()
        compensated_shop_saga(b, "s2")
        b.entries = [e for e in b.entries if not (e["type"] == "event" and e["event"]["type"] == "shop.released")]
        starved(b, 10)
        if settled:
            b.settled(True, events_last_s=0.0, waited_s=2.0, pending={}, snapshots_agreed=True)
        return b

    check = skipped_release(settled=True).check(shop, ["compensation"])["compensation"]
    assert check.status == "violated", check
    assert any(v.saga_id == "s2" and v.step == "reserve" and v.basis == "present" for v in check.violations)
    check = skipped_release(settled=False).check(shop, ["compensation"])["compensation"]
    assert check.status == "inconclusive" and not check.violations


def test_a_few_starved_seconds_are_not_a_starved_run(shop):
    b = HistoryBuilder()
    starved(b, 2)  # 2 of 2 s: all of it, but 2 s decide nothing
    assert not observe(build_index(b.entries, shop)).starved
    starved(b, 1)
    assert observe(build_index(b.entries, shop)).starved


def test_a_wrong_balance_after_the_evidence_settled_stands_on_a_starved_machine(shop):
    # A lost update: one reservation seen, yet the stock level says two were taken. Once the run
    # recorded that nothing more was coming, the final state is final, starved or not.
    def lost_update(settled: bool) -> HistoryBuilder:
        b = HistoryBuilder()
        completed_shop_saga(b, "s1")
        starved(b, 10)
        if settled:
            b.settled(True, events_last_s=0.0, waited_s=2.0, pending={}, snapshots_agreed=True)
        snapshots(b, stock=[{"sku": "A", "initial": 10, "available": 8}])
        return b

    check = lost_update(settled=True).check(shop, ["conservation"])["conservation"]
    assert check.status == "violated", check
    assert any(v.step == "stock levels" and v.basis == "present" for v in check.violations)
    check = lost_update(settled=False).check(shop, ["conservation"])["conservation"]
    assert check.status == "inconclusive" and not check.violations  # it might still have been arriving
    assert any(v.step == "stock levels" and v.basis == "absent" for v in check.inconclusive)


def test_evidence_cap_reached_while_events_arrive_holds_back_missing_events(shop):
    b = HistoryBuilder()
    b.saga("s1")
    b.event("shop.reserved", "s1", total=0, items=[])
    b.event("shop.confirmed", "s1")
    b.status("s1", "DONE", "completed")  # no charge seen
    b.settled(False, events_last_s=480.0, waited_s=60.0, pending={"eventbus": 1200})
    snapshots(b, stock=[], orders=[], mails=[])
    verdicts = b.check(shop, ["convergence"])
    check = verdicts["convergence"]
    assert check.status == "inconclusive" and not check.violations
    assert {v.step for v in check.inconclusive} >= {"charge", "order status", "receipt"}
    assert "evidence still arriving when observation ended: 480 events in the last second after waiting 60.0 s" in (
        check.reason or ""
    )
    assert "pending: eventbus=1200" in (check.reason or "")
    assert verdicts.exit_code == EXIT_INCONCLUSIVE


def test_a_quiet_stream_without_a_drain_signal_is_drained(shop):
    b = HistoryBuilder()
    b.saga("s1")
    b.event("shop.reserved", "s1", total=0, items=[])
    b.status("s1", "DONE", "completed")
    # The system gives no drain signal (so never "drained"), but nothing was arriving any more.
    b.settled(False, events_last_s=0.0, waited_s=60.0, pending={}, snapshots_agreed=True)
    snapshots(b, stock=[], orders=[], mails=[])
    assert b.check(shop, ["convergence"])["convergence"].status == "violated"


def test_a_missing_event_the_snapshots_prove_is_an_observation_gap(shop):
    b = HistoryBuilder()
    b.saga("s1")
    b.event("shop.reserved", "s1", total=0, items=[])
    b.event("shop.charged", "s1", amount=0)
    b.status("s1", "DONE", "completed")  # no shop.confirmed captured…
    snapshots(b, stock=[])  # … but the order service says confirmed, and the receipt was sent
    check = b.check(shop, ["convergence"])["convergence"]
    assert check.status == "ok" and not check.violations and check.stats["observation_gaps"] == 1
    [gap] = check.notes
    assert gap.kind == "gap" and gap.step == "confirm" and "final snapshots show the saga completed" in gap.actual
    [f] = check.findings
    assert f.status == "note" and f.kind == "gap"


# -- one finding per cause ------------------------------------------------------------------------
def test_a_double_charge_in_28_sagas_is_one_finding_per_checker(shop):
    b = HistoryBuilder()
    for i in range(28):
        completed_shop_saga(b, f"s{i}")
        b.event("shop.charged", f"s{i}", amount=100)
    snapshots(b, mails=[{"saga_id": f"s{i}", "event_id": f"m{i}"} for i in range(28)], orders=[])
    verdicts = b.check(shop, ["idempotency", "conservation"])
    [idem] = verdicts["idempotency"].findings
    assert idem.count == idem.sagas == 28 and idem.step == "charge"
    assert idem.title == "charge took effect more than once (distinct events) in 28 sagas"
    assert [i.saga_id for i in idem.first] == ["s0", "s1", "s2", "s3", "s4"] and idem.more_sagas == 23
    assert all(len(i.evidence) == 2 for i in idem.first)
    money = [f for f in verdicts["conservation"].findings if f.cause == "more money than a completed saga's total"]
    assert len(money) == 1 and money[0].count == 28 and money[0].basis == "present"
    assert len(verdicts["idempotency"].violations) == 28  # every instance is kept


def test_367_events_missing_one_attribute_are_one_finding(shop):
    b = HistoryBuilder()
    for i in range(367):
        event = {"specversion": "1.0", "id": f"e{i}", "type": "shop.charged", "data": {"saga_id": f"s{i % 120}"}}
        b.add(CapturedEvent(event), process="sink")
    check = b.check(shop, ["contracts"])["contracts"]
    assert len(check.violations) == 367
    [f] = check.findings
    assert f.count == 367 and f.sagas == 120
    assert f.title == "charge: /source: required attribute 'source' is missing: 367 events in 120 sagas"


def test_findings_tell_causes_apart(shop):
    b = HistoryBuilder()
    for sid in ("a", "b"):
        b.saga(sid)
        b.status(sid, "RESERVING")
    b.saga("c")
    b.status("c", "CHARGING")
    deadline_passed(b, 30)
    check = b.check(shop, ["convergence"])["convergence"]
    titles = sorted(f.title for f in check.findings)
    assert titles == [
        "stuck in CHARGING: no progress for 10 s or more before observation ended in 1 saga",
        "stuck in RESERVING: no progress for 10 s or more before observation ended in 2 sagas",
    ]


# -- verdicts.json ------------------------------------------------------------------------------
def test_status_reason_findings_and_coverage_round_trip(shop, tmp_path):
    b = HistoryBuilder()
    unfinished(b, "u1", ["RESERVING"], every_s=1)
    completed_shop_saga(b, "s1")
    compensated_shop_saga(b, "s2")
    deadline_passed(b, 1)
    snapshots(b)
    verdicts = b.check(shop)
    verdicts.write(tmp_path)
    doc = json.loads((tmp_path / "verdicts.json").read_text())
    assert doc["status"] == "inconclusive" and doc["ok"] is False and "convergence:" in doc["reason"]
    conv = next(c for c in doc["checks"] if c["name"] == "convergence")
    assert conv["status"] == "inconclusive" and conv["inconclusive"] and conv["findings"]
    assert doc["coverage"]["steps"][0] == {"step": "reserve", "done": 2, "failed": 0, "compensated": 1}
    again = Verdicts.read(tmp_path)
    assert again == verdicts and again.status == "inconclusive" and again.coverage == verdicts.coverage


def test_a_verdicts_file_written_before_statuses_still_reads(tmp_path):
    old = {
        "ok": False,
        "run_id": "old",
        "stats": {"sagas_started": 1},
        "checks": [
            {"name": "idempotency", "ok": True, "violations": [], "stats": {}},
            {
                "name": "convergence",
                "ok": False,
                "violations": [
                    {"checker": "convergence", "saga_id": "s1", "step": None, "expected": "e", "actual": "a"}
                ],
                "stats": {},
            },
        ],
    }
    (tmp_path / "verdicts.json").write_text(json.dumps(old))
    v = Verdicts.read(tmp_path)
    assert [c.status for c in v.checks] == ["ok", "violated"] and v.status == "violated"
    assert v["convergence"].findings[0].count == 1  # findings derived from the instances
    assert v.coverage.steps == ()


def test_a_checker_written_before_statuses_still_builds_its_verdict():
    assert Verdict("mine", True).status == "ok" and Verdict("mine", False).status == "violated"
    with pytest.raises(ValueError, match="not one of ok, violated, inconclusive"):
        Verdict("mine", "green")  # type: ignore[arg-type]


def test_assert_ok_fails_an_inconclusive_run_unless_told_otherwise(shop):
    b = HistoryBuilder()
    unfinished(b, "s1", ["RESERVING"], every_s=1)
    verdicts = b.check(shop, ["convergence"])
    with pytest.raises(AssertionError, match="inconclusive: no violation proved"):
        verdicts.assert_ok()
    heard: list[str] = []
    from dataclasses import replace

    replace(verdicts, on_inconclusive=heard.append).assert_ok()
    assert heard and "still progressing in RESERVING" in heard[0]
    ok = HistoryBuilder()
    completed_shop_saga(ok)
    snapshots(ok)
    assert ok.check(shop).exit_code == EXIT_OK


# -- what the run covered --------------------------------------------------------------------
def test_coverage_counts_steps_faults_triggers_and_checkers(shop):
    b = HistoryBuilder()
    b.phase("workload-start")
    completed_shop_saga(b, "s1")
    with b.faulted("kill", "shop-charge"):  # s2 is in flight; its charge comes from the faulted service
        b.saga("s2", trigger="declined")
        b.status("s2", "RESERVING")
        b.event("shop.reserved", "s2", total=50, items=[{"sku": "A", "qty": 2}])
        b.event("shop.charged", "s2", amount=50, source="/shop-charge")
    b.status("s2", "REFUNDING")
    b.event("shop.refunded", "s2", amount=50, applied=True)
    b.event("shop.released", "s2", items=[{"sku": "A", "qty": 2}], applied=True)
    b.status("s2", "UNDONE", "compensated", failed_step="confirm")
    with b.faulted("latency", "mail->nowhere"):  # nothing in flight
        b.wait(2)
    b.saga("s3", trigger="ok")  # stalled across a 2 s pause: nothing seen of it meanwhile
    with b.faulted("pause", "orders"):
        b.wait(2)
    b.status("s3", "DONE", "completed")
    snapshots(b)
    verdicts = b.check(shop)
    cov = verdicts.coverage
    steps = {s.step: (s.done, s.failed, s.compensated) for s in cov.steps}
    assert steps == {"reserve": (2, 0, 1), "charge": (2, 0, 1), "confirm": (1, 1, 0)}
    kill, latency, pause = cov.faults
    assert (kill.kind, kill.in_flight, kill.touched, kill.involved, kill.sagas) == ("kill", 1, 1, 1, ("s2",))
    assert latency.no_effect and latency.in_flight == 0
    assert (pause.in_flight, pause.touched, pause.stalled, pause.sagas) == (1, 1, 1, ("s3",))
    assert {t.trigger: t.outcomes for t in cov.triggers} == {
        "ok": {"completed": 2},
        "declined": {"compensated": 1},
    }
    examined = {c.checker: (c.sagas, c.facts) for c in cov.checkers}
    assert examined["idempotency"][0] == 3 and examined["convergence"][1] > 0
    assert examined["contracts"] == (None, None)  # a checker that does not say
    [warning] = [w for w in cov.warnings if "fault" in w]
    assert "mail->nowhere" in warning and "had no effect" in warning


@pytest.mark.parametrize(
    ("target", "names"),
    [
        ("payment", ("payment",)),
        ("taskqueue->payment", ("payment", "taskqueue")),
        ("eventbus:orchestrator-fraud", ("fraud", "orchestrator", "orchestrator-fraud")),  # the queue, not the bus
        ("eventbus:*", ("*",)),  # every queue: every event passes through it
    ],
)
def test_what_a_fault_targets_by_name(target, names):
    from saga_harness.history.index import fault_names

    assert fault_names(target) == names


def test_a_fault_on_a_delivery_queue_touches_the_sagas_whose_events_it_carries(shop):
    b = HistoryBuilder()
    b.saga("s1")
    b.saga("s2")
    with b.faulted("drop", "bus:orchestrator-charged"):
        b.event("shop.charged", "s1", amount=1)  # its charge went through the dropped queue
        b.event("shop.reserved", "s2", total=1, items=[])
    with b.faulted("delay", "bus:*"):
        b.event("shop.reserved", "s1", total=1, items=[])
    drop, every = b.check(shop, ["idempotency"]).coverage.faults
    assert (drop.in_flight, drop.touched, drop.sagas) == (2, 1, ("s1",))
    # Every event passes through a fault on every queue; s2, in flight, had none then (and 10 ms is no stall).
    assert (every.in_flight, every.touched, every.sagas, every.stalled) == (2, 1, ("s1",), 0)


def test_sagas_started_during_a_fault_that_never_moved_while_it_lasted_were_touched(shop):
    # The bus killed as the workload starts: every saga is answered, then nothing of them moves.
    b = HistoryBuilder()
    with b.faulted("kill", "bus"):
        for sid in ("s1", "s2", "s3"):
            b.saga(sid)
        b.event("shop.reserved", "s3", total=1, items=[])  # s3 did move
        b.wait(2)
    [kill] = b.check(shop, ["idempotency"]).coverage.faults
    assert (kill.in_flight, kill.touched, kill.stalled, kill.involved, kill.sagas) == (3, 2, 2, 0, ("s1", "s2"))


def test_a_run_whose_checkers_examined_nothing_says_so_and_stays_ok():
    model = SagaModel.model_validate({"states": {"terminal": {"DONE": "completed"}}})
    b = HistoryBuilder()
    verdicts = run_checks(b.entries, model, ["conservation", "state_machine"])
    assert verdicts.status == "ok"  # nothing to judge is not "could not judge"
    warnings = verdicts.coverage.warnings
    assert any("no saga was started" in w for w in warnings)
    assert any(w.startswith("conservation examined nothing (0 sagas, 0 facts)") for w in warnings)


def test_the_shop_model_fixture_is_the_handbuilt_one(shop):
    assert shop == SagaModel.model_validate(SHOP)
