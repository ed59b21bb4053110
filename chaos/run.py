"""Running a scenario: the workload and the nemesis at once, then heal, converge, judge.

A driver of the :class:`~saga_harness.lifecycle.Lifecycle`: it builds the fault
schedule from the scenario and the seed, states what the schedule needs of the
SUT (refused before anything starts when the SUT lacks it), puts proxies on the
links it faults, and inside the run applies the schedule while the workload runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from saga_harness.chaos.nemesis import Nemesis
from saga_harness.chaos.scenario import Scenario
from saga_harness.chaos.schedule import for_sut, needs
from saga_harness.chaos.wiring import check_links, faulted_links, proxied_links
from saga_harness.errors import ScenarioError
from saga_harness.history import Phase
from saga_harness.lifecycle import Lifecycle, Run, RunRequest
from saga_harness.progress import Listener, PhaseStarted, ignore
from saga_harness.run import RunResult
from saga_harness.runner import SETTLE_AFTER_FAULTS_S
from saga_harness.workload import PlannedSaga

_TICK_S = 0.25


def execute_scenario(
    scenario: Scenario,
    *,
    seed: int = 0,
    sagas: int | None = None,
    bugs: str | None = None,
    out: Path | None = None,
    sut: str | None = None,
    config: Path | None = None,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
    command: str = "",
    listener: Listener = ignore,
) -> RunResult:
    """Run ``scenario`` against the SUT and return its verdicts (all faults healed, whatever happens)."""
    if "postgres" in scenario.requires and not database_url:
        raise ScenarioError(
            f"scenario {scenario.name!r} needs the PostgreSQL backend: add --database-url "
            f"postgresql://postgres@127.0.0.1:5432/test"
        )
    n = sagas if sagas is not None else scenario.workload.sagas
    life = Lifecycle(
        RunRequest(
            label=scenario.name,
            out=out,
            sut=sut,
            config=config,
            bugs=bugs,
            database_url=database_url,
            env=dict(env or {}),
            seed=seed,
            scenario=scenario.name,
            command=command,
            extra={"sagas": n, "concurrency": scenario.workload.concurrency},
        ),
        listener,
    )
    windows = for_sut(scenario, seed, life.sut)
    life.require(needs(windows), f"scenario {scenario.name!r}")
    check_links(life.sut, faulted_links(windows))
    life.schedule(w.describe() for w in windows)
    workload = life.plan(n, mix=dict(scenario.workload.mix), duplicates=scenario.workload.duplicates)
    with proxied_links(life.sut, windows) as proxies, life as run:
        nemesis = Nemesis.for_sut(windows, run.history, run.sut, run.http, proxies)
        run.call(
            drive_with_faults(
                run, nemesis, workload, scenario.workload.concurrency, scenario.deadline, scenario.workload.rate
            )
        )
        verdicts = run.judge()
    return RunResult(life.run_dir, verdicts)


async def drive_with_faults(
    run: Run,
    nemesis: Nemesis,
    workload: list[PlannedSaga],
    concurrency: int,
    deadline_s: float,
    rate: float | None = None,
) -> None:
    """The workload (``rate`` sagas a second at most) and the fault schedule at once; heal every
    fault, then converge."""
    ticker = asyncio.create_task(report_faults(run, nemesis))
    try:
        chaos = asyncio.create_task(nemesis.run())
        try:
            await run.runner.drive(workload, concurrency, rate=rate)
            await chaos
        finally:
            await heal(run, nemesis, chaos)
        settle = SETTLE_AFTER_FAULTS_S if nemesis.windows else 0.0
        longest = max((w.end_s - w.start_s for w in nemesis.windows), default=0.0)
        await run.runner.converge(deadline_s, settle_s=settle, longest_fault_s=longest)
    finally:
        ticker.cancel()
        run.emit(nemesis.counts(run.elapsed()))


async def heal(run: Run, nemesis: Nemesis, chaos: asyncio.Task[None]) -> None:
    """Stop the schedule and heal every active fault (recorded in the history)."""
    chaos.cancel()
    await asyncio.gather(chaos, return_exceptions=True)
    run.emit(PhaseStarted(run.elapsed(), "healing"))
    await nemesis.heal_all()
    run.history.append(Phase("healed"))


async def report_faults(run: Run, nemesis: Nemesis) -> None:
    """Hand the nemesis's fault counts to the run's listener, a few times a second (until cancelled)."""
    while True:
        run.emit(nemesis.counts(run.elapsed()))
        await asyncio.sleep(_TICK_S)
