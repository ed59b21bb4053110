"""The harness measures its own starvation: MachineLoad records about once a second, telling a
blocked loop, a busy machine and a busy SUT apart — cheaply (well under 1 % of a core)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import psutil
import pytest
from saga_harness.history import HistoryWriter, MachineLoad, read_entries
from saga_harness.lifecycle import MachineMonitor
from saga_harness.supervisor import busy_loops


def _monitor(tmp_path, seconds: float, *, pids=list, block_s: float = 0.0) -> tuple[list[MachineLoad], dict, float]:
    """Run a monitor alone on a loop for ``seconds`` (blocking the loop ``block_s`` once, half-way);
    its records, its closing phase, and the process's CPU seconds meanwhile."""
    path = tmp_path / "history.jsonl"
    with HistoryWriter(path) as history:

        async def go() -> float:
            monitor = MachineMonitor(history, pids=pids)
            cpu0 = time.process_time()
            monitor.start()
            await asyncio.sleep(seconds / 2)
            time.sleep(block_s)  # the loop is blocked: nothing on it runs, the sleeper wakes late
            await asyncio.sleep(seconds / 2)
            await monitor.stop()
            return time.process_time() - cpu0

        cpu = asyncio.run(go())
    entries = list(read_entries(path))
    records = [e.record for e in entries if isinstance(e.record, MachineLoad)]
    [phase] = [json.loads(x)["detail"] for x in path.read_text().splitlines() if '"machine-monitor"' in x]
    return records, phase, cpu


def test_a_record_about_every_second_with_every_field(tmp_path):
    records, phase, _cpu = _monitor(tmp_path, 3.2)
    assert 2 <= len(records) <= 4 and phase["samples"] == len(records)
    for r in records:
        assert 0.9 <= r.interval_s <= 1.6
        assert 0 <= r.loop_lag_p99_ms <= r.loop_lag_max_ms
        assert r.cpu_busy_pct is not None and 0 <= r.cpu_busy_pct <= 100
        assert r.load1 is not None and r.load1 >= 0 and r.cores == psutil.cpu_count()
        assert r.sut_cpu_pct is None  # no process of the SUT to measure
        assert r.harness_cpu_pct is not None and r.harness_cpu_pct >= 0
    line = json.loads((tmp_path / "history.jsonl").read_text().splitlines()[0])
    assert line["type"] == "machine" and line["process"] == "monitor"
    assert set(line) >= {"interval_s", "loop_lag_p99_ms", "loop_lag_max_ms", "cpu_busy_pct", "sut_cpu_pct", "load1"}


def test_a_blocked_loop_shows_as_lag(tmp_path):
    records, _phase, _cpu = _monitor(tmp_path, 3.0, block_s=0.4)
    assert max(r.loop_lag_max_ms for r in records) >= 350
    assert min(r.loop_lag_max_ms for r in records) < 300  # the other seconds were not blocked


def test_it_costs_well_under_one_percent(tmp_path):
    # The monitor alone on its loop: the whole process's CPU is the monitor's (and the loop's).
    _records, phase, cpu = _monitor(tmp_path, 5.0)
    assert phase["overhead_pct"] < 0.5, phase
    # The whole process (its loop, its interpreter) as a cross-check, with room for a busy machine,
    # where every instruction costs more (1.3 % seen with two test workers and their systems running).
    assert cpu / 5.0 < 0.03, f"the monitor's process used {100 * cpu / 5:.2f} % of a core"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity")
def test_the_suts_share_and_the_machines_load_are_measured(tmp_path):
    # Two busy processes of "the system", pinned to the cores: its share is about 200 % (two cores),
    # the machine is busy; they are stopped when the block ends.
    # How much of the cores they get depends on what else the machine runs (a CI runner shares
    # them with other tests), so the monitor's figures are compared with the processes' own CPU
    # time over the same seconds, not with a fixed share.
    with busy_loops(2, tmp_path / "busy") as sup:
        pids = sup.pids()
        assert len(pids) == 2 and all(psutil.Process(p).cpu_affinity() in ([0], [1]) for p in pids)
        procs = [psutil.Process(p) for p in pids]
        cpu0, t0 = sum(sum(p.cpu_times()[:2]) for p in procs), time.monotonic()
        records, _phase, _cpu = _monitor(tmp_path, 4.2, pids=sup.pids)
        share = 100 * (sum(sum(p.cpu_times()[:2]) for p in procs) - cpu0) / (time.monotonic() - t0)
    assert all(not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE for p in pids)
    busy = records[1:]  # the first interval starts counting the processes part-way
    assert busy and all(r.sut_cpu_pct is not None for r in busy), busy
    measured = sum(r.sut_cpu_pct * r.interval_s for r in busy) / sum(r.interval_s for r in busy)
    assert share > 20 and abs(measured - share) <= max(25, 0.25 * share), (measured, share, busy)
    assert all(r.cpu_busy_pct is not None and r.cpu_busy_pct >= 50 for r in busy), busy


@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="the kernel gives no run-queue waits here")
def test_the_suts_wait_for_a_cpu_is_measured_and_an_idle_sut_waits_for_nothing(tmp_path):
    # "The system": one process on core 0, pinned beside two busy loops on the same core, so it is
    # ready to run and waits for a CPU; then an idle process (a sleeping one) beside the same loops.
    with busy_loops(2, tmp_path / "busy", cores=[0, 0]):
        ready = subprocess.Popen(
            [sys.executable, "-c", "while 1: pass"], preexec_fn=lambda: os.sched_setaffinity(0, {0})
        )
        idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            hungry, _phase, _cpu = _monitor(tmp_path / "a", 3.2, pids=lambda: [ready.pid])
            calm, _phase, _cpu = _monitor(tmp_path / "b", 3.2, pids=lambda: [idle.pid])
        finally:
            for p in (ready, idle):
                p.kill()
                p.wait()
    waited = [r.sut_wait_pct for r in hungry[1:]]
    assert waited and all(w is not None and w >= 25 for w in waited), hungry  # it waited for its core
    assert all(r.sut_wait_pct is not None and r.sut_wait_pct < 5 for r in calm[1:]), calm  # idle: no wait
