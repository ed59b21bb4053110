"""The one run lifecycle: every run of a system under test goes through here (Jepsen's ``core/run!``).

::

    life = Lifecycle(RunRequest("plain", seed=1, command="saga-harness run --seed 1"), listener)
    workload = life.plan(200, mix="ok=0.8,decline=0.2")          # pure: a mistake is exit 2, nothing started
    life.require(Needs(processes=frozenset({"payment"})), "scenario 'payment-killed'")
    with life as run:                                              # run dir, meta, SUT started, events tapped
        run.call(run.runner.drive(workload))
        run.call(run.runner.converge(deadline_s=30))
        verdicts = run.judge()                                     # settle, snapshot, judge, verdicts.json
    # here the SUT is shut down completely (processes reaped, schemas dropped), on every exit path

Before anything starts, :class:`Lifecycle` loads the SUT (the one loader,
:func:`~saga_harness.adapters.load_sut`), validates its model, plans the workload
(:meth:`Lifecycle.plan`) and refuses a run that needs an ability the SUT lacks
(:meth:`Lifecycle.require`). Entering it creates the run directory, writes the
history's :class:`~saga_harness.history.Meta`, starts the SUT and opens the
:class:`Run`: an asyncio loop on a thread of its own (:meth:`Run.call`), an HTTP
session, the event sink with the SUT's events tapped into it, and the
:class:`~saga_harness.runner.Runner` that drives sagas and waits for convergence.
Leaving it shuts everything down, whatever happened inside. Front ends (the CLI,
the pytest plugin, calibration) and drivers (chaos, load, contracts) keep only
what happens inside the block.

Progress goes to a :data:`~saga_harness.progress.Listener` as typed events, from
the run's loop thread: a listener must be thread-safe (the CLI's display is).
This module imports neither drivers nor report writers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import aiohttp
import psutil
from saga_harness.adapters import load_sut
from saga_harness.checkers import RunInfo, Verdicts, run_checks
from saga_harness.checkers.observation import starved
from saga_harness.counterexample import Counterexample, file_sha256
from saga_harness.history import HistoryWriter, MachineLoad, Meta, Phase, read_history, shard_path
from saga_harness.history.index import MachineSample
from saga_harness.history.reader import read_entries
from saga_harness.model import SagaModel
from saga_harness.progress import Listener, PhaseStarted, ProgressEvent, RunFinished, ignore
from saga_harness.rundir import EVENTS_FILE
from saga_harness.runner import Runner
from saga_harness.sink import EventSink
from saga_harness.startplan import StartTally
from saga_harness.supervisor import Supervisor, started_pids
from saga_harness.sut import EventsAtStart, Needs, OwnSwitches, SagaPools, SystemUnderTest, require
from saga_harness.workload import PlannedSaga, parse_mix, plan

__all__ = [
    "Lifecycle",
    "MachineMonitor",
    "Run",
    "RunRequest",
    "judge",
    "model_with_triggers",
    "new_run_dir",
    "plan_workload",
    "rejudge",
]

T = TypeVar("T")
log = logging.getLogger(__name__)
RUNS = Path("runs")
# How long a cancelled coroutine (Ctrl-C, a timeout) may take to run its clean-up (healing faults).
_CANCEL_WAIT_S = 30.0
_TICK_S = 0.25  # how often the run's saga counts go to the listener


@dataclass(frozen=True)
class RunRequest:
    """What a run is: which SUT, how it is labelled, how to reproduce it.

    ``label`` names the run directory (``runs/<time>-<label>``) unless ``out`` is given.
    ``sut`` names a SUT plugin (``reference``, ``fake``), ``config`` a ``saga-harness.toml``;
    neither: the description in the current directory, else the reference system.
    ``env`` is handed to the SUT (the reference system's processes, the fake's options) and
    recorded for replay. ``observe``: capture events and snapshot the services (a run to be
    judged); off for runs that only need the SUT up (``sut up``, contract verification).
    ``extra`` goes into the history's ``meta`` record (the workload's shape, the load's).
    """

    label: str
    out: Path | None = None
    sut: str | None = None
    config: Path | None = None
    bugs: str | None = None
    database_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    seed: int | None = None
    scenario: str | None = None
    command: str = ""
    observe: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)


def counterexample(
    driver: str,
    life: Lifecycle,
    *,
    workload: Mapping[str, Any],
    findings: list[str],
    scenario: Mapping[str, Any] | None = None,
    faults: list[dict[str, Any]] | None = None,
) -> Counterexample:
    """What a failing run of ``life`` needs to be run again (write it with ``.write(run_dir)``)."""
    r = life.request
    config = str(Path(r.config).resolve()) if r.config else None
    return Counterexample(
        driver=driver,
        sut=r.sut or (None if config else life.sut.name),
        config=config,
        config_sha256=file_sha256(config),
        seed=r.seed or 0,
        bugs=r.bugs,
        env=dict(r.env),
        database_url=r.database_url,
        workload=dict(workload),
        scenario=dict(scenario) if scenario is not None else None,
        faults=list(faults or []),
        findings=findings,
        command=r.command,
    )


def run_dir_for(out: Path | None, label: str, root: Path = RUNS) -> Path:
    """``out`` if given, else a fresh ``runs/<timestamp>-<label>`` (not created yet)."""
    if out is not None:
        return Path(out).resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{stamp}-{label}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{label}-{n}"
    return path.resolve()


def new_run_dir(out: Path | None, label: str, root: Path = RUNS) -> Path:
    """Like :func:`run_dir_for`, and created."""
    path = run_dir_for(out, label, root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_with_triggers(sut: SystemUnderTest) -> SagaModel:
    """The SUT's model, with what each of its triggers demands (the outcome oracle's input): the
    plain outcome, or the expectation dict (``outcome``, ``under_faults``, ``fails_at``, ``reason``,
    ``error_type``) — validated by the model's own classes."""
    model = sut.model()
    demanded = {n: t.demand() for n, t in sut.triggers().items() if n not in model.triggers}
    if not demanded:
        return model
    data = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    data["triggers"] = {**demanded, **data.get("triggers", {})}
    return SagaModel.model_validate(data)


def judge(
    history: Path, model: SagaModel, run: RunInfo, out: Path | None = None, checkers: Iterable[str] | None = None
) -> Verdicts:
    """Check a recorded history (a run directory or a history file); write ``verdicts.json`` into
    ``out`` (default: the run directory). Report files are the front ends' to write."""
    tally = StartTally()
    target = out or (history if history.is_dir() else history.parent)
    partial = target / f".{EVENTS_FILE}.partial"

    def counted(events: IO[str]) -> Iterator[dict[str, Any]]:
        # One pass: the checkers' index, the count of starts and events.jsonl read the same lines.
        for line in read_history(history):
            tally.add(line)
            if line.get("type") == "event":
                events.write(json.dumps(line.get("event"), separators=(",", ":")) + "\n")
            yield line

    with partial.open("w", encoding="utf-8") as events:
        verdicts = run_checks(counted(events), model, checkers).with_run(run)
    partial.replace(target / EVENTS_FILE)
    verdicts = replace(verdicts, stats=replace(verdicts.stats, starts=tally.counts()))
    verdicts.write(target)
    return verdicts


def rejudge(
    history: Path, out: Path | None = None, *, config: Path | None = None, sut: str | None = None
) -> tuple[Verdicts, Path]:
    """Judge a recorded history again, offline, by the model of the SUT it names in its ``meta``
    (or of ``config`` / ``sut``); nothing is started. The verdicts and where they were written."""
    run_dir = history if history.is_dir() else history.parent
    meta = Meta("")
    for entry in read_entries(history):
        if isinstance(entry.record, Meta):
            meta = entry.record
        break
    if config is None and sut is None:
        config = Path(meta.config) if meta.config else None
        sut = None if config else (meta.sut or None)
    system = load_sut(run_dir / "sut", sut=sut, config=config, extra_env=meta.env if not config else None)
    out_dir = (out or run_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    info = RunInfo(
        run_id=meta.run_id or run_dir.name,
        sut=meta.sut,
        seed=meta.seed,
        scenario=meta.scenario,
        bugs=meta.bugs,
        env=dict(meta.env),
        command=meta.command,
        config=meta.config,
        faults=tuple(meta.extra.get("schedule") or ()),
    )
    return judge(history, model_with_triggers(system), info, out_dir), out_dir


def plan_workload(
    sut: SystemUnderTest, sagas: int, *, mix: str | Mapping[str, float] = "", duplicates: float = 0.0, seed: int = 0
) -> list[PlannedSaga]:
    """``sagas`` sagas of ``sut``'s triggers (``mix``: their weights, default the SUT's own); pure."""
    triggers = sut.triggers()
    weights = parse_mix(mix or sut.default_mix() or None, triggers)
    pools = sut.pools() if isinstance(sut, SagaPools) else {}
    return plan(sagas, triggers=triggers, mix=weights, duplicates=duplicates, seed=seed, pools=pools)


class MachineMonitor:
    """How starved the harness and the machine are during a run, recorded as a
    :class:`~saga_harness.history.MachineLoad` about once a second (the judge tells a slow system
    from a starved harness by it).

    A sleeper task on the run's loop wakes every ``tick_s`` and notes how late it woke (the loop
    lag every event and poll of the run suffers too); once per ``interval_s`` it reads the
    machine's CPU in use, the CPU of the processes the harness started (``pids``, and their
    children), its own process's CPU and the load average. It counts the CPU time its own code
    takes (``cpu_s``) and says so in a ``machine-monitor`` phase when it stops: kept well under 1 %.
    """

    def __init__(
        self,
        history: HistoryWriter,
        pids: Callable[[], list[int]] = started_pids,  # default: every process the harness started
        interval_s: float = 1.0,
        tick_s: float = 0.025,
    ) -> None:
        self.history = history
        self.pids = pids
        self.interval_s = interval_s
        self.tick_s = tick_s
        self.samples = 0
        self.cpu_s = 0.0  # CPU time the monitor's own code took (its thread's clock)
        self._began = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._procs: dict[int, psutil.Process] = {}  # leaders and their children, refreshed now and then
        self._cpu: dict[int, float] = {}  # pid -> its CPU seconds at the last sample
        self._family_at = 0.0
        self._me = psutil.Process()
        self._my_cpu = 0.0
        self._recent: collections.deque[tuple[float, float, bool]] = collections.deque(maxlen=600)
        self._waits: dict[int, float] = {}  # pid -> its run-queue wait (s) at the last sample

    def starved_s(self, since: float) -> float:
        """Seconds since ``since`` (monotonic) the samples found the machine starved (the runner waits
        on while a stuck saga's quiet time was mostly starved: it could not prove it stuck yet)."""
        total = 0.0
        for end, interval, hungry in reversed(self._recent):
            if end <= since:
                break
            if hungry:
                total += min(interval, end - since)
        return total

    def start(self) -> None:
        """Start sampling on the running loop."""
        if self._task is None:
            self._began = time.monotonic()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling (idempotent) and record what the monitor itself cost."""
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        wall = time.monotonic() - self._began
        detail = {
            "samples": self.samples,
            "cpu_s": round(self.cpu_s, 4),
            "wall_s": round(wall, 3),
            "overhead_pct": round(100 * self.cpu_s / wall, 4) if wall > 0 else 0.0,
        }
        self.history.append(Phase("machine-monitor", detail))

    async def _run(self) -> None:
        spent = time.thread_time()
        psutil.cpu_percent(None)  # the first call only sets the reference point
        self._my_cpu = _cpu_seconds(self._me)
        self._family(time.monotonic())
        lags: list[float] = []
        last = time.monotonic()
        self.cpu_s += time.thread_time() - spent
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.tick_s)
            spent = time.thread_time()
            now = time.monotonic()
            lags.append(max(0.0, now - before - self.tick_s))
            if now - last >= self.interval_s:
                self._sample(now - last, lags)
                lags, last = [], now
            self.cpu_s += time.thread_time() - spent

    def _family(self, now: float) -> None:
        """The processes to count: the leaders and their descendants, found in one walk of the
        process table (every ``_FAMILY_EVERY_S``, or when a leader is new: the walk costs ~3 ms,
        reading a process's CPU clock ~20 µs)."""
        self._family_at = now
        leaders = set(self.pids())
        children: dict[int, list[int]] = {}
        if leaders:
            for proc in psutil.process_iter(["ppid"]):
                children.setdefault(proc.info["ppid"] or 0, []).append(proc.pid)
        procs: dict[int, psutil.Process] = {}
        todo = list(leaders)
        while todo:
            pid = todo.pop()
            if pid in procs:
                continue
            try:
                procs[pid] = self._procs.get(pid) or psutil.Process(pid)
            except psutil.Error:
                continue
            todo += children.get(pid, [])
        self._procs = procs

    def _sample(self, interval_s: float, lags: list[float]) -> None:
        now = time.monotonic()
        if now - self._family_at >= _FAMILY_EVERY_S or set(self.pids()) - set(self._procs):
            self._family(now)
        used = waited = 0.0
        cpu: dict[int, float] = {}
        waits: dict[int, float] = {}
        for pid, proc in self._procs.items():
            seconds = _cpu_seconds(proc)
            if seconds is None:
                continue
            cpu[pid] = seconds
            used += max(0.0, seconds - self._cpu.get(pid, seconds))  # a new process counts from now
            wait = _run_queue_wait_s(pid)
            if wait is not None:
                waits[pid] = wait
                waited += max(0.0, wait - self._waits.get(pid, wait))
        self._cpu = cpu
        measured_wait = bool(waits) or (not self._procs and _SCHEDSTAT)
        self._waits = waits
        mine = _cpu_seconds(self._me)
        harness = None if mine is None or self._my_cpu is None else 100 * (mine - self._my_cpu) / interval_s
        self._my_cpu = mine
        ordered = sorted(lags)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0
        record = MachineLoad(
            interval_s=round(interval_s, 3),
            loop_lag_p99_ms=round(p99 * 1000, 2),
            loop_lag_max_ms=round((ordered[-1] if ordered else 0.0) * 1000, 2),
            cpu_busy_pct=round(psutil.cpu_percent(None), 1),
            sut_cpu_pct=round(100 * used / interval_s, 1) if self._procs else None,
            load1=round(os.getloadavg()[0], 2),
            harness_cpu_pct=None if harness is None else round(harness, 1),
            cores=psutil.cpu_count(),
            sut_wait_pct=round(100 * waited / interval_s, 1) if measured_wait and self._procs else None,
        )
        self.history.append(record, process="monitor")
        sample = MachineSample(
            now,
            record.interval_s,
            record.loop_lag_p99_ms,
            None,
            record.cpu_busy_pct,
            record.sut_cpu_pct,
            None,
            record.cores,
            record.sut_wait_pct,
        )
        self._recent.append((now, interval_s, starved(sample)))  # the checkers' own definition
        self.samples += 1


_FAMILY_EVERY_S = 10.0  # how often the monitor looks for new children of the system's processes
_SCHEDSTAT = os.path.exists("/proc/self/schedstat")  # Linux with schedstats: run-queue waits are known


def _run_queue_wait_s(pid: int) -> float | None:
    """How long ``pid`` has waited in the run queue for a CPU, in seconds (``/proc/PID/schedstat``'s
    second field, nanoseconds); None where the kernel does not say."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def _pids_of(sut: SystemUnderTest) -> Callable[[], list[int]]:
    """Whose CPU counts as the system's: the processes its supervisor started (the bundled and the
    described systems have one); none for a system that runs none (the in-process fake, a plugin
    with processes of its own: its share is then not measured)."""
    supervisor = getattr(sut, "supervisor", None)  # not an ability: how an adapter runs its processes
    return supervisor.pids if isinstance(supervisor, Supervisor) else list


def _cpu_seconds(proc: psutil.Process) -> float | None:
    """A process's CPU time so far (user + system), None once it is gone."""
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return None
    return t.user + t.system


class _Loop:
    """An asyncio loop on a thread of its own, so synchronous callers (the CLI, pytest tests)
    can drive asynchronous clients and the event sink can run throughout the run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="saga-harness-run", daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        done = threading.Event()

        async def wrapped() -> T:
            try:
                return await coro
            finally:
                done.set()

        fut = asyncio.run_coroutine_threadsafe(wrapped(), self.loop)
        try:
            return fut.result(timeout)
        except BaseException:
            # Ctrl-C or a timeout here: cancel the coroutine, and give its clean-up
            # (healing faults, closing connections) time to run before going on.
            if not fut.done():
                fut.cancel()
                done.wait(_CANCEL_WAIT_S)
            raise

    def close(self) -> None:
        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                self.call(cancel_the_rest(), timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        if not self.thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


class Run:
    """One run in progress: the SUT (started), its history, the runner, a loop to drive them on.

    Made by entering a :class:`Lifecycle` (or :meth:`Run.child` for several recorded runs on one
    started SUT, as the pytest plugin does); not constructed directly.
    """

    def __init__(
        self,
        sut: SystemUnderTest,
        model: SagaModel,
        run_dir: Path,
        history: HistoryWriter,
        loop: _Loop,
        listener: Listener,
        info: RunInfo,
        observe: bool,
    ) -> None:
        self.sut = sut
        self.model = model
        self.run_dir = run_dir
        self.history = history
        self.info = info
        self.listener = listener
        self._loop = loop
        self._observe = observe
        self._t0 = time.monotonic()
        self._finished = False
        self._ticker: asyncio.Task[None] | None = None
        self._sink: EventSink | None = None  # a sink opened before the SUT started (or a parent run's)
        self.runner = Runner(sut, history, on_phase=self._phase)
        # A judged run measures its own starvation (MachineLoad records) from open to the end of observing.
        self.monitor = MachineMonitor(history, pids=_pids_of(sut)) if observe else None
        if self.monitor is not None:
            self.runner.starved_s = self.monitor.starved_s
            self.runner.stuck_quiet_s = model.convergence.quiet_s

    @property
    def http(self) -> aiohttp.ClientSession:
        """The run's HTTP session (use it on the run's loop, inside :meth:`call`)."""
        if self.runner.http is None:
            raise RuntimeError("the run is not open")
        return self.runner.http

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the run's loop and return its result (Ctrl-C cancels it, clean-up included)."""
        return self._loop.call(coro, timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Start ``coro`` on the run's loop and return at once (a fault schedule beside a test's steps)."""
        return self._loop.submit(coro)

    def elapsed(self) -> float:
        """Seconds since the run began (the clock of its progress events)."""
        return time.monotonic() - self._t0

    def emit(self, event: ProgressEvent) -> None:
        """Hand a progress event to the run's listener."""
        self.listener(event)

    def judge(self, checkers: Iterable[str] | None = None) -> Verdicts:
        """End the observation (side effects settle, services snapshotted) and judge the history so far:
        ``verdicts.json`` in the run directory. Called again, it judges again."""
        self.call(self._finish())
        self._phase("judging")
        verdicts = judge(self.run_dir, self.model, replace(self.info, finished_at=time.time()), checkers=checkers)
        self.emit(RunFinished(self.elapsed(), str(self.run_dir), verdicts.ok))
        return verdicts

    @contextlib.contextmanager
    def child(
        self, run_dir: Path, *, process: str = "runner", listener: Listener | None = None, **extra: Any
    ) -> Iterator[Run]:
        """Another recorded run on this run's started SUT, in ``run_dir``: its own history (with a
        baseline snapshot of what earlier runs left), sink, runner and listener; judged on its own."""
        run_dir.mkdir(parents=True, exist_ok=True)
        with HistoryWriter(shard_path(run_dir), process=process) as history:
            info = RunInfo(run_dir.name, sut=self.sut.name, env=dict(self.info.env), started_at=time.time())
            history.append(Meta(run_dir.name, sut=self.sut.name, env=dict(self.info.env), extra=dict(extra)))
            hears = listener or self.listener
            run = Run(self.sut, self.model, run_dir, history, self._loop, hears, info, observe=True)
            # A system given the sink's URL when it started pushes there for good: the child takes it over.
            run._sink = self.runner.sink if isinstance(self.sut, EventsAtStart) else None
            try:
                run._open(baseline=True)
                yield run
            finally:
                run._close(finish=False)  # what opened is closed, also when opening failed half-way

    # -- the lifecycle's side ----------------------------------------------------------
    def _phase(self, name: str) -> None:
        self.emit(PhaseStarted(self.elapsed(), name))

    def _open(self, baseline: bool = False) -> None:
        async def open_() -> None:
            await self.runner.open(observe=self._observe, sink=self._sink)
            if self.monitor is not None:
                self.monitor.start()
            if baseline:
                await self.runner.baseline()
            if self.listener is not ignore:
                self._ticker = asyncio.get_running_loop().create_task(self._tick())

        self.call(open_())

    async def _tick(self) -> None:
        while True:
            self.emit(self.runner.counts(self.elapsed()))
            await asyncio.sleep(_TICK_S)

    async def _finish(self) -> None:
        # Once: the observation ends (side effects settle, snapshot), and the last counts go out.
        if self._finished:
            return
        self._finished = True
        try:
            if self._observe:
                await self.runner.finish()
        finally:
            if self.monitor is not None:
                await self.monitor.stop()
        await self._stop_ticking()
        self.emit(self.runner.counts(self.elapsed()))

    async def _stop_ticking(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None

    def _close(self, finish: bool) -> None:
        async def close_() -> None:
            try:
                if finish:
                    await self._finish()
            finally:
                if self.monitor is not None:
                    await self.monitor.stop()
                await self._stop_ticking()
                await self.runner.close()

        self.call(close_())


class Lifecycle:
    """One run of a system under test, from loading it to shutting it down (see the module docstring)."""

    def __init__(self, request: RunRequest, listener: Listener = ignore) -> None:
        self.request = request
        self.listener = listener
        self.run_dir = run_dir_for(request.out, request.label)
        self.sut = load_sut(
            self.run_dir / "sut",
            sut=request.sut,
            config=request.config,
            bugs=request.bugs,
            database_url=request.database_url,
            extra_env=dict(request.env) or None,
        )
        self.model = model_with_triggers(self.sut)  # a broken model is a usage error, before anything starts
        # The system's own switches as they reach its services: its description's [env], then --env.
        own = self.sut.switches() if isinstance(self.sut, OwnSwitches) else {}
        self.env: dict[str, str] = {**own, **request.env}
        self.faults: tuple[dict[str, Any], ...] = ()
        self._needs = Needs()
        self._run: Run | None = None
        self._loop: _Loop | None = None
        self._history: HistoryWriter | None = None

    def plan(
        self, sagas: int, *, mix: str | Mapping[str, float] = "", duplicates: float = 0.0, seed: int | None = None
    ) -> list[PlannedSaga]:
        """The sagas to start (pure; a bad mix is a ConfigError, nothing started). ``mix`` defaults
        to the SUT's own; ``seed`` to the request's."""
        seed = self.request.seed if seed is None else seed
        return plan_workload(self.sut, sagas, mix=mix, duplicates=duplicates, seed=seed or 0)

    def require(self, needs: Needs, what: str) -> None:
        """Refuse the run now (MissingAbilityError, exit 2) if the SUT cannot give what ``what`` needs."""
        if self._run is not None:
            raise RuntimeError("require() before the run starts: abilities are checked before anything starts")
        require(self.sut, needs, what)
        self._needs = self._needs | needs

    def schedule(self, faults: Iterable[Mapping[str, Any]]) -> None:
        """The run's fault schedule (each window described), for its ``meta`` and its verdicts."""
        self.faults = tuple(dict(f) for f in faults)

    def info(self) -> RunInfo:
        """Who the run is, as its verdicts will say."""
        r = self.request
        return RunInfo(
            run_id=self.run_dir.name,
            sut=self.sut.name,
            seed=r.seed,
            scenario=r.scenario,
            bugs=r.bugs,
            env=dict(self.env),
            command=r.command,
            config=str(Path(r.config).resolve()) if r.config else None,  # `check` may run from elsewhere
            started_at=time.time(),
            faults=self.faults,
        )

    def __enter__(self) -> Run:
        r = self.request
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._history = HistoryWriter(shard_path(self.run_dir), process="runner")
        extra = {**r.extra, **({"schedule": list(self.faults)} if self.faults else {})}
        info = self.info()
        self._history.append(
            Meta(info.run_id, info.sut, r.seed, r.scenario, r.bugs, dict(self.env), info.config, r.command, extra)
        )
        self._loop = _Loop()
        run = Run(self.sut, self.model, self.run_dir, self._history, self._loop, self.listener, info, r.observe)
        try:
            run.emit(PhaseStarted(0.0, "starting"))
            if isinstance(self.sut, EventsAtStart):
                # Its services are given ${sink_url}: the sink must listen before they start.
                run._sink = run.call(run.runner.open_sink())
                self.sut.push_events_to(run._sink.url)
            self.sut.start()
            # The state the system holds before anything is driven (and before any fault): the
            # baseline balances compare deltas against. A run that only needs the system up skips it.
            run._open(baseline=r.observe)
        except BaseException:
            self._shutdown(run, finish=False)
            raise
        self._run = run
        return run

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        run, self._run = self._run, None
        if run is not None:
            self._shutdown(run, finish=exc_type is None)

    def _shutdown(self, run: Run, finish: bool) -> None:
        """Close the run and shut the SUT down, each step whatever the one before did. ``finish``:
        the block ended normally (a failure here is the run's); otherwise an error is on its way
        up, and a failure here is only logged, so it cannot hide that error."""
        failed_already = not finish
        try:
            with _logged_if(failed_already, "closing the run"):
                if self._loop is not None:
                    run._close(finish=finish)
        finally:
            try:
                with _logged_if(failed_already, f"shutting {self.sut.name} down"):
                    self.sut.shutdown()
            finally:
                if self._loop is not None:
                    self._loop.close()
                    self._loop = None
                if self._history is not None:
                    self._history.close()
                    self._history = None


@contextlib.contextmanager
def _logged_if(quiet: bool, what: str) -> Iterator[None]:
    """Log (not raise) an exception of the block when ``quiet``: another error is already on its way up."""
    try:
        yield
    except Exception as exc:
        if not quiet:
            raise
        log.warning("while %s after an error: %s: %s", what, type(exc).__name__, exc)
