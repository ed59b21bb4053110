"""saga-harness's pytest plugin (registered through the ``pytest11`` entry point).

    def test_duplicates_change_nothing(saga_run):
        saga_run.start_sagas(50, mix="ok=0.8,decline=0.2", seed=1, duplicates=0.3)
        saga_run.wait_converged(timeout=60)
        saga_run.check().assert_ok()

Options: ``--saga-config FILE`` (a saga-harness.toml) or ``--saga-sut NAME`` (a SUT
plugin: ``reference``, the default, or ``fake``), ``--saga-run-dir DIR`` (default
``runs/pytest-<time>``), ``--saga-bugs``, ``--saga-report FILE``,
``--saga-inconclusive skip|fail``, ``--saga-http-links all|LINK,…`` (route those links through the
HTTP fault proxy for the session, so ``saga_chaos.http(…)`` can fault their calls).

``assert_ok()`` fails the test when a check is violated. When the run is inconclusive —
no violation proved, but a check could not be judged (evidence still arriving, the
machine starved, a saga still progressing when observation ended) — it skips the test
with the reason (``--saga-inconclusive skip``, the default: a busy CI runner does not
turn red for what it could not see) or fails it (``fail``: for a pipeline that must judge).

The session's SUT goes through the run lifecycle (:mod:`saga_harness.lifecycle`),
like every run: started once, shut down completely at the session's end; each test's
``saga_run`` is a recorded run of its own on it (:meth:`saga_harness.lifecycle.Run.child`).
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# The plugin is imported at every pytest start-up, in every project that installed saga-harness:
# the lifecycle, chaos and report modules (aiohttp, pydantic, jinja2 …) are imported only when a
# test asks for a saga fixture, in the functions below.
if TYPE_CHECKING:
    from saga_harness.chaos.nemesis import Nemesis
    from saga_harness.checkers import Verdicts
    from saga_harness.lifecycle import Run
    from saga_harness.progress import ProgressEvent
    from saga_harness.sut import SystemUnderTest

_RUN_DIR = pytest.StashKey[Path]()
_CHECKED = pytest.StashKey[list]()  # (test id, run dir, Verdicts) of each checked run
_SAGA_RUN = pytest.StashKey["SagaRun"]()
_PROXIES = pytest.StashKey[Any]()  # the session's proxies on its links (saga_harness.chaos.wiring.Proxies)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("saga-harness", "saga-harness: sagas under test")
    group.addoption("--saga-config", default=None, help="saga-harness.toml describing the SUT (default: reference)")
    group.addoption("--saga-sut", default=None, help="a SUT plugin by name: reference (default), fake, …")
    group.addoption("--saga-run-dir", default=None, help="where runs are written (default runs/pytest-<time>)")
    group.addoption("--saga-bugs", default=None, help="the SUT's seeded bugs to switch on")
    group.addoption("--saga-report", default=None, help="write one HTML report for the whole session to FILE")
    group.addoption(
        "--saga-inconclusive",
        default="skip",
        choices=("skip", "fail"),
        help="what assert_ok() does when a run is inconclusive (no violation proved, but a check could not "
        "be judged: evidence still arriving, a starved machine): skip the test with the reason (default) or fail it",
    )
    group.addoption(
        "--saga-http-links",
        default=None,
        help="route these links (comma-separated, or 'all') through the HTTP fault proxy for the session, so "
        "saga_chaos.http(...) can fault their calls",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "saga_scenario(name): run this test under a chaos scenario")


def _run_dir(config: pytest.Config) -> Path:
    if _RUN_DIR not in config.stash:
        opt = config.getoption("--saga-run-dir")
        path = Path(opt) if opt else Path("runs") / f"pytest-{time.strftime('%Y%m%d-%H%M%S')}"
        config.stash[_RUN_DIR] = path.resolve()
    return config.stash[_RUN_DIR]


def _skip_inconclusive(explanation: str) -> None:
    __tracebackhide__ = True
    pytest.skip(f"saga-harness: {explanation}")


def _fail_inconclusive(explanation: str) -> None:
    __tracebackhide__ = True
    pytest.fail(f"saga-harness (--saga-inconclusive fail): {explanation}", pytrace=False)


class SagaRun:
    """One test's run against the session's SUT: drive sagas, wait, check.

    ``inconclusive``: what the verdicts' ``assert_ok()`` does with an inconclusive run
    (``skip`` or ``fail``; the session's ``--saga-inconclusive``)."""

    def __init__(self, run: Run, inconclusive: str = "skip", proxies: Any = None) -> None:
        from saga_harness.progress import ProgressState

        self.run = run
        self.proxies = proxies  # the session's proxies (its links behind the HTTP fault proxy)
        self._calls = None
        if proxies is not None and proxies.http:
            from saga_harness.chaos.nemesis.http import HttpLinkFaults

            self._calls = HttpLinkFaults(proxies.http_client, proxies.http)
            self._calls.skip_seen()  # this test's history holds only the calls made during it
        self.inconclusive = inconclusive
        self.sut = run.sut
        self.run_dir = run.run_dir
        self.history_path = run.history.path
        self.progress = ProgressState()  # this test's run, folded from its progress events
        self._lock = threading.Lock()
        self._nemesis: Nemesis | None = None
        self._chaos: Future[None] | None = None
        self.verdicts: Verdicts | None = None

    def hear(self, event: ProgressEvent) -> None:
        """The run's listener (called from its loop thread)."""
        with self._lock:
            self.progress = self.progress.apply(event)

    def start_sagas(
        self, n: int, *, mix: str | dict[str, float] = "", seed: int = 0, duplicates: float = 0.0, concurrency: int = 20
    ) -> list[str]:
        """Start ``n`` sagas (``mix`` of the SUT's triggers); return the saga ids started."""
        from saga_harness.lifecycle import plan_workload

        workload = plan_workload(self.sut, n, mix=mix, duplicates=duplicates, seed=seed)
        return self.run.call(self.run.runner.drive(workload, concurrency))

    def wait_converged(self, timeout: float = 60.0) -> bool:
        """Wait until every saga started so far has an outcome (False if ``timeout`` passed)."""
        return self.run.call(self.run.runner.converge(timeout))

    def start_scenario(self, name: str, seed: int = 0) -> None:
        """Apply a catalogue scenario's fault schedule from now on (process and delivery faults)."""
        from saga_harness.chaos.nemesis import Nemesis
        from saga_harness.chaos.scenario import LINK_FAULTS, load_scenario
        from saga_harness.chaos.schedule import for_sut, needs
        from saga_harness.errors import ScenarioError
        from saga_harness.sut import require

        scenario, _ = load_scenario(name)
        windows = for_sut(scenario, seed, self.sut)
        links = [w.id for w in windows if w.kind in LINK_FAULTS]
        if links:
            raise ScenarioError(
                f"scenario {name!r} has link faults ({', '.join(links)}); in pytest only process "
                f"and delivery faults apply — use `saga-harness chaos run {name}` for link faults"
            )
        require(self.sut, needs(windows), f"scenario {name!r}")
        self._nemesis = Nemesis.for_sut(windows, self.run.history, self.sut, self.run.http)
        self._chaos = self.run.submit(self._nemesis.run())

    def _heal(self) -> None:
        if self._nemesis is not None:
            if self._chaos is not None:
                self._chaos.cancel()
            self.run.call(self._nemesis.heal_all(), timeout=60)
            self._nemesis = None

    def check(self, names: list[str] | None = None) -> Verdicts:
        """Heal the faults, let the services settle, snapshot them and judge everything recorded so far.
        The verdicts' ``assert_ok()`` skips or fails an inconclusive run, per ``--saga-inconclusive``."""
        self._heal()
        if self._calls is not None:
            self.run.call(self._calls.record_calls(self.run.history))
        hook = _skip_inconclusive if self.inconclusive == "skip" else _fail_inconclusive
        self.verdicts = replace(self.run.judge(names), on_inconclusive=hook)
        from saga_harness.reports import write_reports

        write_reports(self.run_dir)  # the test's folder: verdicts.json, report.html, junit.xml beside its history
        return self.verdicts

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every entry recorded so far."""
        from saga_harness.history import read_history

        return list(read_history(self.run_dir))


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
        from saga_harness.chaos.schedule import FaultWindow, needs
        from saga_harness.sut import require

        self._n += 1
        window = FaultWindow(f"test-{self._n}-{kind}", kind, target, 0.0, 0.0, params)
        require(self.run.sut, needs([window]), f"saga_chaos: {kind} {target}")
        run = self.run.run
        nemesis = Nemesis.for_sut([window], run.history, run.sut, run.http, self.run.proxies)
        run.call(nemesis.apply(window))
        try:
            yield
        finally:
            run.call(nemesis.heal(window))

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

    def http(self, link: str, kind: str, **fault: Any) -> Any:
        """An HTTP fault on ``link``'s calls for the block, keyed on the call, not the clock: ``kind`` is
        one of ``http_error``, ``lose_answer``, ``duplicate_request``, ``delay_request``, ``delay_answer``,
        ``cut_body``; ``fault`` takes a scenario fault's keys — ``method``, ``path`` (a glob), ``nth``
        (``[2]``: the second matching call), ``first``, ``probability``, ``status``, ``delay_s``,
        ``lose``, ``body_fraction``. The session must route the link through the HTTP fault proxy
        (``--saga-http-links``); the calls it saw, with the faults they got, are in the test's history.

            with saga_chaos.http("taskqueue->payment", "lose_answer", path="/payments/*/capture", nth=[1]):
                saga_run.start_sagas(5)
        """
        from pydantic import ValidationError
        from saga_harness.chaos.scenario import HTTP_FAULTS, Fault
        from saga_harness.chaos.schedule import http_params
        from saga_harness.config import describe_validation
        from saga_harness.errors import ScenarioError

        if kind not in HTTP_FAULTS:
            raise ScenarioError(f"saga_chaos.http: unknown kind {kind!r}; kinds: {', '.join(HTTP_FAULTS)}")
        proxied = self.run.proxies.http if self.run.proxies is not None else {}
        if link not in proxied:
            raise ScenarioError(
                f"saga_chaos.http: link {link!r} is not behind the HTTP fault proxy in this session; run pytest "
                f"with --saga-http-links {link} (or --saga-http-links all)"
                + (f"; behind it now: {', '.join(sorted(proxied))}" if proxied else "")
            )
        try:
            spec = Fault(kind=kind, link=link, **fault)
        except ValidationError as exc:
            raise ScenarioError(f"saga_chaos.http: {describe_validation(exc, Fault)}") from None
        return self._window(kind, link, **http_params(spec))


@pytest.fixture
def saga_chaos(saga_run: SagaRun) -> SagaChaos:
    """Apply faults inside a test (context managers), recorded in the run's history."""
    return SagaChaos(saga_run)


@pytest.fixture(scope="session")
def _saga_session(request: pytest.FixtureRequest) -> Iterator[Run]:
    """The session's run: the SUT started once through the run lifecycle, shut down at the end."""
    from saga_harness.chaos.wiring import proxied_links
    from saga_harness.lifecycle import Lifecycle, RunRequest

    config = request.config
    saga_config = config.getoption("--saga-config")
    life = Lifecycle(
        RunRequest(
            label="pytest",
            out=_run_dir(config),
            sut=config.getoption("--saga-sut"),
            config=Path(saga_config) if saga_config else None,
            bugs=config.getoption("--saga-bugs"),
            observe=False,
        )
    )
    with proxied_links(life.sut, [], http_links=_http_links(config, life.sut)) as proxies, life as session:
        config.stash[_PROXIES] = proxies
        yield session


def _http_links(config: pytest.Config, sut: SystemUnderTest) -> list[str]:
    """The links ``--saga-http-links`` puts behind the HTTP fault proxy (``all``: every link the SUT routes)."""
    from saga_harness.errors import ConfigError
    from saga_harness.sut import LinkRouting

    wanted = [x.strip() for x in (config.getoption("--saga-http-links") or "").split(",") if x.strip()]
    if not wanted:
        return []
    links = [link.name for link in sut.links()] if isinstance(sut, LinkRouting) else []
    if wanted == ["all"]:
        return links
    unknown = [x for x in wanted if x not in links]
    if unknown:
        raise ConfigError(
            f"--saga-http-links: {', '.join(unknown)} not links of {sut.name}; its links: "
            f"{', '.join(links) or '(none: it routes no links)'}"
        )
    return wanted


@pytest.fixture(scope="session")
def saga_sut(_saga_session: Run) -> SystemUnderTest:
    """The system under test, started once for the session and shut down at its end."""
    return _saga_session.sut


@pytest.fixture
def saga_run(_saga_session: Run, request: pytest.FixtureRequest) -> Iterator[SagaRun]:
    """A run bound to the session's SUT, recorded in its own run directory."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)[:80]
    with contextlib.ExitStack() as stack:
        holder: list[SagaRun] = []
        run = stack.enter_context(
            _saga_session.child(_run_dir(request.config) / name, process="pytest", listener=lambda e: _hear(holder, e))
        )
        saga = SagaRun(run, request.config.getoption("--saga-inconclusive"), request.config.stash.get(_PROXIES, None))
        holder.append(saga)
        request.node.stash[_SAGA_RUN] = saga
        stack.callback(saga._heal)
        marker = request.node.get_closest_marker("saga_scenario")
        if marker is not None:
            saga.start_scenario(*marker.args, **marker.kwargs)
        yield saga
    if saga.verdicts is not None:
        request.config.stash.setdefault(_CHECKED, []).append((request.node.nodeid, saga.run_dir, saga.verdicts))


def _hear(holder: list[SagaRun], event: ProgressEvent) -> None:
    if holder:
        holder[0].hear(event)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    saga = item.stash.get(_SAGA_RUN, None)
    if saga is not None and report.failed and call.when == "call":
        # Where the run was when the test failed: the same line the CLI prints in a log.
        report.sections.append(("saga-harness", f"{saga.progress.line()}\nrun directory: {saga.run_dir}"))
    return report


def _session_report(config: pytest.Config, target: Path) -> Path | None:
    """One report for the session: each test's checks, histories as shards of one run."""
    from saga_harness.checkers import RunInfo, RunStats, Verdicts
    from saga_harness.reports import write_reports

    checked: list[tuple[str, Path, Verdicts]] = config.stash.get(_CHECKED, [])
    if not checked:
        return None
    session = _run_dir(config) / "session"
    (session / "history.d").mkdir(parents=True, exist_ok=True)
    checks, started = [], 0
    for nodeid, run_dir, verdicts in checked:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in nodeid)[:100]
        if (run_dir / "history.jsonl").exists():
            shutil.copyfile(run_dir / "history.jsonl", session / "history.d" / f"{safe}.jsonl")
        checks += [replace(c, name=f"{nodeid} :: {c.name}") for c in verdicts.checks]
        started += verdicts.stats.sagas_started
    sut = checked[0][2].run.sut if checked[0][2].run is not None else None
    info = RunInfo("pytest-session", sut=sut, scenario="pytest session")
    Verdicts(tuple(checks), RunStats(sagas_started=started), info).write(session)
    built = write_reports(session).html
    if built is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, target)
    return target


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _RUN_DIR in config.stash and config.stash[_RUN_DIR].exists():
        terminalreporter.write_sep("-", "saga-harness")
        terminalreporter.write_line(f"run directory: {config.stash[_RUN_DIR]}")
        for nodeid, run_dir, verdicts in config.stash.get(_CHECKED, []):
            if verdicts.status != "ok":
                terminalreporter.write_line(f"{verdicts.status}: {nodeid} — {run_dir / 'report.html'}")
        target = config.getoption("--saga-report")
        if target:
            path = _session_report(config, Path(target).resolve())
            terminalreporter.write_line(f"session report: {path}" if path else "session report: no run was checked")
