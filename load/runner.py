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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saga_harness.chaos.guard import check_targets
from saga_harness.chaos.wiring import proxied_links
from saga_harness.errors import ConfigError, ScenarioError
from saga_harness.history import HistoryWriter, read_history, shard_path
from saga_harness.ports import free_port
from saga_harness.run import RunResult, identity, judge, model_with_triggers, new_run_dir, shutdown
from saga_harness.runner import SETTLE_AFTER_FAULTS_S, Runner, RunOptions
from saga_harness.supervisor import ProcessSpec, Supervisor
from saga_harness.sut import SystemUnderTest, load_sut
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
    config: Path | None = None
    database_url: str | None = None
    deadline_s: float = 60.0
    command: str = ""


@dataclass
class LoadProgress:
    phase: str = "starting"
    elapsed_s: float = 0.0
    duration_s: float = 0.0
    users: int = 0
    events: int = 0
    active_faults: list[str] = field(default_factory=list)


def saga_api(sut: SystemUnderTest) -> dict[str, Any]:
    """The saga API as the locustfile needs it (from the SUT's description)."""
    config = getattr(sut, "config", None)
    if config is not None:
        return {
            "start": config.saga.start.model_dump(),
            "status": config.saga.status.model_dump(),
            "terminal": dict(config.saga.terminal),
        }
    from saga_harness.models import reference_description

    saga = reference_description()["saga"]
    return {"start": saga["start"], "status": saga["status"], "terminal": saga["terminal"]}


def client_url(sut: SystemUnderTest, api: dict[str, Any]) -> str:
    if hasattr(sut, "client_url"):
        return sut.client_url()  # type: ignore[attr-defined]
    return sut.url(api["start"]["service"])  # type: ignore[attr-defined]


def locust_specs(spec: LoadSpec, run_dir: Path, host: str, env: dict[str, str]) -> list[ProcessSpec]:
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
        return [ProcessSpec("locust", base + common, env=env, cwd=str(run_dir))]
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
    )
    workers = [
        ProcessSpec(
            f"locust-worker-{i}",
            base + ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port), "--loglevel", "WARNING"],
            env=env,
            cwd=str(run_dir),
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


def execute_load(spec: LoadSpec, on_progress: Callable[[LoadProgress], None] | None = None) -> RunResult:
    """Start the SUT, run Locust (and a scenario), heal, converge, judge; write load.json."""
    if spec.duration_s <= 0 or spec.users <= 0:
        raise ConfigError("--duration and --users must be positive")
    run_dir = new_run_dir(spec.out, f"load-{spec.scenario or 'plain'}")
    sut = load_sut(run_dir / "sut", config=spec.config, bugs=spec.bugs, database_url=spec.database_url)
    model = model_with_triggers(sut)
    triggers = sut.triggers()
    mix = parse_mix(spec.mix or getattr(sut, "default_mix", lambda: {})() or None, triggers)
    api = saga_api(sut)
    windows: list[Any] = []
    scenario = None
    if spec.scenario:
        from saga_harness.chaos.scenario import load_scenario
        from saga_harness.chaos.schedule import build

        scenario, _ = load_scenario(spec.scenario)
        windows = build(scenario, spec.seed, [link.name for link in sut.links()], list(sut.services()))
    started = time.time()
    progress = LoadProgress(duration_s=spec.duration_s, users=spec.users)
    locusts = Supervisor(run_dir / "locust-processes")
    with HistoryWriter(shard_path(run_dir), process="runner") as history:
        history(
            "meta",
            run_id=run_dir.name,
            seed=spec.seed,
            sut=sut.name,
            scenario=spec.scenario,
            bugs=spec.bugs,
            command=spec.command,
            load={"users": spec.users, "workers": spec.workers, "duration_s": spec.duration_s},
        )
        converge_s = None
        with proxied_links(sut, windows) as proxies:
            try:
                sut.start()
                host = client_url(sut, api)
                allowed = getattr(getattr(sut, "config", None), "allowed_hosts", [])
                check_targets([("load", host)], allowed)
                env = {
                    "SAGA_HARNESS_SUT": json.dumps(
                        {**api, "mix": mix, "triggers": {n: dict(t.request) for n, t in triggers.items()}}
                    ),
                    "SAGA_HARNESS_DUPLICATES": str(spec.duplicates),
                    "SAGA_HARNESS_RUN_DIR": str(run_dir),
                }
                processes = locust_specs(spec, run_dir, host, env)
                converge_s = asyncio.run(
                    _drive(sut, spec, locusts, processes, windows, proxies, history, progress, on_progress, run_dir)
                )
            finally:
                locusts.stop()
                shutdown(sut)
    who = identity(
        run_dir, sut, seed=spec.seed, scenario=spec.scenario, bugs=spec.bugs, command=spec.command, started=started
    )
    verdicts = judge(run_dir, model, who)
    summary = {
        "users": spec.users,
        "workers": spec.workers,
        "duration_s": spec.duration_s,
        "locust": locust_summary(run_dir),
        "sagas_started": verdicts["stats"]["sagas_started"],
        "by_outcome": verdicts["stats"]["by_outcome"],
        "convergence_after_load_s": converge_s,
        "convergence_s": verdicts["stats"]["convergence_s"],
    }
    (run_dir / "load.json").write_text(json.dumps(summary, indent=2) + "\n")
    return RunResult(run_dir, verdicts)


async def _drive(
    sut: SystemUnderTest,
    spec: LoadSpec,
    locusts: Supervisor,
    specs: list[ProcessSpec],
    windows: list[Any],
    proxies: dict[str, Any],
    record: Callable[..., None],
    progress: LoadProgress,
    on_progress: Callable[[LoadProgress], None] | None,
    run_dir: Path,
) -> float:
    import aiohttp
    from saga_harness.chaos.nemesis import Nemesis

    settle = SETTLE_AFTER_FAULTS_S if windows else 0.0
    runner = Runner(sut, record, RunOptions(deadline_s=spec.deadline_s, settle_s=settle))
    await runner.open()
    try:
        async with aiohttp.ClientSession() as http:
            nemesis = Nemesis.for_sut(windows, record, sut, http, proxies)
            record("phase", name="workload-start")
            t0 = time.monotonic()
            await asyncio.to_thread(locusts.start, specs)
            chaos = asyncio.create_task(nemesis.run())
            progress.phase = "load"
            master = specs[0].name
            try:
                while locusts.status()[master].alive:
                    progress.elapsed_s = time.monotonic() - t0
                    progress.active_faults = [f"{w.kind} {w.target}" for w in nemesis.active.values()]
                    progress.events = runner.progress.events
                    if on_progress:
                        on_progress(progress)
                    if progress.elapsed_s > spec.duration_s + 60:
                        raise ScenarioError(
                            f"Locust did not stop {spec.duration_s + 60:.0f}s after starting; "
                            f"see {run_dir / 'locust-processes' / 'logs'}"
                        )
                    await asyncio.sleep(0.5)
                record("phase", name="workload-end")
                await asyncio.wait_for(
                    chaos, timeout=max(0.0, max((w.end_s for w in windows), default=0) - (time.monotonic() - t0)) + 5
                )
            finally:
                chaos.cancel()
                await nemesis.heal_all()
                record("phase", name="healed")
        load_end = time.monotonic()
        for entry in read_history(run_dir):
            if entry.get("type") == "ok" and entry.get("saga_id"):
                runner.saga_ids.setdefault(str(entry["saga_id"]), str(entry.get("key")))
        progress.phase = "converging"
        if on_progress:
            on_progress(progress)
        await runner.converge()
        record("phase", name="converged-after-load", seconds=round(time.monotonic() - load_end, 3))
    finally:
        await runner.close()
    return round(time.monotonic() - load_end, 3)
