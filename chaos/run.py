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
from typing import Any

from saga_harness.chaos.nemesis import Nemesis
from saga_harness.chaos.scenario import HTTP_FAULTS, Scenario
from saga_harness.chaos.schedule import for_sut, needs
from saga_harness.chaos.wiring import check_links, faulted_links, proxied_links
from saga_harness.counterexample import violated_keys
from saga_harness.errors import ScenarioError
from saga_harness.history import Phase
from saga_harness.lifecycle import Lifecycle, Run, RunRequest, counterexample
from saga_harness.progress import Listener, PhaseStarted, ignore
from saga_harness.run import RunResult
from saga_harness.runner import SETTLE_AFTER_FAULTS_S
from saga_harness.sut import LinkRouting, Needs, SystemUnderTest
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
            extra={
                "sagas": n,
                "concurrency": scenario.workload.concurrency,
                "sometimes": sometimes_specs(scenario),
            },
        ),
        listener,
    )
    windows = for_sut(scenario, seed, life.sut)
    recorded = recorded_links(scenario, life.sut)
    life.require(needs(windows) | Needs(links=frozenset(recorded)), f"scenario {scenario.name!r}")
    check_links(life.sut, faulted_links(windows) | set(recorded))
    life.schedule(w.describe() for w in windows)
    workload = life.plan(n, mix=dict(scenario.workload.mix), duplicates=scenario.workload.duplicates)
    with proxied_links(life.sut, windows, http_links=recorded) as proxies, life as run:
        nemesis = Nemesis.for_sut(windows, run.history, run.sut, run.http, proxies)
        run.call(
            drive_with_faults(
                run, nemesis, workload, scenario.workload.concurrency, scenario.deadline, scenario.workload.rate
            )
        )
        verdicts = run.judge()
    if verdicts.status == "violated":
        counterexample(
            "chaos",
            life,
            workload={"sagas": n, "deadline_s": scenario.deadline},
            scenario=scenario.model_dump(mode="json"),
            faults=[w.describe() for w in windows],
            findings=violated_keys(verdicts.findings),
        ).write(life.run_dir)
    return RunResult(life.run_dir, verdicts)


def recorded_links(scenario: Scenario, sut: SystemUnderTest) -> list[str]:
    """The links whose calls ``scenario`` records (``record_calls``; ``*``: every link ``sut`` routes)."""
    if not scenario.record_calls:
        return []
    routed = [link.name for link in sut.links()] if isinstance(sut, LinkRouting) else []
    if "*" in scenario.record_calls:
        return routed
    return list(scenario.record_calls)


def sometimes_specs(scenario: Scenario) -> list[dict[str, Any]]:
    """The scenario's sometimes-assertions as the ``sometimes`` checker reads them (HTTP fault kinds
    named by the proxy's action)."""
    specs = []
    for s in scenario.sometimes:
        spec = s.model_dump(exclude_none=True)
        if s.fault is not None:
            spec["action"] = HTTP_FAULTS[spec.pop("fault")]
            spec["label"] = f"a {s.fault.replace('_', ' ')}" + (
                f" on {s.method} {s.path}" if (s.method, s.path) != ("*", "*") else ""
            )
        specs.append(spec)
    return specs


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
        await nemesis.apply_initial()
        chaos = asyncio.create_task(nemesis.run())
        try:
            await run.runner.drive(workload, concurrency, rate=rate)
            await chaos
        finally:
            await heal(run, nemesis, chaos)
        settle = SETTLE_AFTER_FAULTS_S if nemesis.windows else 0.0
        longest = max((w.end_s - w.start_s for w in nemesis.windows), default=0.0)
        try:
            await run.runner.converge(deadline_s, settle_s=settle, longest_fault_s=longest)
        finally:
            await nemesis.heal_all()  # the HTTP faults keyed on calls lasted while the run converged
            await nemesis.record_calls()
    finally:
        ticker.cancel()
        run.emit(nemesis.counts(run.elapsed()))


async def heal(run: Run, nemesis: Nemesis, chaos: asyncio.Task[None]) -> None:
    """Stop the schedule and heal every active fault (recorded in the history)."""
    chaos.cancel()
    await asyncio.gather(chaos, return_exceptions=True)
    run.emit(PhaseStarted(run.elapsed(), "healing"))
    await nemesis.heal_all(keep_call_keyed=True)
    run.history.append(Phase("healed"))


async def report_faults(run: Run, nemesis: Nemesis) -> None:
    """Hand the nemesis's fault counts to the run's listener, a few times a second (until cancelled)."""
    while True:
        run.emit(nemesis.counts(run.elapsed()))
        await asyncio.sleep(_TICK_S)
