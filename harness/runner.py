"""The interpreter: the only place that talks to the SUT on the workload's behalf.

It turns a planned workload into requests (with bounded concurrency), records
every observation into the history as it happens — client invocations and
their completions, captured events, status observations, final snapshots —
waits for convergence, and leaves judging to the checkers. It observes only
through the abilities the SUT declares: an :class:`~saga_harness.sut.EventTap`
feeds the event sink, :class:`~saga_harness.sut.Snapshots` give the final state.

The :class:`~saga_harness.lifecycle.Lifecycle` owns a runner per run; drivers
use it through :attr:`saga_harness.lifecycle.Run.runner`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from saga_harness.history import CapturedEvent, Completion, HistoryWriter, Invoke, Phase, Snapshot, StatusSeen
from saga_harness.progress import SagaCounts
from saga_harness.sink import EventSink
from saga_harness.sut import EventTap, Snapshots, SystemUnderTest
from saga_harness.workload import PlannedSaga

_UNKNOWN = object()  # a request whose outcome is unknown (no answer)


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
    """Drives sagas and observes the SUT for one run; every observation goes to ``history``.

    ``on_phase(name)`` hears each phase as it starts (``workload``, ``converging``,
    ``settling``, ``snapshot``): the lifecycle turns them into progress events.
    """

    def __init__(
        self,
        sut: SystemUnderTest,
        history: HistoryWriter,
        options: RunOptions | None = None,
        on_phase: Callable[[str], None] | None = None,
    ) -> None:
        self.sut = sut
        self.history = history
        self.options = options or RunOptions()
        self.on_phase = on_phase or (lambda _name: None)
        self.saga_ids: dict[str, str] = {}  # saga_id -> idempotency key
        # Counters for progress displays (read with counts()).
        self.planned = 0
        self.finished = 0
        self.failed_requests = 0
        self.events = 0
        self.by_outcome: dict[str, int] = {}
        self._op = 0
        self._last_event = time.monotonic()
        self._outcomes: dict[str, str] = {}
        self._converging_since: float | None = None
        self._sink: EventSink | None = None
        self._tapped = False
        self.http: aiohttp.ClientSession | None = None

    def counts(self, elapsed_s: float) -> SagaCounts:
        """The sagas so far, as a progress event."""
        return SagaCounts(
            elapsed_s,
            planned=self.planned,
            started=len(self.saga_ids),
            finished=self.finished,
            failed_requests=self.failed_requests,
            events=self.events,
            by_outcome=dict(self.by_outcome),
        )

    def _on_event(self, event: dict[str, Any]) -> None:
        self._last_event = time.monotonic()
        self.events += 1
        self.history.append(CapturedEvent(event), process="sink")

    async def open(self, observe: bool = True) -> None:
        """Open the HTTP session; with ``observe``, start the event sink and tap the SUT's events into it."""
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.options.request_timeout_s))
        if observe and isinstance(self.sut, EventTap):
            self._sink = EventSink(self._on_event)
            await self._sink.start()
            await self.sut.tap_events(self.http, self._sink.url)
            self._tapped = True

    async def baseline(self) -> None:
        """Record each service's state before the workload (a SUT shared by several runs)."""
        if isinstance(self.sut, Snapshots):
            for service, data in (await self.sut.snapshot(self._session())).items():
                self.history.append(Snapshot(service, data, baseline=True))

    async def drive(self, workload: list[PlannedSaga], concurrency: int | None = None) -> list[str]:
        """Start every planned saga (and its resubmissions), ``concurrency`` at a time; the saga ids started."""
        before = set(self.saga_ids)
        self.planned += len(workload)
        self.on_phase("workload")
        self.history.append(Phase("workload-start"))
        gate = asyncio.Semaphore(concurrency or self.options.concurrency)
        await asyncio.gather(*(self._client(self._session(), gate, p) for p in workload))
        self.history.append(Phase("workload-end"))
        return [s for s in self.saga_ids if s not in before]

    def learn(self, saga_id: str, key: str) -> None:
        """A saga started by a client outside this runner (Locust): converge() waits for it too."""
        self.saga_ids.setdefault(saga_id, key)

    async def converge(self, deadline_s: float | None = None, settle_s: float | None = None) -> bool:
        """Poll every started saga until all are terminal or the deadline passes. After faults, call it
        once they have healed, with ``settle_s``: the snapshot then waits at least that long from now."""
        self.on_phase("converging")
        self._converging_since = time.monotonic()
        if settle_s is not None:
            self.options = replace(self.options, settle_s=settle_s)
        converged = await self._converge(self._session(), deadline_s)
        pending = len(self.saga_ids) - len(self._outcomes)
        self.history.append(Phase("converged" if converged else "deadline-passed", {"pending": pending}))
        return converged

    async def finish(self) -> None:
        """Let side effects land, snapshot every service, untap the events (the observation ends)."""
        if self._tapped or isinstance(self.sut, Snapshots):
            self.on_phase("settling")
            await self._quiet()
        if isinstance(self.sut, Snapshots):
            self.on_phase("snapshot")
            for service, data in (await self.sut.snapshot(self._session())).items():
                self.history.append(Snapshot(service, data))
        if self._tapped and isinstance(self.sut, EventTap):
            self._tapped = False
            await self.sut.untap_events(self._session())

    async def close(self) -> None:
        """Stop the sink and close the HTTP session (idempotent; whatever happened before)."""
        try:
            if self._sink is not None:
                await self._sink.stop()
                self._sink = None
        finally:
            if self.http is not None:
                await self.http.close()
                self.http = None

    def _session(self) -> aiohttp.ClientSession:
        if self.http is None:
            raise RuntimeError("the runner is not open (Runner.open) or already closed")
        return self.http

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
            self.failed_requests += 1

    async def _start(self, http: aiohttp.ClientSession, saga: PlannedSaga) -> Any:
        self._op += 1
        op = self._op
        f, key, trigger = "start_saga", saga.key, saga.trigger
        self.history.append(Invoke(f, op, key, trigger, dict(saga.body)), process="client")
        try:
            result = await self.sut.start_saga(http, saga.key, saga.body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # The request may or may not have taken effect: outcome unknown.
            error = f"{type(exc).__name__}: {exc}"
            self.history.append(Completion("info", f, op, key, trigger, error=error), process="client")
            return _UNKNOWN
        if 200 <= result.status < 300 and result.saga_id:
            done = Completion("ok", f, op, key, trigger, result.status, result.body, result.saga_id)
            self.history.append(done, process="client")
            self.saga_ids.setdefault(result.saga_id, saga.key)
            return result.saga_id
        failed = Completion("fail", f, op, key, trigger, result.status, result.body, error=f"HTTP {result.status}")
        self.history.append(failed, process="client")
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
                self.history.append(StatusSeen(saga_id, status.state, status.outcome), process="client")
            if status.outcome is not None and saga_id not in self._outcomes:
                self._outcomes[saga_id] = status.outcome
                self.finished += 1
                self.by_outcome[status.outcome] = self.by_outcome.get(status.outcome, 0) + 1

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
