"""The interpreter: the only place that talks to the SUT on the workload's behalf.

It turns a planned workload into requests (with bounded concurrency), records
every observation into the history as it happens — client invocations and
their completions (one per request of a saga's start sequence, the answer as
JSON or text), captured events, status observations (read, announced by an
event, or stated by an answer), final snapshots — waits for convergence, and
leaves judging to the checkers.

Slow is not stuck: at the convergence deadline, sagas that moved within the last
quiet window (a new state, an event for them) get more time, up to a cap; the
others are not waited for (``deadline-extended``, ``deadline-passed`` phases).
Evidence is complete before judging: after convergence the runner keeps
observing until the event stream has been quiet for a window scaled to the run
(:func:`~saga_harness.sink.quiet_window_s`), the SUT's own drain signal
(:class:`~saga_harness.sut.Drain`) says nothing is pending, and two snapshots a
settle apart agree — or a cap is reached; the ``evidence-settled`` phase says
which, and the checkers weigh absent evidence by it. The start sequence, pools, templates and the
reading of answers are the start plan's (:mod:`saga_harness.startplan`), the
same the locustfile uses; only the HTTP is here. It observes only
through the abilities the SUT declares: an :class:`~saga_harness.sut.EventTap`
feeds the event sink, :class:`~saga_harness.sut.Snapshots` give the final state.

The :class:`~saga_harness.lifecycle.Lifecycle` owns a runner per run; drivers
use it through :attr:`saga_harness.lifecycle.Run.runner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from saga_harness.adapters.http import send
from saga_harness.errors import SutError
from saga_harness.history import CapturedEvent, Completion, HistoryWriter, Invoke, Phase, Snapshot, StatusSeen
from saga_harness.pointer import resolve
from saga_harness.progress import SagaCounts
from saga_harness.sink import Arrivals, EventSink, quiet_window_s
from saga_harness.startplan import (
    MISSING,
    Answer,
    StartPlan,
    StartSequence,
    Step,
    TemplateError,
    as_text,
    extract,
    fill,
    member_values,
    saga_variables,
)
from saga_harness.sut import (
    Drain,
    EventTap,
    PerIdSnapshots,
    RetryInterval,
    SagaApi,
    SagaStatus,
    Snapshots,
    SystemUnderTest,
)
from saga_harness.workload import PlannedSaga


@dataclass(frozen=True)
class RunOptions:
    concurrency: int = 20
    deadline_s: float = 30.0
    poll_interval_s: float = 0.2
    request_timeout_s: float = 10.0
    quiet_s: float = 0.5  # the least quiet window: events must stop arriving this long before the snapshot
    retries_on_unknown: int = 3  # resends (same key) after a request whose outcome is unknown
    settle_s: float = 0.0  # after faults: the least time from healing (convergence) to the snapshot
    # Past the deadline, sagas still progressing get more time, up to this (None: 3 x the deadline).
    deadline_cap_s: float | None = None
    # The longest the evidence may take to settle after convergence (None: scaled to the run, within
    # EVIDENCE_CAP_MIN_S..EVIDENCE_CAP_MAX_S). A run always ends by itself.
    evidence_cap_s: float | None = None


# A delivery that failed during a fault is retried after its backoff (at most 2 s in the
# reference system's task queue and bus), and no event announces it: after faults, the
# snapshot waits this long from healing, or it may miss a side effect that is still due.
SETTLE_AFTER_FAULTS_S = 3.0
# The evidence cap, scaled to the run's length so far (a soak's backlog drains for longer than a
# quick run's), within these bounds.
EVIDENCE_CAP_MIN_S = 60.0
EVIDENCE_CAP_MAX_S = 600.0
_DEADLINE_CAP_FACTOR = 3.0
_SETTLE_TICK_S = 0.1
_PENDING_EVERY_S = 1.0  # how often the drain signal is read while events still arrive


class Runner:
    """Drives sagas and observes the SUT for one run; every observation goes to ``history``.

    ``on_phase(name)`` hears each phase as it starts (``setup``, ``workload``, ``converging``,
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
        # Starts: sagas whose start ran, started (a saga id known), failed (an answer outside
        # `expect`), unanswered (no answer, after the retries), found later (by [saga.lookup]).
        self.starts: dict[str, int] = {"sagas": 0, "started": 0, "failed": 0, "unanswered": 0, "found_later": 0}
        self.api: SagaApi | None = None
        self.plan: StartPlan | None = None
        self.urls: dict[str, str] = {}
        self.members: dict[str, dict[int, dict[str, Any]]] = {}  # pool -> member number -> its values
        self.saga_values: dict[str, dict[str, Any]] = {}  # saga id -> what its start captured (per-saga reads)
        self._broken_members: dict[tuple[str, int], str] = {}  # (pool, n) -> why its setup failed
        self._lost: dict[str, tuple[PlannedSaga, StartSequence]] = {}  # key -> a start with no saga id, no answer
        self._op = 0
        self.arrivals = Arrivals()
        self._progress: dict[str, float] = {}  # saga id -> when it last moved (a new state, an event for it)
        self._saga_pointers: tuple[str, ...] = ()  # where an event names its saga (the model's evidence)
        self._longest_fault_s = 0.0
        self._loop_lag_s = 0.0  # the worst lag of the harness's loop seen while settling
        # Seconds the machine was starved since a monotonic time (the run's machine monitor; none: never),
        # and the unstarved stillness that proves a saga stuck (the model's convergence quiet_s).
        self.starved_s: Callable[[float], float] = lambda since: 0.0
        self.stuck_quiet_s: float | None = None
        self._round_s = 0.0  # how long the last round of status polls took
        self._opened_at = time.monotonic()
        self._outcomes: dict[str, str] = {}
        self._seen_last: dict[tuple[str, str], str] = {}  # (saga id, source) -> the last state recorded
        self._converging_since: float | None = None
        self._sink: EventSink | None = None
        self._sink_owned = True
        self._sink_before: Callable[[dict[str, Any]], None] | None = None
        self._tapped = False
        self._baselined = False
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

    def start_counts(self) -> dict[str, int]:
        """How the starts went: sagas, started, failed, unanswered, found_later, lost (no saga id, not found)."""
        return {**self.starts, "lost": len(self._lost)}

    # -- events ------------------------------------------------------------------------
    def _on_event(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        self.arrivals.add(now)
        self.events += 1
        self.history.append(CapturedEvent(event), process="sink")
        for pointer in self._saga_pointers:
            saga_id = resolve(event, pointer, None)
            if isinstance(saga_id, str) and saga_id in self.saga_ids:
                self._progress[saga_id] = now  # an event for it: it is moving
                break
        spec = self.plan.status if self.plan is not None else None
        if spec is not None and spec.from_events is not None:
            found = spec.from_events.read(event, spec.terminal)
            if found is not None:
                saga_id, reading = found
                self._seen(saga_id, reading.state, reading.outcome, dict(reading.fields), "event", process="sink")

    async def open_sink(self) -> EventSink:
        """Start the event sink now (before the SUT starts, for a system given its URL at start)."""
        if self._sink is None:
            self._sink = EventSink(self._on_event)
            await self._sink.start()
        return self._sink

    @property
    def sink(self) -> EventSink | None:
        """The event sink, once open."""
        return self._sink

    async def open(self, observe: bool = True, sink: EventSink | None = None) -> None:
        """Open the HTTP session and read the saga API; with ``observe``, start the event sink (or
        take over ``sink``, one a parent run opened) and tap the SUT's events into it."""
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.options.request_timeout_s))
        self.api = self.sut.saga_api()
        self.plan = self.api.start_plan()
        self.urls = self.api.service_urls()
        self._opened_at = time.monotonic()
        self._saga_pointers = self._event_saga_pointers()
        if sink is not None and self._sink is None:
            self._sink, self._sink_owned = sink, False
            self._sink_before, sink.on_event = sink.on_event, self._on_event
        if observe and isinstance(self.sut, EventTap):
            sink = await self.open_sink()
            await self.sut.tap_events(self.http, sink.url)
            self._tapped = True

    def _event_saga_pointers(self) -> tuple[str, ...]:
        """Where the model's event evidence names the saga (an event for a saga shows it moving)."""
        try:
            steps = self.sut.model().steps
        except Exception:  # a model that does not load is the lifecycle's to report, not the runner's
            return ("/data/saga_id",)
        found = dict.fromkeys(m.saga_id for s in steps for m in (s.done, s.undone) if m is not None and m.event)
        spec = self.plan.status if self.plan is not None else None
        if spec is not None and spec.from_events is not None:
            pointer = getattr(spec.from_events, "saga_id", None)
            if isinstance(pointer, str):
                found.setdefault(pointer)
        return tuple(found) or ("/data/saga_id",)

    # -- pools -------------------------------------------------------------------------
    async def setup_pools(self, wanted: Iterable[tuple[str, int]]) -> int:
        """Set up each pool member in ``wanted`` (pool, number) not set up yet: its pool kind's
        ``once_per`` steps, once; the members set up now."""
        plan = self._plan()
        todo = sorted({w for w in wanted if w[1] not in self.members.get(w[0], {}) and w not in self._broken_members})
        if not todo:
            return 0
        self.on_phase("setup")
        gate = asyncio.Semaphore(self.options.concurrency)

        async def one(pool_name: str, n: int) -> None:
            pool = plan.pools[pool_name]
            values = member_values(pool, n)
            variables = {pool.kind: values, pool_name: values, "n": n, "seed": 0}
            seq = StartSequence(plan.setup_steps(pool.kind), variables, key=None, capture_into=pool.kind)
            async with gate:
                for step in seq.runs():
                    result, error = await self._send_step(None, seq, step, f="setup", member=f"{pool_name}#{n}")
                    if result != "ok":
                        self._broken_members[(pool_name, n)] = f"step {step.name!r}: {error}"
                        return
            self.members.setdefault(pool_name, {})[n] = dict(seq.variables[pool.kind])

        await asyncio.gather(*(one(p, n) for p, n in todo))
        return len(todo)

    async def setup_all(self, pools: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Set up every member of ``pools``; pool -> the members' values (the ones set up)."""
        plan = self._plan()
        names = list(pools)
        await self.setup_pools((p, n) for p in names for n in range(plan.pools[p].size))
        return {p: [self.members[p][n] for n in sorted(self.members.get(p, {}))] for p in names}

    # -- snapshots ---------------------------------------------------------------------
    async def baseline(self) -> None:
        """Record each service's state before the workload (what the system held already). A read
        that fails (a fault already active) is recorded as a phase, not raised: the run goes on."""
        self._baselined = True
        http = self._session()
        try:
            if isinstance(self.sut, Snapshots):
                for service, data in (await self.sut.snapshot(http)).items():
                    self.history.append(Snapshot(service, data, baseline=True))
            if isinstance(self.sut, PerIdSnapshots):
                reads = await self.sut.per_id_snapshot(http, {}, self._member_lists(), baseline=True)
                for name, data in reads.items():
                    self.history.append(Snapshot(name, data, baseline=True))
        except (aiohttp.ClientError, TimeoutError, OSError, SutError) as exc:
            self.history.append(Phase("baseline-incomplete", {"error": f"{type(exc).__name__}: {exc}"}))

    def _member_lists(self) -> dict[str, list[dict[str, Any]]]:
        return {p: [m[n] for n in sorted(m)] for p, m in self.members.items()}

    # -- the workload ------------------------------------------------------------------
    async def drive(
        self, workload: list[PlannedSaga], concurrency: int | None = None, rate: float | None = None
    ) -> list[str]:
        """Set up the pool members it draws, take a baseline snapshot (the first time, and after a
        setup), start every planned saga (and its resubmissions), ``concurrency`` at a time and, with
        ``rate``, no more than ``rate`` a second (the n-th not before n / rate s); the saga ids started."""
        before = set(self.saga_ids)
        self.planned += len(workload)
        new = await self.setup_pools(m for saga in workload for m in saga.members.values())
        if new or not self._baselined:
            await self.baseline()
        self.on_phase("workload")
        self.history.append(Phase("workload-start", {"rate": rate} if rate else {}))
        gate = asyncio.Semaphore(concurrency or self.options.concurrency)
        t0 = time.monotonic()

        async def paced(n: int, saga: PlannedSaga) -> None:
            if rate:
                await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
            await self._client(self._session(), gate, saga)

        await asyncio.gather(*(paced(n, p) for n, p in enumerate(workload)))
        self.history.append(Phase("workload-end", {"starts": self.start_counts()}))
        return [s for s in self.saga_ids if s not in before]

    def learn(self, saga_id: str, key: str) -> None:
        """A saga started by a client outside this runner (Locust): converge() waits for it too."""
        self.saga_ids.setdefault(saga_id, key)

    def learn_lost(self, key: str, trigger: str | None, request: Any) -> None:
        """A start by a client outside this runner whose answer never came and named no saga id:
        converge() looks it up ([saga.lookup]) with the key and the request's values."""
        body = request if isinstance(request, Mapping) else {}
        saga = PlannedSaga(0, key, trigger or "", body)
        variables = saga_variables(key=key, seed=0, i=0, seq100=1, rand100=1, request=body)
        self._lost.setdefault(key, (saga, StartSequence(self._plan().saga_steps, variables, key=key)))

    async def converge(
        self, deadline_s: float | None = None, settle_s: float | None = None, longest_fault_s: float | None = None
    ) -> bool:
        """Poll every started saga until all are terminal or the deadline passes (looking up lost
        starts meanwhile). Sagas still progressing at the deadline get more time, up to the cap
        (:attr:`RunOptions.deadline_cap_s`); the ones that stopped moving are not waited for. After
        faults, call it once they have healed, with ``settle_s`` (the snapshot then waits at least
        that long from now) and ``longest_fault_s`` (retries back off about as long)."""
        self.on_phase("converging")
        self._converging_since = time.monotonic()
        if settle_s is not None:
            self.options = replace(self.options, settle_s=settle_s)
        if longest_fault_s is not None:
            self._longest_fault_s = max(self._longest_fault_s, longest_fault_s)
        converged, extended_s = await self._converge(self._session(), deadline_s)
        pending = [s for s in self.saga_ids if s not in self._outcomes]
        deadline = deadline_s if deadline_s is not None else self.options.deadline_s
        detail: dict[str, Any] = {"pending": len(pending), "starts": self.start_counts(), "deadline_s": deadline}
        if not converged:
            window = self._progress_window_s()
            detail.update(progressing=len(self._progressing(pending, window)), window_s=round(window, 3))
        if extended_s:
            detail["extended_s"] = round(extended_s, 3)
        self.history.append(Phase("converged" if converged else "deadline-passed", detail))
        return converged

    async def finish(self) -> None:
        """Let the evidence settle (events drained, the system's backlog empty, two snapshots that
        agree), record the last snapshot of every service, untap the events (the observation ends).
        How it settled is the Phase ``evidence-settled``."""
        snapshots = isinstance(self.sut, (Snapshots, PerIdSnapshots))
        if self._tapped or snapshots or isinstance(self.sut, Drain):
            self.on_phase("settling")
            t0 = time.monotonic()
            cap_at = t0 + self._evidence_cap_s()
            detail = await self._drain(cap_at)
            final: dict[str, Any] = {}
            agreed, reads = True, 0  # nothing to read: nothing disagrees
            if snapshots:
                self.on_phase("snapshot")
                final, agreed, reads = await self._agreeing_snapshots(cap_at)
            detail.update(
                # Events in the last second when observing ended (the snapshot taken).
                events_last_s=float(self.arrivals.in_last(1.0)),
                waited_s=round(time.monotonic() - t0, 3),
                snapshots_agreed=agreed,
                snapshot_reads=reads,
            )
            detail["cap_reached"] = detail["cap_reached"] or time.monotonic() >= cap_at
            self.history.append(Phase("evidence-settled", detail))
            for name, data in final.items():
                self.history.append(Snapshot(name, data))
        if self._tapped and isinstance(self.sut, EventTap):
            self._tapped = False
            await self.sut.untap_events(self._session())

    async def close(self) -> None:
        """Stop the sink (hand back a borrowed one) and close the HTTP session (idempotent)."""
        try:
            if self._sink is not None:
                if self._sink_owned:
                    await self._sink.stop()
                elif self._sink_before is not None:
                    self._sink.on_event = self._sink_before
                self._sink = None
        finally:
            if self.http is not None:
                await self.http.close()
                self.http = None

    def _session(self) -> aiohttp.ClientSession:
        if self.http is None:
            raise RuntimeError("the runner is not open (Runner.open) or already closed")
        return self.http

    def _plan(self) -> StartPlan:
        if self.plan is None:
            raise RuntimeError("the runner is not open (Runner.open)")
        return self.plan

    # -- one saga ----------------------------------------------------------------------
    async def _client(self, http: aiohttp.ClientSession, gate: asyncio.Semaphore, saga: PlannedSaga) -> None:
        async with gate:
            seq = self._sequence(saga)
            reached = await self._start(saga, seq) if seq is not None else set()
            resend = self._plan().resend_step
            if seq is None or resend.name not in reached:
                return  # nothing to resend: the sequence never got to the step a resend replays
            for resubmit in saga.resubmits:
                if resubmit.kind == "immediate":
                    await self._send_step(saga, seq, resend)
                elif resubmit.kind == "concurrent":
                    await asyncio.gather(self._send_step(saga, seq, resend), self._send_step(saga, seq, resend))
        for resubmit in saga.resubmits:
            if resubmit.kind == "delayed":
                await asyncio.sleep(resubmit.delay_s)
                await self._send_step(saga, seq, resend)

    def _sequence(self, saga: PlannedSaga) -> StartSequence | None:
        """The saga's walk through the start steps, with the members it drew (None: a member is broken)."""
        plan = self._plan()
        members: dict[str, tuple[str, dict[str, Any]]] = {}
        for alias, (pool_name, n) in saga.members.items():
            values = self.members.get(pool_name, {}).get(n)
            if values is None:
                why = self._broken_members.get((pool_name, n), "not set up")
                self._refuse(saga, f"pool member {pool_name}#{n} ({alias}) could not be set up: {why}")
                return None
            members[alias] = (plan.pools[pool_name].kind, values)
        member_vars = {alias: values for alias, (_kind, values) in members.items()}
        body = fill(dict(saga.body), {**{k: v for _a, (k, v) in members.items()}, **member_vars}, partial=True)
        v = saga.variables
        variables = saga_variables(
            key=saga.key,
            seed=int(v.get("seed", 0)),
            i=int(v.get("i", saga.index)),
            seq100=int(v.get("seq100", 1 + saga.index % 100)),
            rand100=int(v.get("rand100", 1)),
            request=body,
            members=members,
        )
        return StartSequence(plan.saga_steps, variables, key=saga.key)

    def _refuse(self, saga: PlannedSaga, error: str) -> None:
        # A start that cannot even be sent (its pool member failed setup) is a failed start, recorded.
        self.starts["sagas"] += 1
        self.starts["failed"] += 1
        self.failed_requests += 1
        self._op += 1
        step = self._plan().saga_steps[0].name
        self.history.append(
            Invoke("start_saga", self._op, saga.key, saga.trigger, dict(saga.body), step), process="client"
        )
        failed = Completion("fail", "start_saga", self._op, saga.key, saga.trigger, error=error, step=step)
        self.history.append(failed, process="client")

    async def _start(self, saga: PlannedSaga, seq: StartSequence) -> set[str]:
        """Run the start sequence; the steps it got to (sent, whatever their answer)."""
        self.starts["sagas"] += 1
        reached: set[str] = set()
        result = "ok"
        for step in seq.runs():
            reached.add(step.name)
            result, _error = await self._send_step(saga, seq, step)
            if result != "ok":
                break
        if result == "fail":
            self.starts["failed"] += 1
        elif result == "unknown":
            self.starts["unanswered"] += 1
            if seq.saga_id is None:
                self._lost[saga.key] = (saga, seq)  # found later by [saga.lookup], if the system has one
        if result != "ok":
            self.failed_requests += 1
        return reached

    async def _send_step(
        self, saga: PlannedSaga | None, seq: StartSequence, step: Step, *, f: str = "start_saga", member: str = ""
    ) -> tuple[str, str | None]:
        """One step's request, resent with the same key when no answer came (if the step may be);
        recorded as an invoke and its completion. ("ok" | "fail" | "unknown", the error)."""
        key = saga.key if saga else None
        trigger = saga.trigger if saga else None
        # A setup step's request values say whose setup it is: the pool and the member's number.
        pool, _, n = member.partition("#")
        request_values = seq.variables.get("request") if saga else {"pool": pool, "member": int(n or 0)}
        try:
            req = seq.request(step)
        except TemplateError as exc:
            self._op += 1
            self.history.append(Invoke(f, self._op, key, trigger, request_values, step.name), process="client")
            failed = Completion("fail", f, self._op, key, trigger, error=str(exc), step=step.name)
            self.history.append(failed, process="client")
            return "fail", str(exc)
        status = self._plan().status
        watch: asyncio.Task[None] | None = None
        stop = asyncio.Event()
        if saga is not None and seq.saga_id and status is not None and status.during_start:
            # A blocking orchestrator runs the saga inside this request: read its state meanwhile.
            watch = asyncio.get_running_loop().create_task(self._watch(seq.saga_id, stop))
        try:
            tries = 1 + (self.options.retries_on_unknown if step.retry_unknown else 0)
            error = None
            for attempt in range(tries):
                if attempt:
                    await asyncio.sleep(0.5 * 2 ** (attempt - 1))
                self._op += 1
                op = self._op
                call = req.describe()
                self.history.append(Invoke(f, op, key, trigger, request_values, step.name, call), process="client")
                try:
                    answer = await send(self._session(), self.urls, req)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    # The request may or may not have taken effect: outcome unknown.
                    error = f"{type(exc).__name__}: {exc}"
                    info = Completion("info", f, op, key, trigger, error=error, saga_id=seq.saga_id, step=step.name)
                    self.history.append(info, process="client")
                    continue
                return self._answered(saga, seq, step, f, op, answer)
            return "unknown", error
        finally:
            if watch is not None:
                stop.set()
                await asyncio.gather(watch, return_exceptions=True)

    def _answered(
        self, saga: PlannedSaga | None, seq: StartSequence, step: Step, f: str, op: int, answer: Answer
    ) -> tuple[str, str | None]:
        key = saga.key if saga else None
        trigger = saga.trigger if saga else None
        res = seq.took(step, answer)
        saga_id = res.saga_id
        outcome = "ok" if res.ok else "fail"
        done = Completion(
            outcome,
            f,
            op,
            key,
            trigger,
            answer.status,
            answer.value(),
            saga_id,
            res.error,
            step.name,
            answer.content_type,
        )
        self.history.append(done, process="client")
        if saga is not None and saga_id:
            if saga_id not in self.saga_ids:
                self.starts["started"] += 1
            self.saga_ids.setdefault(saga_id, saga.key)
            self.saga_values[saga_id] = seq.variables
            said = self._plan().outcome(step.name, answer)
            if said is not None:
                self._seen(saga_id, None, said[0], {"step": step.name, **said[1]}, "answer")
        return ("ok", None) if res.ok else ("fail", res.error)

    # -- status ------------------------------------------------------------------------
    def _seen(
        self,
        saga_id: str,
        state: Any,
        outcome: str | None,
        fields: dict[str, Any],
        source: str,
        process: str = "client",
    ) -> None:
        """Record a status observation when it says something new (any answer's always)."""
        mark = json.dumps([state, outcome, fields], sort_keys=True, default=str)
        if source != "answer" and self._seen_last.get((saga_id, source)) == mark:
            return
        self._seen_last[(saga_id, source)] = mark
        self._progress[saga_id] = time.monotonic()  # a new state: it is moving
        self.history.append(StatusSeen(saga_id, state, outcome, fields, source), process=process)
        if outcome is not None and saga_id not in self._outcomes:
            self._outcomes[saga_id] = outcome
            self.finished += 1
            self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1

    async def _read(self, saga_id: str) -> None:
        try:
            status: SagaStatus = await self.sut.saga_status(self._session(), saga_id)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return  # down for a moment (chaos), or an answer it could not read: read again later
        self._seen(saga_id, status.state, status.outcome, dict(status.fields), "status")

    async def _watch(self, saga_id: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._read(saga_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.poll_interval_s)

    async def _find_lost(self) -> None:
        """Look up the starts whose answer was lost before a saga id was known ([saga.lookup])."""
        lookup = self._plan().lookup
        if lookup is None or not self._lost:
            return
        for key, (saga, seq) in list(self._lost.items()):
            step = Step("lookup", lookup.service, lookup.path, lookup.method, dict(lookup.headers), expect=lookup.found)
            try:
                req = seq.request(step)
            except TemplateError:
                continue
            self._op += 1
            op = self._op
            self.history.append(
                Invoke("lookup_saga", op, key, saga.trigger, seq.variables.get("request"), "lookup", req.describe()),
                process="client",
            )
            try:
                answer = await send(self._session(), self.urls, req)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                info = Completion(
                    "info", "lookup_saga", op, key, saga.trigger, error=f"{type(exc).__name__}: {exc}", step="lookup"
                )
                self.history.append(info, process="client")
                continue
            found = extract(lookup.saga_id, answer) if answer.status in lookup.found else MISSING
            saga_id = None if found in (MISSING, None, "") else as_text(found)
            outcome = "ok" if saga_id else "fail"
            done = Completion(
                outcome,
                "lookup_saga",
                op,
                key,
                saga.trigger,
                answer.status,
                answer.value(),
                saga_id,
                None if saga_id else "not found",
                "lookup",
                answer.content_type,
            )
            self.history.append(done, process="client")
            if saga_id:
                del self._lost[key]
                self.starts["found_later"] += 1
                self.saga_ids.setdefault(saga_id, key)
                self.saga_values[saga_id] = seq.variables

    async def _converge(self, http: aiohttp.ClientSession, deadline_s: float | None = None) -> tuple[bool, float]:
        """(all terminal, the time added past the deadline for sagas still progressing)."""
        deadline_s = deadline_s if deadline_s is not None else self.options.deadline_s
        begun = time.monotonic()
        deadline = begun + deadline_s
        cap_s = self.options.deadline_cap_s
        cap = begun + (cap_s if cap_s is not None else _DEADLINE_CAP_FACTOR * deadline_s)
        gate = asyncio.Semaphore(self.options.concurrency)
        self._round_s = 0.0

        async def poll(saga_id: str) -> None:
            async with gate:
                await self._read(saga_id)

        while True:
            await self._find_lost()
            pending = [s for s in self.saga_ids if s not in self._outcomes]
            if not pending and not (self._lost and self._plan().lookup is not None):
                return True, max(0.0, time.monotonic() - (begun + deadline_s))
            now = time.monotonic()
            if now > deadline:
                # Slow is not stuck: sagas that moved within the window get more time (to the cap);
                # if none did, the rest have stopped and waiting longer would only delay the verdict.
                window = self._progress_window_s()
                progressing = self._progressing(pending, window)
                hungry = self._starved_quiet(pending, now) if not progressing and now < cap else None
                if hungry is not None:
                    # Stopped moving, but the machine was starved for most of the quiet time since: a
                    # stuck saga cannot be told from a starved one yet. Watch on (to the cap) until it
                    # has stood still for a quiet window of unstarved time — it stays stuck, or moves.
                    extra = min(cap - now, max(1.0, 0.25 * window))
                    deadline = now + extra
                    detail = {"pending": len(pending), "progressing": 0, "extra_s": round(extra, 3)}
                    self.history.append(Phase("deadline-extended", {**detail, "starved_s": round(hungry, 3)}))
                elif not progressing or now >= cap:
                    return False, max(0.0, min(now, cap) - (begun + deadline_s))
                else:
                    extra = min(cap - now, max(window, 0.1 * deadline_s))
                    deadline = now + extra
                    detail = {"pending": len(pending), "progressing": len(progressing), "extra_s": round(extra, 3)}
                    more = {"window_s": round(window, 3), "deadline_s": deadline_s}
                    self.history.append(Phase("deadline-extended", {**detail, **more}))
            started = time.monotonic()
            await asyncio.gather(*(poll(s) for s in pending))
            self._round_s = time.monotonic() - started
            await asyncio.sleep(self.options.poll_interval_s)

    def _starved_quiet(self, pending: list[str], now: float) -> float | None:
        """The starved seconds since the latest move of a ``pending`` saga, when they leave less than a
        quiet window (the model's, else :attr:`RunOptions.quiet_s`) of unstarved time; None when enough was clear."""
        moved = max((self._progress.get(s, float("-inf")) for s in pending), default=float("-inf"))
        since = moved if moved > float("-inf") else (self._converging_since or now)
        hungry = self.starved_s(since)
        quiet = self.stuck_quiet_s if self.stuck_quiet_s is not None else self.options.quiet_s
        return hungry if hungry > 0 and (now - since) - hungry < quiet else None

    def _progressing(self, pending: list[str], window_s: float) -> list[str]:
        """The sagas among ``pending`` that moved (a new state, an event for them) in the last ``window_s``."""
        since = time.monotonic() - window_s
        return [s for s in pending if self._progress.get(s, float("-inf")) >= since]

    def _progress_window_s(self) -> float:
        """How recently a saga must have moved to count as progressing: the quiet window, and at least
        three rounds of polling (a change is only seen when its saga's turn comes)."""
        return max(self._quiet_window_s(), 3 * (self._round_s + self.options.poll_interval_s))

    # -- evidence ----------------------------------------------------------------------
    def _quiet_window_s(self) -> float:
        retry = self.sut.retry_interval_s() if isinstance(self.sut, RetryInterval) else None
        return quiet_window_s(
            floor_s=self.options.quiet_s,
            typical_gap_s=self.arrivals.typical_gap_s(),
            drain_signal=isinstance(self.sut, Drain),
            retry_interval_s=retry,
            longest_fault_s=self._longest_fault_s,
            loop_lag_s=self._loop_lag_s,
        )

    def _evidence_cap_s(self) -> float:
        """The longest the evidence may take to settle: the option, else the run's length so far
        within :data:`EVIDENCE_CAP_MIN_S` .. :data:`EVIDENCE_CAP_MAX_S`."""
        if self.options.evidence_cap_s is not None:
            return self.options.evidence_cap_s
        return min(EVIDENCE_CAP_MAX_S, max(EVIDENCE_CAP_MIN_S, time.monotonic() - self._opened_at))

    async def _pending(self) -> dict[str, int] | None:
        """The system's own count of what it still has to deliver (None: it could not say)."""
        if not isinstance(self.sut, Drain):
            return {}
        try:
            return {str(k): int(v) for k, v in (await self.sut.pending(self._session())).items()}
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError, TypeError, SutError):
            return None  # down or paused for a moment: not drained

    async def _drain(self, cap_at: float) -> dict[str, Any]:
        """Wait until the observation channels are drained: the event stream quiet for the quiet
        window, the system's pending count (where it gives one) zero, and ``settle_s`` passed since
        healing — or the cap. The start of the ``evidence-settled`` detail."""
        settled_at = (self._converging_since or time.monotonic()) + self.options.settle_s
        pending: dict[str, int] | None = None
        drained = False
        read_at = float("-inf")
        while True:
            tick = time.monotonic()
            await asyncio.sleep(_SETTLE_TICK_S)
            # The sleeper's own lateness is the harness's loop lag: an event not read yet is not silence.
            self._loop_lag_s = max(self._loop_lag_s, time.monotonic() - tick - _SETTLE_TICK_S)
            now = time.monotonic()
            window = self._quiet_window_s()
            quiet = not self._tapped or now - self.arrivals.last >= window
            # Read the system's backlog once quiet, and about once a second meanwhile: the detail
            # then says what was still pending if the cap ends the wait.
            if (quiet and now >= settled_at) or now - read_at >= _PENDING_EVERY_S:
                read_at = now
                pending = await self._pending()
                drained = quiet and now >= settled_at and pending is not None and not any(pending.values())
                # Quiet again after the read (a read may take a while): nothing arrived meanwhile.
                drained = drained and (not self._tapped or time.monotonic() - self.arrivals.last >= window)
            if drained or time.monotonic() >= cap_at:
                break
        return {
            "drained": drained,
            "cap_reached": not drained,
            "pending": pending if pending is not None else {},
            "drain_signal": isinstance(self.sut, Drain),
            "quiet_window_s": round(self._quiet_window_s(), 3),
            "loop_lag_max_ms": round(self._loop_lag_s * 1000, 1),
        }

    async def _snapshot_once(self) -> dict[str, Any]:
        """Every service's state and every per-id read, as they are now (name -> data)."""
        out: dict[str, Any] = {}
        http = self._session()
        if isinstance(self.sut, Snapshots):
            out.update(await self.sut.snapshot(http))
        if isinstance(self.sut, PerIdSnapshots):
            sagas = {sid: self.saga_values.get(sid, {}) for sid in self.saga_ids}
            out.update(await self.sut.per_id_snapshot(http, sagas, self._member_lists()))
        return out

    async def _agreeing_snapshots(self, cap_at: float) -> tuple[dict[str, Any], bool, int]:
        """Snapshot until two reads a settle apart agree (nothing changed between them), or the cap
        (then two reads at least, whatever the time). (The last read, whether two agreed, reads.)"""
        gap_s = max(self.options.quiet_s, _SETTLE_TICK_S)
        last: dict[str, Any] | None = None
        reads = 0
        while True:
            try:
                now_read = await self._snapshot_once()
            except (aiohttp.ClientError, TimeoutError, OSError, SutError):
                if time.monotonic() >= cap_at and reads >= 2:
                    raise  # the system cannot be read at all: the run's failure, as before
                now_read = None
            reads += 1
            if now_read is not None and last is not None and _same(now_read, last):
                return now_read, True, reads
            if now_read is not None:
                last = now_read
            if time.monotonic() >= cap_at and reads >= 2 and last is not None:
                return last, False, reads
            await asyncio.sleep(gap_s)

    @property
    def outcomes(self) -> Mapping[str, str]:
        return dict(self._outcomes)


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two snapshot reads say the same (compared as JSON: a tuple and a list alike)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
