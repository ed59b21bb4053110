"""The observe side of a run, on the in-process fake SUT (real HTTP, no processes): the evidence
settles before judging (the event stream quiet, the system's own drain signal at zero, two
snapshots that agree, all within a cap), and sagas still moving at the deadline get more time
while stopped ones do not."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from saga_harness.adapters.fake import FakeSystem
from saga_harness.history import HistoryWriter
from saga_harness.lifecycle import plan_workload
from saga_harness.runner import Runner, RunOptions
from saga_harness.sink import QUIET_CAP_S, Arrivals, quiet_window_s
from saga_harness.sut import Drain


# -- the quiet window and the arrivals it is judged by (pure) --------------------------------
def test_the_quiet_window_scales_with_what_the_run_has_seen():
    base = {"floor_s": 0.5, "typical_gap_s": 0.0, "drain_signal": True, "retry_interval_s": None, "longest_fault_s": 0}
    assert quiet_window_s(**base) == 0.5
    # A slow system's events come far apart: five of its gaps.
    assert quiet_window_s(**{**base, "typical_gap_s": 0.4}) == pytest.approx(2.0)
    # No drain signal: long enough for a delivery in retry to be tried again — the stated backoff cap,
    # else the longest fault (retries back off about as long as they kept failing); none without faults.
    nodrain = {**base, "drain_signal": False}
    assert quiet_window_s(**{**nodrain, "retry_interval_s": 2.0, "longest_fault_s": 9}) == pytest.approx(3.0)
    assert quiet_window_s(**{**nodrain, "longest_fault_s": 4.0}) == 4.0
    assert quiet_window_s(**nodrain) == 0.5
    # With a drain signal the system counts its retries itself: the faults do not stretch the window.
    assert quiet_window_s(**{**base, "longest_fault_s": 4.0, "retry_interval_s": 2.0}) == 0.5
    # The harness's own lag is added (an event it has not read is not silence), and the cap holds.
    assert quiet_window_s(**{**base, "loop_lag_s": 0.3}) == pytest.approx(0.8)
    assert quiet_window_s(**{**nodrain, "longest_fault_s": 500}) == QUIET_CAP_S


def test_arrivals_count_the_last_second_and_the_typical_gap():
    arrivals = Arrivals()
    now = time.monotonic()
    for i in range(50):
        arrivals.add(now - 1.98 + i * 0.04)  # one every 40 ms, the last at now - 0.02
    assert arrivals.count == 50 and arrivals.last == pytest.approx(now - 0.02)
    assert arrivals.in_last(1.0, now) == 25
    assert arrivals.typical_gap_s() == pytest.approx(0.04)


# -- a run on the fake, observed by a runner of its own ---------------------------------------
class DrainingFake(FakeSystem):
    """The fake with a drain signal: ``backlog`` deliveries pending until ``until`` (monotonic), or
    for good (``until`` None); ``broken``: the signal cannot be read."""

    backlog = 7
    until: float | None = 0.0
    broken = False
    reads = 0

    async def pending(self, http: aiohttp.ClientSession) -> dict[str, int]:
        self.reads += 1
        if self.broken:
            raise aiohttp.ClientConnectionError("connection refused")
        waiting = self.until is None or time.monotonic() < self.until
        return {"queue": self.backlog if waiting else 0}


class ChangingFake(FakeSystem):
    """The fake whose snapshot keeps changing for its first ``changes`` reads (None: for ever)."""

    changes: int | None = 2
    reads = 0

    async def snapshot(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        data = await super().snapshot(http)
        self.reads += 1
        if self.changes is None or self.reads <= self.changes:
            data["counter"] = {"reads": self.reads}
        return data


def _observe(
    tmp_path: Path,
    sut: FakeSystem,
    *,
    sagas: int = 10,
    options: RunOptions | None = None,
    during: Any = None,
    converge_s: float = 20,
) -> tuple[list[dict[str, Any]], bool, float]:
    """Drive ``sagas`` sagas on ``sut``, converge, finish (settle and snapshot); the history's lines,
    whether it converged, and how long finish() took. ``during(runner)``: a coroutine run beside finish()."""
    sut.start()
    path = tmp_path / "history.jsonl"
    try:
        with HistoryWriter(path) as history:
            runner = Runner(sut, history, options or RunOptions())

            async def go() -> tuple[bool, float]:
                await runner.open()
                try:
                    await runner.drive(plan_workload(sut, sagas, seed=1))
                    converged = await runner.converge(converge_s)
                    t0 = time.monotonic()
                    extra = asyncio.ensure_future(during(runner)) if during else None
                    await runner.finish()
                    took = time.monotonic() - t0
                    if extra is not None:
                        extra.cancel()
                        await asyncio.gather(extra, return_exceptions=True)
                    return converged, took
                finally:
                    await runner.close()

            converged, took = asyncio.run(go())
    finally:
        sut.shutdown()
    return [json.loads(line) for line in path.read_text().splitlines()], converged, took


def _phase(lines: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [line["detail"] for line in lines if line["type"] == "phase" and line["name"] == name]
    assert len(found) == 1, (name, [line["name"] for line in lines if line["type"] == "phase"])
    return found[0]


def test_the_snapshot_waits_for_the_systems_own_backlog_to_drain(tmp_path):
    sut = DrainingFake(tmp_path / "sut")
    assert isinstance(sut, Drain)
    sut.until = time.monotonic() + 10**6  # set for real below, once the sagas have converged

    async def drains_later(_runner: Runner) -> None:
        sut.until = time.monotonic() + 1.5

    lines, converged, took = _observe(tmp_path, sut, during=drains_later)
    settled = _phase(lines, "evidence-settled")
    assert converged and 1.5 <= took < 5, took
    assert settled["drained"] and not settled["cap_reached"] and settled["snapshots_agreed"]
    assert settled["pending"] == {"queue": 0} and settled["drain_signal"] and settled["waited_s"] >= 1.5
    assert set(settled) >= {"drained", "cap_reached", "events_last_s", "waited_s", "pending", "snapshots_agreed"}
    # The final snapshot comes after the settling, once a service.
    at = next(i for i, line in enumerate(lines) if line["type"] == "phase" and line["name"] == "evidence-settled")
    snaps = [(i, line) for i, line in enumerate(lines) if line["type"] == "snapshot"]
    final = [(i, line["service"]) for i, line in snaps if not line["baseline"]]
    assert final and all(i > at for i, _ in final) and len({s for _, s in final}) == len(final)


def test_a_backlog_that_never_drains_ends_at_the_cap_and_says_so(tmp_path):
    sut = DrainingFake(tmp_path / "sut")
    sut.until = None
    lines, _converged, took = _observe(tmp_path, sut, options=RunOptions(evidence_cap_s=1.5))
    settled = _phase(lines, "evidence-settled")
    assert 1.5 <= took < 5, took
    assert not settled["drained"] and settled["cap_reached"] and settled["pending"] == {"queue": 7}
    assert any(line["type"] == "snapshot" and not line["baseline"] for line in lines)  # judged all the same


def test_a_drain_signal_that_cannot_be_read_is_not_taken_for_drained(tmp_path):
    sut = DrainingFake(tmp_path / "sut")
    sut.broken = True
    lines, _converged, took = _observe(tmp_path, sut, options=RunOptions(evidence_cap_s=1.0))
    settled = _phase(lines, "evidence-settled")
    assert not settled["drained"] and settled["cap_reached"] and sut.reads >= 2 and took >= 1.0


def test_events_still_arriving_hold_the_snapshot_back(tmp_path):
    # Side effects still landing after every saga ended, for longer than the old fixed wait (about
    # 5 s whatever the flow — the soak lost 5,013 events that way): 20 events a second for 6.5 s.
    sut = FakeSystem(tmp_path / "sut")
    pushed = 0

    async def late_events(runner: Runner) -> None:
        nonlocal pushed
        assert runner.sink is not None
        async with aiohttp.ClientSession() as http:
            for i in range(130):
                event = {"specversion": "1.0", "id": f"late-{i}", "source": "/late", "type": "late.effect"}
                async with http.post(runner.sink.url, json=event) as resp:
                    assert resp.status == 204
                pushed += 1
                await asyncio.sleep(0.05)

    lines, _converged, took = _observe(tmp_path, sut, during=late_events)
    settled = _phase(lines, "evidence-settled")
    assert pushed == 130 and took >= 6.5, (pushed, took)
    assert settled["drained"] and not settled["cap_reached"] and settled["events_last_s"] == 0.0
    late = [i for i, line in enumerate(lines) if line["type"] == "event" and line["event"]["source"] == "/late"]
    snapshot = max(i for i, line in enumerate(lines) if line["type"] == "snapshot")
    assert len(late) == 130 and max(late) < snapshot


def test_events_arriving_at_the_cap_are_counted_with_the_backlog(tmp_path):
    sut = DrainingFake(tmp_path / "sut")
    sut.until = None  # a backlog that never drains, and events that never stop

    async def endless(runner: Runner) -> None:
        assert runner.sink is not None
        async with aiohttp.ClientSession() as http:
            for i in range(1000):
                event = {"specversion": "1.0", "id": f"e-{i}", "source": "/busy", "type": "busy"}
                async with http.post(runner.sink.url, json=event) as resp:
                    await resp.read()
                await asyncio.sleep(0.05)

    lines, _converged, took = _observe(tmp_path, sut, during=endless, options=RunOptions(evidence_cap_s=1.5))
    settled = _phase(lines, "evidence-settled")
    assert 1.5 <= took < 5 and not settled["drained"] and settled["cap_reached"]
    assert settled["events_last_s"] >= 5  # "evidence still arriving: N events in the last second"
    assert settled["pending"] == {"queue": 7}  # read while the events kept the stream from going quiet


@pytest.mark.parametrize("changes", [2, None])
def test_the_final_snapshot_is_taken_until_two_reads_agree(tmp_path, changes):
    sut = ChangingFake(tmp_path / "sut")
    sut.changes = changes

    async def count_from_here(_runner: Runner) -> None:
        sut.reads = 0  # the baseline read is not one of the final ones

    options = RunOptions(evidence_cap_s=2.0, quiet_s=0.2)
    lines, _converged, _took = _observe(tmp_path, sut, options=options, during=count_from_here)
    settled = _phase(lines, "evidence-settled")
    final = [line for line in lines if line["type"] == "snapshot" and not line["baseline"]]
    assert len({line["service"] for line in final}) == len(final)  # one final snapshot a service
    if changes is not None:
        assert settled["snapshots_agreed"] and settled["snapshot_reads"] == changes + 2 and not settled["cap_reached"]
        assert not any(line["service"] == "counter" for line in final)  # the settled read is the one kept
    else:
        assert not settled["snapshots_agreed"] and settled["cap_reached"] and settled["snapshot_reads"] >= 2
        # The last read is the one recorded (the latest state the harness saw).
        assert [line["data"] for line in final if line["service"] == "counter"] == [{"reads": sut.reads}]


# -- slow is not stuck ---------------------------------------------------------------------
@pytest.mark.parametrize("cap_s", [10.0, None])
def test_sagas_still_moving_at_the_deadline_get_more_time_up_to_the_cap(tmp_path, cap_s):
    # Each step takes 0.4 s: a saga needs over a second, the deadline is 0.3 s; the cap is 10 s, or
    # by default 3 x the deadline (0.9 s), too short for them.
    sut = FakeSystem(tmp_path / "sut", extra_env={"FAKE_STEP_S": "0.4"})
    options = RunOptions(deadline_cap_s=cap_s)
    lines, converged, _took = _observe(tmp_path, sut, sagas=6, converge_s=0.3, options=options)
    extended = [line["detail"] for line in lines if line["type"] == "phase" and line["name"] == "deadline-extended"]
    assert extended and extended[0]["pending"] >= extended[0]["progressing"] > 0 and extended[0]["extra_s"] > 0
    if cap_s is not None:
        assert converged and _phase(lines, "converged")["extended_s"] > 0
    else:
        passed = _phase(lines, "deadline-passed")
        assert not converged and passed["progressing"] > 0 and passed["extended_s"] == pytest.approx(0.6, abs=0.05)
    # The status observations say when each saga moved: states change, one line per change.
    states = [(line["saga_id"], line["state"]) for line in lines if line["type"] == "status"]
    assert len(states) == len(set(states))


def test_sagas_that_stopped_moving_are_not_waited_for_past_the_deadline(tmp_path):
    sut = FakeSystem(tmp_path / "sut", extra_env={"FAKE_STEP_S": "0.05"})

    async def go() -> tuple[list[dict[str, Any]], bool, float]:
        sut.start()
        path = tmp_path / "h.jsonl"
        try:
            with HistoryWriter(path) as history:
                runner = Runner(sut, history, RunOptions(deadline_cap_s=30))
                await runner.open()
                try:
                    sut.kill("charge", signal.SIGSTOP)  # every saga stops at charge, for good
                    await runner.drive(plan_workload(sut, 5, mix="ok=1", seed=1))
                    t0 = time.monotonic()
                    converged = await runner.converge(1.0)
                    return [json.loads(x) for x in path.read_text().splitlines()], converged, time.monotonic() - t0
                finally:
                    await runner.close()
        finally:
            sut.shutdown()

    lines, converged, took = asyncio.run(go())
    passed = _phase(lines, "deadline-passed")
    assert not converged and passed["pending"] == 5 and passed["progressing"] == 0
    # Waited for the deadline and, at most, for the sagas last seen moving to go still — not the 30 s cap.
    assert 1.0 <= took < 1.0 + passed["window_s"] + 3, (took, passed)


def test_sagas_that_stopped_moving_on_a_starved_machine_are_watched_until_a_clear_quiet_window(tmp_path):
    # Every saga stops at charge; the machine is starved for the first 3 s of converging: standing still
    # then proves nothing, so the runner watches on until they have stood still on a clear machine.
    sut = FakeSystem(tmp_path / "sut", extra_env={"FAKE_STEP_S": "0.05"})

    async def go() -> tuple[list[dict[str, Any]], bool, float]:
        sut.start()
        path = tmp_path / "h.jsonl"
        try:
            with HistoryWriter(path) as history:
                runner = Runner(sut, history, RunOptions(deadline_cap_s=30, quiet_s=1.0))
                await runner.open()
                try:
                    sut.kill("charge", signal.SIGSTOP)
                    await runner.drive(plan_workload(sut, 5, mix="ok=1", seed=1))
                    t0 = time.monotonic()
                    until = t0 + 3.0
                    runner.starved_s = lambda since: max(0.0, min(time.monotonic(), until) - since)
                    converged = await runner.converge(1.0)
                    return [json.loads(x) for x in path.read_text().splitlines()], converged, time.monotonic() - t0
                finally:
                    await runner.close()
        finally:
            sut.shutdown()

    lines, converged, took = asyncio.run(go())
    extended = [x["detail"] for x in lines if x["type"] == "phase" and x["name"] == "deadline-extended"]
    starved = [e for e in extended if "starved_s" in e]
    assert starved and all(e["progressing"] == 0 and e["starved_s"] > 0 for e in starved), extended
    passed = _phase(lines, "deadline-passed")
    assert not converged and passed["pending"] == 5
    # past the starved 3 s plus a clear quiet second, and nowhere near the 30 s cap
    assert 4.0 <= took < 3.0 + 1.0 + passed["window_s"] + 4, (took, passed)


# -- the sink's batch route (the reference bus's tap pushes there) ----------------------------
def test_the_sink_takes_batches_at_its_batch_route_in_order():
    from saga_harness.sink import BATCH, EventSink

    got: list[dict[str, Any]] = []

    async def go() -> list[tuple[int, str]]:
        sink = EventSink(got.append)
        await sink.start()
        out = []
        try:
            async with aiohttp.ClientSession() as http:
                batch = [{"specversion": "1.0", "id": str(i), "source": "/s", "type": "t"} for i in range(3)]
                for url, body in ((sink.batch_url, batch), (sink.batch_url, {"id": "x"}), (sink.url, batch)):
                    async with http.post(url, data=json.dumps(body), headers={"Content-Type": BATCH}) as resp:
                        out.append((resp.status, await resp.text()))
            return out
        finally:
            await sink.stop()
            assert sink.received == 3 and sink.rejected == 2

    answers = asyncio.run(go())
    assert [a[0] for a in answers] == [204, 400, 400] and "JSON array" in answers[1][1]
    assert [e["id"] for e in got] == ["0", "1", "2"]  # as sent, in the order sent
