"""Running a scenario: the workload and the nemesis at once, then heal, converge, judge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from saga_harness.chaos.guard import check_targets
from saga_harness.chaos.nemesis import Nemesis
from saga_harness.chaos.scenario import DELIVERY_FAULTS, Scenario
from saga_harness.chaos.schedule import FaultWindow, build
from saga_harness.chaos.wiring import proxied_links
from saga_harness.errors import ScenarioError
from saga_harness.history import HistoryWriter, shard_path
from saga_harness.run import (
    RunResult,
    RunSpec,
    identity,
    judge,
    model_with_triggers,
    new_run_dir,
    shutdown,
    workload_for,
)
from saga_harness.runner import SETTLE_AFTER_FAULTS_S, Progress, Runner, RunOptions
from saga_harness.sut import SystemUnderTest, load_sut


@dataclass
class ChaosProgress:
    run: Progress
    active_faults: list[str] = field(default_factory=list)
    faults_done: int = 0
    faults_total: int = 0


def execute_scenario(
    scenario: Scenario,
    *,
    seed: int = 0,
    sagas: int | None = None,
    bugs: str | None = None,
    out: Path | None = None,
    config: Path | None = None,
    database_url: str | None = None,
    command: str = "",
    on_progress: Callable[[ChaosProgress], None] | None = None,
) -> RunResult:
    """Run ``scenario`` against the SUT and return its verdicts (all faults healed, whatever happens)."""
    spec = RunSpec(
        sagas=sagas if sagas is not None else scenario.workload.sagas,
        concurrency=scenario.workload.concurrency,
        seed=seed,
        mix=dict(scenario.workload.mix),
        duplicates=scenario.workload.duplicates,
        deadline_s=scenario.deadline,
        out=out,
        config=config,
        bugs=bugs,
        database_url=database_url,
        command=command,
        scenario=scenario.name,
    )
    if "postgres" in scenario.requires and not database_url:
        raise ScenarioError(
            f"scenario {scenario.name!r} needs the PostgreSQL backend: add --database-url "
            f"postgresql://postgres@127.0.0.1:5432/test"
        )
    run_dir = new_run_dir(out, scenario.name)
    sut = load_sut(run_dir / "sut", config=config, bugs=bugs, database_url=database_url)
    model = model_with_triggers(sut)
    workload = workload_for(sut, spec)
    links = [link.name for link in sut.links()]
    processes = list(sut.services())
    windows = build(scenario, seed, links, processes)
    allowed = getattr(getattr(sut, "config", None), "allowed_hosts", [])
    check_targets([(f"link {link.name}", link.upstream) for link in sut.links()], allowed)
    if any(w.kind in DELIVERY_FAULTS for w in windows) and not hasattr(sut, "delivery_fault"):
        raise ScenarioError(
            f"scenario {scenario.name!r} has delivery faults, and {sut.name} exposes no delivery "
            f"hooks; pick a scenario without them"
        )
    started = time.time()
    with HistoryWriter(shard_path(run_dir), process="runner") as history:
        history(
            "meta",
            run_id=run_dir.name,
            seed=seed,
            sut=sut.name,
            scenario=scenario.name,
            bugs=bugs,
            config=str(config) if config else None,
            command=command,
            sagas=spec.sagas,
            schedule=[w.describe() for w in windows],
        )
        with proxied_links(sut, windows) as proxies:
            try:
                sut.start()
                asyncio.run(_drive(sut, spec, workload, windows, proxies, history, on_progress))
            finally:
                shutdown(sut)
    who = identity(
        run_dir,
        sut,
        seed=seed,
        scenario=scenario.name,
        bugs=bugs,
        command=command,
        started=started,
        faults=[w.describe() for w in windows],
    )
    return RunResult(run_dir, judge(run_dir, model, who))


async def _drive(
    sut: SystemUnderTest,
    spec: RunSpec,
    workload: list,
    windows: list[FaultWindow],
    proxies: dict[str, Any],
    record: Callable[..., None],
    on_progress: Callable[[ChaosProgress], None] | None,
) -> None:
    settle = SETTLE_AFTER_FAULTS_S if windows else 0.0
    runner = Runner(sut, record, RunOptions(concurrency=spec.concurrency, deadline_s=spec.deadline_s, settle_s=settle))
    await runner.open()
    async with aiohttp.ClientSession() as http:
        nemesis = Nemesis.for_sut(windows, record, sut, http, proxies)
        progress = ChaosProgress(runner.progress, faults_total=len(windows))

        async def report() -> None:
            while True:
                progress.active_faults = [f"{w.kind} {w.target}" for w in nemesis.active.values()]
                progress.faults_done = nemesis.done
                if on_progress:
                    on_progress(progress)
                await asyncio.sleep(0.25)

        reporter = asyncio.create_task(report())
        try:
            chaos = asyncio.create_task(nemesis.run())
            await runner.drive(workload)
            await chaos
        finally:
            await nemesis.heal_all()
            record("phase", name="healed")
        try:
            await runner.converge()
        finally:
            await runner.close()
            reporter.cancel()
            progress.active_faults = []
            if on_progress:
                on_progress(progress)
