"""The interpreter: the only place that talks to the SUT on the workload's behalf.

It turns a planned workload into requests (with bounded concurrency), records
every observation into the history as it happens — client invocations and
their completions, captured events, status observations, final snapshots —
waits for convergence, and leaves judging to the checkers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from saga_harness.sink import EventSink
from saga_harness.sut import SystemUnderTest
from saga_harness.workload import PlannedSaga

# record(type, **fields) appends one observation to the history.
Recorder = Callable[..., None]
_UNKNOWN = object()  # a request whose outcome is unknown (no answer)


@dataclass
class Progress:
    """Counters a live display can read while a run goes on."""

    planned: int = 0
    started: int = 0
    finished: int = 0
    failed_requests: int = 0
    events: int = 0
    phase: str = "starting"
    by_outcome: dict[str, int] = field(default_factory=dict)

    @property
    def in_flight(self) -> int:
        return self.started - self.finished


@dataclass(frozen=True)
class RunOptions:
    concurrency: int = 20
    deadline_s: float = 30.0
    poll_interval_s: float = 0.2
    request_timeout_s: float = 10.0
    quiet_s: float = 0.5  # events must stop arriving this long before the snapshot
    retries_on_unknown: int = 3  # resends (same key) after a request whose outcome is unknown
    settle_s: float = 0.0  # after faults: the least time from healing (convergence) to the snapshot


# A delivery that failed during a fault is retried after its backoff (at most 2 s in the
# reference system's task queue and bus), and no event announces it: after faults, the
# snapshot waits this long from healing, or it may miss a side effect that is still due.
SETTLE_AFTER_FAULTS_S = 3.0


class Runner:
    def __init__(self, sut: SystemUnderTest, record: Recorder, options: RunOptions | None = None) -> None:
        self.sut = sut
        self.record = record
        self.options = options or RunOptions()
        self.progress = Progress()
        self.saga_ids: dict[str, str] = {}  # saga_id -> idempotency key
        self._op = 0
        self._last_event = time.monotonic()
        self._outcomes: dict[str, str] = {}
        self._converging_since: float | None = None
        self._sink: EventSink
        self._http: aiohttp.ClientSession

    def _on_event(self, event: dict[str, Any]) -> None:
        self._last_event = time.monotonic()
        self.progress.events += 1
        self.record("event", process="sink", event=event)

    async def open(self) -> None:
        """Start the event sink and tap the SUT's events into it."""
        self._sink = EventSink(self._on_event)
        await self._sink.start()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.options.request_timeout_s))
        await self.sut.tap_events(self._http, self._sink.url)

    async def drive(self, workload: list[PlannedSaga]) -> None:
        """Start every planned saga (and its resubmissions), ``concurrency`` at a time."""
        self.progress.planned += len(workload)
        self.progress.phase = "workload"
        self.record("phase", name="workload-start")
        gate = asyncio.Semaphore(self.options.concurrency)
        await asyncio.gather(*(self._client(self._http, gate, p) for p in workload))
        self.record("phase", name="workload-end")

    async def converge(self, deadline_s: float | None = None) -> bool:
        """Poll every started saga until all are terminal or the deadline passes."""
        self.progress.phase = "converging"
        self._converging_since = time.monotonic()  # the faults, if any, have healed by now
        converged = await self._converge(self._http, deadline_s)
        self.record(
            "phase",
            name="converged" if converged else "deadline-passed",
            pending=len(self.saga_ids) - len(self._outcomes),
        )
        return converged

    async def close(self) -> None:
        """Let side effects land, snapshot every service, untap, stop the sink."""
        try:
            await self._quiet()
            self.progress.phase = "snapshot"
            for service, data in (await self.sut.snapshot(self._http)).items():
                self.record("snapshot", service=service, data=data)
            await self.sut.untap_events(self._http)
            self.progress.phase = "done"
        finally:
            await self._http.close()
            await self._sink.stop()

    async def run(self, workload: list[PlannedSaga]) -> None:
        """Drive ``workload``, wait for convergence, snapshot. Observations go to the history."""
        await self.open()
        try:
            await self.drive(workload)
            await self.converge()
        finally:
            await self.close()

    async def _client(self, http: aiohttp.ClientSession, gate: asyncio.Semaphore, saga: PlannedSaga) -> None:
        async with gate:
            first = await self._start(http, saga)
            for attempt in range(self.options.retries_on_unknown):
                if first is not _UNKNOWN:
                    break
                # No answer (a reset, a timeout): a careful client resends with the same key.
                await asyncio.sleep(0.5 * 2**attempt)
                first = await self._start(http, saga)
            for resubmit in saga.resubmits:
                if resubmit.kind == "immediate":
                    await self._start(http, saga)
                elif resubmit.kind == "concurrent":
                    await asyncio.gather(self._start(http, saga), self._start(http, saga))
        for resubmit in saga.resubmits:
            if resubmit.kind == "delayed":
                await asyncio.sleep(resubmit.delay_s)
                await self._start(http, saga)
        if first is None or first is _UNKNOWN:
            self.progress.failed_requests += 1

    async def _start(self, http: aiohttp.ClientSession, saga: PlannedSaga) -> Any:
        self._op += 1
        op = self._op
        base = {"process": "client", "f": "start_saga", "op": op, "key": saga.key, "trigger": saga.trigger}
        self.record("invoke", **base, request=dict(saga.body))
        try:
            result = await self.sut.start_saga(http, saga.key, saga.body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # The request may or may not have taken effect: outcome unknown.
            self.record("info", **base, status=None, value=None, error=f"{type(exc).__name__}: {exc}")
            return _UNKNOWN
        if 200 <= result.status < 300 and result.saga_id:
            self.record("ok", **base, status=result.status, value=result.body, saga_id=result.saga_id)
            if result.saga_id not in self.saga_ids:
                self.saga_ids[result.saga_id] = saga.key
                self.progress.started += 1
            return result.saga_id
        self.record("fail", **base, status=result.status, value=result.body, error=f"HTTP {result.status}")
        return None

    async def _converge(self, http: aiohttp.ClientSession, deadline_s: float | None = None) -> bool:
        deadline = time.monotonic() + (deadline_s if deadline_s is not None else self.options.deadline_s)
        last_state: dict[str, Any] = {}
        gate = asyncio.Semaphore(self.options.concurrency)

        async def poll(saga_id: str) -> None:
            async with gate:
                try:
                    status = await self.sut.saga_status(http, saga_id)
                except (aiohttp.ClientError, TimeoutError, OSError):
                    return
            if (status.state, status.outcome) != last_state.get(saga_id):
                last_state[saga_id] = (status.state, status.outcome)
                self.record("status", process="client", saga_id=saga_id, state=status.state, outcome=status.outcome)
            if status.outcome is not None and saga_id not in self._outcomes:
                self._outcomes[saga_id] = status.outcome
                self.progress.finished += 1
                self.progress.by_outcome[status.outcome] = self.progress.by_outcome.get(status.outcome, 0) + 1

        while True:
            pending = [s for s in self.saga_ids if s not in self._outcomes]
            if not pending:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.gather(*(poll(s) for s in pending))
            await asyncio.sleep(self.options.poll_interval_s)

    async def _quiet(self) -> None:
        # Side effects (emails, loyalty, analytics) land after the saga's outcome:
        # wait until the event stream goes quiet, within reason, and at least
        # ``settle_s`` from healing (retries due after a fault announce nothing).
        now = time.monotonic()
        settled = (self._converging_since or now) + self.options.settle_s
        limit = max(now + max(5.0, self.options.quiet_s * 10), settled)
        while time.monotonic() < limit and (
            time.monotonic() - self._last_event < self.options.quiet_s or time.monotonic() < settled
        ):
            await asyncio.sleep(0.1)

    @property
    def outcomes(self) -> Mapping[str, str]:
        return dict(self._outcomes)
