"""saga-harness's pytest plugin (registered through the ``pytest11`` entry point).

    def test_duplicates_change_nothing(saga_run):
        saga_run.start_sagas(50, mix="ok=0.8,decline=0.2", seed=1, duplicates=0.3)
        saga_run.wait_converged(timeout=60)
        saga_run.check().assert_ok()

Options: ``--saga-config FILE`` (a saga-harness.toml; default: the reference
system), ``--saga-run-dir DIR`` (default ``runs/pytest-<time>``), ``--saga-bugs``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from saga_harness.checkers import RunInfo, Verdicts, run_checks
from saga_harness.errors import ScenarioError
from saga_harness.history import HistoryWriter, read_history, shard_path
from saga_harness.run import RunSpec, model_with_triggers, workload_for
from saga_harness.runner import Runner, RunOptions
from saga_harness.sut import SystemUnderTest, load_sut

_RUN_DIR = pytest.StashKey[Path]()
_CHECKED = pytest.StashKey[list]()  # (test name, run dir, verdicts dict) of each checked run


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("saga-harness", "saga-harness: sagas under test")
    group.addoption("--saga-config", default=None, help="saga-harness.toml describing the SUT (default: reference)")
    group.addoption("--saga-run-dir", default=None, help="where runs are written (default runs/pytest-<time>)")
    group.addoption("--saga-bugs", default=None, help="reference system's seeded bugs to switch on")
    group.addoption("--saga-report", default=None, help="write one HTML report for the whole session to FILE")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "saga_scenario(name): run this test under a chaos scenario")


def _run_dir(config: pytest.Config) -> Path:
    if _RUN_DIR not in config.stash:
        opt = config.getoption("--saga-run-dir")
        path = Path(opt) if opt else Path("runs") / f"pytest-{time.strftime('%Y%m%d-%H%M%S')}"
        config.stash[_RUN_DIR] = path.resolve()
    return config.stash[_RUN_DIR]


class _Loop:
    """An asyncio loop on a thread, so synchronous tests can drive async clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="saga-harness-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        fut: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class SagaRun:
    """One test's run against the session's SUT: drive sagas, wait, check."""

    def __init__(self, sut: SystemUnderTest, run_dir: Path) -> None:
        self.sut = sut
        self.run_dir = run_dir
        self.history_path = shard_path(run_dir)
        self._writer = HistoryWriter(self.history_path, process="pytest")
        self._writer("meta", run_id=run_dir.name, sut=sut.name)
        self._loop = _Loop()
        self._runner = Runner(sut, self._writer, RunOptions())
        self._loop.run(self._runner.open())
        # The session's SUT is shared: what earlier tests left is this run's baseline.
        for service, data in self._loop.run(self._snapshot()).items():
            self._writer("snapshot", service=service, data=data, baseline=True)
        self._closed = False
        self._nemesis: Any = None
        self._chaos: Any = None
        self.verdicts: dict[str, Any] | None = None

    def start_sagas(
        self, n: int, *, mix: str | dict[str, float] = "", seed: int = 0, duplicates: float = 0.0, concurrency: int = 20
    ) -> list[str]:
        """Start ``n`` sagas (``mix`` of the SUT's triggers); return the saga ids started."""
        spec = RunSpec(sagas=n, mix=mix, seed=seed, duplicates=duplicates, concurrency=concurrency)
        workload = workload_for(self.sut, spec)
        before = set(self._runner.saga_ids)
        self._runner.options = RunOptions(concurrency=concurrency)
        self._loop.run(self._runner.drive(workload))
        return [s for s in self._runner.saga_ids if s not in before]

    def wait_converged(self, timeout: float = 60.0) -> bool:
        """Wait until every saga started so far has an outcome (False if ``timeout`` passed)."""
        return bool(self._loop.run(self._runner.converge(timeout)))

    async def _snapshot(self) -> dict[str, Any]:
        return await self.sut.snapshot(self._runner._http)

    def start_scenario(self, name: str, seed: int = 0) -> None:
        """Apply a catalogue scenario's fault schedule from now on (process and delivery faults)."""
        from saga_harness.chaos.nemesis import Nemesis
        from saga_harness.chaos.scenario import LINK_FAULTS, load_scenario
        from saga_harness.chaos.schedule import build

        scenario, _ = load_scenario(name)
        windows = build(scenario, seed, [link.name for link in self.sut.links()], list(self.sut.services()))
        links = [w.id for w in windows if w.kind in LINK_FAULTS]
        if links:
            raise ScenarioError(
                f"scenario {name!r} has link faults ({', '.join(links)}); in pytest only process "
                f"and delivery faults apply — use `saga-harness chaos run {name}` for link faults"
            )
        self._nemesis = Nemesis.for_sut(windows, self._writer, self.sut, self._runner._http)
        self._chaos = asyncio.run_coroutine_threadsafe(self._nemesis.run(), self._loop.loop)

    def _heal(self) -> None:
        if self._nemesis is not None:
            if self._chaos is not None:
                self._chaos.cancel()
            self._loop.run(self._nemesis.heal_all(), timeout=60)
            self._nemesis = None

    def check(self, names: list[str] | None = None) -> Verdicts:
        """Snapshot the services and judge everything recorded so far."""
        self._heal()
        if not self._closed:
            self._loop.run(self._runner.close())
            self._closed = True
            self._writer.close()
        verdicts = run_checks(read_history(self.run_dir), model_with_triggers(self.sut), names)
        self.verdicts = verdicts.with_run(RunInfo(self.run_dir.name, sut=self.sut.name)).to_json()
        return verdicts

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every entry recorded so far."""
        return list(read_history(self.run_dir))

    def close(self) -> None:
        self._heal()
        if not self._closed:
            try:
                self._loop.run(self._runner.close(), timeout=60)
            finally:
                self._closed = True
                self._writer.close()
        self._loop.close()


class SagaChaos:
    """Faults inside a test, as context managers; each start and end lands in the run's history.

    with saga_chaos.kill("payment"):
        saga_run.start_sagas(20)
    """

    def __init__(self, run: SagaRun) -> None:
        self.run = run
        self._n = 0

    @contextmanager
    def _window(self, kind: str, target: str, **params: Any) -> Iterator[None]:
        from saga_harness.chaos.nemesis import Nemesis
        from saga_harness.chaos.schedule import FaultWindow

        self._n += 1
        window = FaultWindow(f"test-{self._n}-{kind}", kind, target, 0.0, 0.0, params)
        nemesis = Nemesis.for_sut([], self.run._writer, self.run.sut, self.run._runner._http)
        self.run._loop.run(nemesis._apply(window))
        try:
            yield
        finally:
            self.run._loop.run(nemesis._heal(window))

    def kill(self, process: str) -> Any:
        """SIGKILL ``process`` for the block; restart it at the end."""
        return self._window("kill", process)

    def pause(self, process: str) -> Any:
        """SIGSTOP ``process`` for the block; SIGCONT at the end."""
        return self._window("pause", process)

    def deliveries(
        self,
        component: str,
        queue: str = "*",
        *,
        duplicate: int = 0,
        delay_s: float = 0.0,
        drop: bool = False,
        probability: float = 1.0,
    ) -> Any:
        """Duplicate, delay or drop ``component``'s pushes (taskqueue, eventbus) for the block."""
        kind = "drop" if drop else ("duplicate" if duplicate else "delay")
        return self._window(kind, f"{component}:{queue}", copies=duplicate, delay_s=delay_s, probability=probability)


@pytest.fixture
def saga_chaos(saga_run: SagaRun) -> SagaChaos:
    """Apply faults inside a test (context managers), recorded in the run's history."""
    return SagaChaos(saga_run)


@pytest.fixture(scope="session")
def saga_sut(request: pytest.FixtureRequest) -> Iterator[SystemUnderTest]:
    """The system under test, started once for the session and stopped at its end."""
    config = request.config
    sut = load_sut(
        _run_dir(config) / "sut", config=config.getoption("--saga-config"), bugs=config.getoption("--saga-bugs")
    )
    sut.start()
    try:
        yield sut
    finally:
        sut.stop()


@pytest.fixture
def saga_run(saga_sut: SystemUnderTest, request: pytest.FixtureRequest) -> Iterator[SagaRun]:
    """A run bound to the session's SUT, recorded in its own run directory."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)[:80]
    run = SagaRun(saga_sut, _run_dir(request.config) / name)
    marker = request.node.get_closest_marker("saga_scenario")
    if marker is not None:
        run.start_scenario(*marker.args, **marker.kwargs)
    try:
        yield run
    finally:
        run.close()
        if run.verdicts is not None:
            request.config.stash.setdefault(_CHECKED, []).append((request.node.nodeid, run.run_dir, run.verdicts))


def _session_report(config: pytest.Config, target: Path) -> Path | None:
    """One report for the session: each test's checks, histories as shards of one run."""
    import json
    import shutil

    from saga_harness.reports.junit import write_junit
    from saga_harness.run import report

    checked = config.stash.get(_CHECKED, [])
    if not checked:
        return None
    session = _run_dir(config) / "session"
    (session / "history.d").mkdir(parents=True, exist_ok=True)
    checks, started = [], 0
    for nodeid, run_dir, verdicts in checked:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in nodeid)[:100]
        if (run_dir / "history.jsonl").exists():
            shutil.copyfile(run_dir / "history.jsonl", session / "history.d" / f"{safe}.jsonl")
        checks += [{**c, "name": f"{nodeid} :: {c['name']}"} for c in verdicts["checks"]]
        started += verdicts.get("stats", {}).get("sagas_started", 0)
    doc = {
        "ok": all(c["ok"] for c in checks),
        "run_id": "pytest-session",
        "seed": None,
        "sut": checked[0][2].get("sut"),
        "scenario": "pytest session",
        "checks": checks,
        "stats": {"sagas_started": started, "by_outcome": {}, "convergence_s": {}},
    }
    (session / "verdicts.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    write_junit(doc, session / "junit.xml")
    built = report(session)
    if built is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, target)
    return target


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _RUN_DIR in config.stash and config.stash[_RUN_DIR].exists():
        terminalreporter.write_sep("-", "saga-harness")
        terminalreporter.write_line(f"run directory: {config.stash[_RUN_DIR]}")
        target = config.getoption("--saga-report")
        if target:
            path = _session_report(config, Path(target).resolve())
            terminalreporter.write_line(f"session report: {path}" if path else "session report: no run was checked")
