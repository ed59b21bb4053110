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
from pathlib import Path
from typing import Any

import pytest

from harness.checkers import Verdicts, run_checks
from harness.history import HistoryWriter, read_history, shard_path
from harness.run import RunSpec, model_with_triggers, workload_for
from harness.runner import Runner, RunOptions
from harness.sut import SystemUnderTest, load_sut

_RUN_DIR = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("saga-harness", "saga-harness: sagas under test")
    group.addoption("--saga-config", default=None, help="saga-harness.toml describing the SUT (default: reference)")
    group.addoption("--saga-run-dir", default=None, help="where runs are written (default runs/pytest-<time>)")
    group.addoption("--saga-bugs", default=None, help="reference system's seeded bugs to switch on")


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
        self._closed = False
        self._seed_offset = 0

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

    def check(self, names: list[str] | None = None) -> Verdicts:
        """Snapshot the services and judge everything recorded so far."""
        if not self._closed:
            self._loop.run(self._runner.close())
            self._closed = True
            self._writer.close()
        return run_checks(read_history(self.run_dir), model_with_triggers(self.sut), names)

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every entry recorded so far."""
        return list(read_history(self.run_dir))

    def close(self) -> None:
        if not self._closed:
            try:
                self._loop.run(self._runner.close(), timeout=60)
            finally:
                self._closed = True
                self._writer.close()
        self._loop.close()


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
    try:
        yield run
    finally:
        run.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _RUN_DIR in config.stash and config.stash[_RUN_DIR].exists():
        terminalreporter.write_sep("-", "saga-harness")
        terminalreporter.write_line(f"run directory: {config.stash[_RUN_DIR]}")
