"""``saga-harness load run``: Locust in its own processes (alone, or a master and K
workers), optionally a chaos scenario at the same time, then heal, converge, judge.

Locust is never imported here: ``import locust`` monkey-patches the whole
process with gevent. It runs as child processes under the harness's supervisor.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saga_harness.chaos.guard import check_targets
from saga_harness.chaos.nemesis import Nemesis
from saga_harness.chaos.run import heal, report_faults
from saga_harness.chaos.scenario import load_scenario
from saga_harness.chaos.schedule import FaultWindow, for_sut, needs
from saga_harness.chaos.wiring import check_links, faulted_links, proxied_links
from saga_harness.counterexample import violated_keys
from saga_harness.errors import ConfigError, ScenarioError
from saga_harness.history import Completion, Invoke, Phase
from saga_harness.history.reader import read_entries
from saga_harness.lifecycle import Lifecycle, Run, RunRequest, counterexample
from saga_harness.ports import free_port
from saga_harness.progress import Listener, LoadCounts, PhaseStarted, ignore
from saga_harness.run import RunResult, sut_label
from saga_harness.runner import SETTLE_AFTER_FAULTS_S
from saga_harness.supervisor import ProcessSpec, Supervisor
from saga_harness.workload import parse_mix

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class LoadSpec:
    users: int = 20
    spawn_rate: float = 10.0
    duration_s: float = 20.0
    workers: int = 0
    mix: str = ""
    duplicates: float = 0.1
    scenario: str | None = None
    seed: int = 0
    bugs: str | None = None
    out: Path | None = None
    sut: str | None = None
    config: Path | None = None
    database_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    deadline_s: float = 60.0
    command: str = ""


def locust_specs(spec: LoadSpec, run_dir: Path, host: str, env: dict[str, str]) -> list[ProcessSpec]:
    # Not preloaded: gevent must monkey-patch before ssl and asyncio are imported.
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", host]
    common = [
        "--headless",
        "-u",
        str(spec.users),
        "-r",
        str(spec.spawn_rate),
        "-t",
        f"{int(spec.duration_s)}s",
        "--csv",
        str(run_dir / "locust"),
        "--html",
        str(run_dir / "locust.html"),
        "--stop-timeout",
        "5",
        "--exit-code-on-error",
        "0",
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    if spec.workers <= 0:
        return [ProcessSpec("locust", base + common, env=env, cwd=str(run_dir), preload=False)]
    port = free_port()
    master = ProcessSpec(
        "locust-master",
        base
        + common
        + [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(spec.workers),
        ],
        env=env,
        cwd=str(run_dir),
        preload=False,
    )
    workers = [
        ProcessSpec(
            f"locust-worker-{i}",
            base + ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port), "--loglevel", "WARNING"],
            env=env,
            cwd=str(run_dir),
            preload=False,
        )
        for i in range(spec.workers)
    ]
    return [master, *workers]


def locust_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "locust_stats.csv"
    if not path.exists():
        return {}
    rows = {r["Name"]: r for r in csv.DictReader(path.open())}
    out: dict[str, Any] = {}
    for name, row in rows.items():
        key = "total" if name == "Aggregated" else name
        out[key] = {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "requests_per_s": round(float(row["Requests/s"]), 2),
            "p50_ms": float(row["50%"] or 0),
            "p95_ms": float(row["95%"] or 0),
            "p99_ms": float(row["99%"] or 0),
        }
    return out


def execute_load(spec: LoadSpec, listener: Listener = ignore) -> RunResult:
    """Start the SUT, run Locust (and a scenario), heal, converge, judge; write ``load.json``."""
    if spec.duration_s <= 0 or spec.users <= 0:
        raise ConfigError("--duration and --users must be positive")
    scenario = load_scenario(spec.scenario)[0] if spec.scenario else None
    life = Lifecycle(
        RunRequest(
            label=f"load-{scenario.name if scenario else sut_label(spec.sut, spec.config)}",
            out=spec.out,
            sut=spec.sut,
            config=spec.config,
            bugs=spec.bugs,
            database_url=spec.database_url,
            env=spec.env,
            seed=spec.seed,
            scenario=scenario.name if scenario else None,
            command=spec.command,
            extra={"load": {"users": spec.users, "workers": spec.workers, "duration_s": spec.duration_s}},
        ),
        listener,
    )
    triggers = life.sut.triggers()
    mix = parse_mix(spec.mix or life.sut.default_mix() or None, triggers)
    windows: list[FaultWindow] = for_sut(scenario, spec.seed, life.sut) if scenario is not None else []
    life.require(needs(windows), f"scenario {scenario.name!r}" if scenario else "the load run")
    check_links(life.sut, faulted_links(windows))
    life.schedule(w.describe() for w in windows)
    locusts = Supervisor(life.run_dir / "locust-processes")
    with proxied_links(life.sut, windows) as proxies, life as run:
        api = run.sut.saga_api()
        check_targets([("load", url) for url in api.service_urls().values()], run.sut.allowed_hosts())
        # The pools the mix draws are set up once, here, before Locust starts; their members'
        # captured values reach Locust through its environment. The baseline follows the setup.
        pools = sorted({p for n in mix for p in triggers[n].uses.values()})
        members: dict[str, list[dict[str, Any]]] = {}
        if pools:
            members = run.call(run.runner.setup_all(pools))
            run.call(run.runner.baseline())  # again: the members now exist
        sut_env = {
            "start": api.start,
            "plan": api.plan,
            "services": api.services,
            "status": api.status,
            "terminal": api.terminal,
            "mix": mix,
            "triggers": {n: {"request": dict(t.request), "uses": dict(t.uses)} for n, t in triggers.items()},
            "members": members,
        }
        env = {
            "SAGA_HARNESS_SUT": json.dumps(sut_env),
            "SAGA_HARNESS_DUPLICATES": str(spec.duplicates),
            "SAGA_HARNESS_RUN_DIR": str(run.run_dir),
        }
        processes = locust_specs(spec, run.run_dir, api.client_url, env)
        nemesis = Nemesis.for_sut(windows, run.history, run.sut, run.http, proxies)
        try:
            converge_s = run.call(_drive(run, spec, nemesis, locusts, processes))
        finally:
            locusts.stop()
        verdicts = run.judge()
    summary = {
        "users": spec.users,
        "workers": spec.workers,
        "duration_s": spec.duration_s,
        "locust": locust_summary(life.run_dir),
        "sagas_started": verdicts.stats.sagas_started,
        "by_outcome": verdicts.stats.by_outcome,
        "convergence_after_load_s": converge_s,
        "convergence_s": verdicts.stats.convergence_s,
    }
    (life.run_dir / "load.json").write_text(json.dumps(summary, indent=2) + "\n")
    if verdicts.status == "violated":
        workload = {
            "users": spec.users,
            "spawn_rate": spec.spawn_rate,
            "duration_s": spec.duration_s,
            "workers": spec.workers,
            "mix": spec.mix,
            "duplicates": spec.duplicates,
            "deadline_s": spec.deadline_s,
        }
        counterexample(
            "load",
            life,
            workload=workload,
            scenario=scenario.model_dump(mode="json") if scenario is not None else None,
            faults=[w.describe() for w in windows],
            findings=violated_keys(verdicts.findings),
        ).write(life.run_dir)
    return RunResult(life.run_dir, verdicts)


async def _drive(run: Run, spec: LoadSpec, nemesis: Nemesis, locusts: Supervisor, specs: list[ProcessSpec]) -> float:
    """Locust for ``spec.duration_s`` with the fault schedule; heal, learn the sagas it started, converge."""
    run.history.append(Phase("workload-start"))
    run.emit(PhaseStarted(run.elapsed(), "load"))
    await nemesis.apply_initial()
    t0 = time.monotonic()
    await asyncio.to_thread(locusts.start, specs)
    chaos = asyncio.create_task(nemesis.run())
    ticker = asyncio.create_task(report_faults(run, nemesis))
    master = specs[0].name
    try:
        while (await asyncio.to_thread(locusts.status))[master].alive:
            elapsed = time.monotonic() - t0
            run.emit(LoadCounts(run.elapsed(), min(elapsed, spec.duration_s), spec.duration_s, spec.users))
            if elapsed > spec.duration_s + 60:
                raise ScenarioError(
                    f"Locust did not stop {spec.duration_s + 60:.0f}s after starting; "
                    f"see {run.run_dir / 'locust-processes' / 'logs'}"
                )
            await asyncio.sleep(0.5)
        run.history.append(Phase("workload-end"))
        remaining = max((w.end_s for w in nemesis.windows), default=0) - (time.monotonic() - t0)
        await asyncio.wait_for(asyncio.shield(chaos), timeout=max(0.0, remaining) + 5)
    finally:
        ticker.cancel()
        await heal(run, nemesis, chaos)
    load_end = time.monotonic()
    # The sagas Locust started are in its shards of the history: converge waits for them too.
    # A start whose last answer never came and that named no saga id is looked up ([saga.lookup]).
    found: set[str] = set()
    unanswered: dict[str, Invoke] = {}
    invokes: dict[tuple[str, int], Invoke] = {}
    for entry in await asyncio.to_thread(lambda: list(read_entries(run.run_dir))):
        record = entry.record
        if isinstance(record, Invoke) and record.f == "start_saga" and record.key:
            invokes[(entry.process, record.op)] = record
        if not isinstance(record, Completion) or record.f != "start_saga" or not record.key:
            continue
        if record.saga_id and record.outcome != "info":
            run.runner.learn(record.saga_id, record.key)
            found.add(record.key)
        elif record.outcome == "info" and (entry.process, record.op) in invokes:
            unanswered[record.key] = invokes[(entry.process, record.op)]
    for key, invoke in unanswered.items():
        if key not in found:
            run.runner.learn_lost(key, invoke.trigger, invoke.request)
    settle = SETTLE_AFTER_FAULTS_S if nemesis.windows else 0.0
    try:
        await run.runner.converge(spec.deadline_s, settle_s=settle)
    finally:
        await nemesis.heal_all()  # the HTTP faults keyed on calls lasted while the run converged
        await nemesis.record_calls()
    seconds = round(time.monotonic() - load_end, 3)
    run.history.append(Phase("converged-after-load", {"seconds": seconds}))
    return seconds
