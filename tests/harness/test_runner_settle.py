"""After faults the snapshot waits for retries still due: at least ``settle_s`` from healing."""

from __future__ import annotations

import asyncio
import time

from saga_harness.runner import Runner, RunOptions


def _quiet_seconds(options: RunOptions) -> float:
    runner = Runner(sut=None, history=None, options=options)  # type: ignore[arg-type]  # _quiet() uses neither
    runner._converging_since = time.monotonic()  # converge() starts once the faults have healed
    runner._last_event = time.monotonic() - 60  # the event stream has long been quiet
    t0 = time.monotonic()
    asyncio.run(runner._quiet())
    return time.monotonic() - t0


def test_without_faults_a_quiet_stream_is_enough():
    assert _quiet_seconds(RunOptions(quiet_s=0.1)) < 0.3


def test_after_faults_the_snapshot_waits_settle_s_from_healing():
    # A loyalty delivery that failed while loyalty was down is retried up to 2 s later, and
    # no captured event announces it: a quiet stream alone took the snapshot too early.
    assert 0.75 <= _quiet_seconds(RunOptions(quiet_s=0.1, settle_s=0.8)) < 1.5
