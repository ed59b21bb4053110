"""After faults the snapshot waits for retries still due: at least ``settle_s`` from healing."""

from __future__ import annotations

import asyncio
import time

from saga_harness.runner import Runner, RunOptions


def _drain_seconds(options: RunOptions) -> tuple[float, dict]:
    runner = Runner(sut=None, history=None, options=options)  # type: ignore[arg-type]  # _drain() uses neither
    runner._converging_since = time.monotonic()  # converge() starts once the faults have healed
    t0 = time.monotonic()
    detail = asyncio.run(runner._drain(cap_at=t0 + 10))
    return time.monotonic() - t0, detail


def test_without_faults_a_quiet_stream_is_enough():
    took, detail = _drain_seconds(RunOptions(quiet_s=0.1))
    assert took < 0.5 and detail["drained"] and not detail["cap_reached"]


def test_after_faults_the_snapshot_waits_settle_s_from_healing():
    # A loyalty delivery that failed while loyalty was down is retried up to 2 s later, and
    # no captured event announces it: a quiet stream alone took the snapshot too early.
    took, detail = _drain_seconds(RunOptions(quiet_s=0.1, settle_s=0.8))
    assert 0.75 <= took < 1.5 and detail["drained"]
