"""A run, end to end: SUT up, workload, history, checks, run directory.

``execute`` is what ``saga-harness run`` (and the chaos and load runners, and
the pytest plugin) call; ``judge`` turns a run directory's history into
``verdicts.json`` and ``junit.xml``; ``check_history`` re-judges offline.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saga_harness.checkers import RunInfo, run_checks
from saga_harness.errors import ConfigError
from saga_harness.history import HistoryWriter, read_history, shard_path
from saga_harness.model import SagaModel
from saga_harness.runner import Progress, Runner, RunOptions
from saga_harness.sut import SystemUnderTest, load_sut
from saga_harness.workload import PlannedSaga, parse_mix, plan

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str | float, option: str = "duration") -> float:
    """``"30s"``, ``"2m"``, ``"500ms"``, ``"90"`` → seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(f"{option}: {text!r} is not a duration; write e.g. 30s, 2m or 500ms")
    value, unit = float(m.group(1)), m.group(2) or "s"
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def new_run_dir(out: Path | None, label: str, root: Path = Path("runs")) -> Path:
    """``out`` if given, else ``runs/<timestamp>-<label>`` (unique)."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        return out.resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{stamp}-{label}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{label}-{n}"
    path.mkdir(parents=True)
    return path.resolve()


@dataclass(frozen=True)
class RunSpec:
    sagas: int = 100
    concurrency: int = 20
    seed: int = 0
    mix: str | dict[str, float] = ""
    duplicates: float = 0.0
    deadline_s: float = 30.0
    out: Path | None = None
    config: Path | None = None
    bugs: str | None = None
    database_url: str | None = None
    command: str = ""
    scenario: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    verdicts: dict[str, Any]


def shutdown(sut: SystemUnderTest) -> None:
    """Stop the SUT; drop the PostgreSQL schemas a run created (the history keeps the evidence)."""
    try:
        sut.stop()
    finally:
        if getattr(sut, "database_url", None) and hasattr(sut, "drop_schemas"):
            sut.drop_schemas()  # type: ignore[attr-defined]


def model_with_triggers(sut: SystemUnderTest) -> SagaModel:
    model: SagaModel = sut.model()
    demanded = {n: t.expected_outcome for n, t in sut.triggers().items()}
    return model.model_copy(update={"triggers": {**demanded, **model.triggers}})


def workload_for(sut: SystemUnderTest, spec: RunSpec) -> list[PlannedSaga]:
    """The planned sagas (pure; raises ConfigError for a bad mix before anything starts)."""
    triggers = sut.triggers()
    default_mix = getattr(sut, "default_mix", lambda: {})()
    mix = parse_mix(spec.mix or default_mix or None, triggers)
    return plan(spec.sagas, triggers=triggers, mix=mix, duplicates=spec.duplicates, seed=spec.seed)


def drive(
    sut: SystemUnderTest,
    spec: RunSpec,
    record: Callable[..., None],
    on_progress: Callable[[Progress], None] | None = None,
    workload: list[PlannedSaga] | None = None,
) -> Runner:
    """Run the workload against a started SUT, recording into ``record``."""
    workload = workload if workload is not None else workload_for(sut, spec)
    runner = Runner(sut, record, RunOptions(concurrency=spec.concurrency, deadline_s=spec.deadline_s))

    async def main() -> None:
        task = asyncio.create_task(runner.run(workload))
        while not task.done():
            if on_progress:
                on_progress(runner.progress)
            await asyncio.sleep(0.25)
        await task
        if on_progress:
            on_progress(runner.progress)

    asyncio.run(main())
    return runner


def execute(spec: RunSpec, on_progress: Callable[[Progress], None] | None = None) -> RunResult:
    """Start the SUT, drive the workload, stop the SUT, judge the history."""
    label = spec.scenario or ("reference" if spec.config is None else Path(spec.config).stem)
    run_dir = new_run_dir(spec.out, label)
    sut = load_sut(
        run_dir / "sut",
        config=spec.config,
        bugs=spec.bugs,
        database_url=spec.database_url,
        extra_env=spec.extra_env or None,
    )
    model = model_with_triggers(sut)  # validate the model and the workload before starting anything
    workload = workload_for(sut, spec)
    started = time.time()
    with HistoryWriter(shard_path(run_dir), process="runner") as history:
        history(
            "meta",
            run_id=run_dir.name,
            seed=spec.seed,
            sut=sut.name,
            scenario=spec.scenario,
            bugs=spec.bugs,
            config=str(spec.config) if spec.config else None,
            command=spec.command,
            sagas=spec.sagas,
            concurrency=spec.concurrency,
            duplicates=spec.duplicates,
        )
        sut.start()
        try:
            drive(sut, spec, history, on_progress, workload)
        finally:
            shutdown(sut)
    who = identity(
        run_dir, sut, seed=spec.seed, scenario=spec.scenario, bugs=spec.bugs, command=spec.command, started=started
    )
    return RunResult(run_dir, judge(run_dir, model, who))


def identity(
    run_dir: Path,
    sut: SystemUnderTest,
    *,
    seed: int | None,
    scenario: str | None,
    bugs: str | None,
    command: str,
    started: float,
    **extra: Any,
) -> dict[str, Any]:
    """Who a run was: the fields every ``verdicts.json`` starts with."""
    return {
        "run_id": run_dir.name,
        "seed": seed,
        "sut": sut.name,
        "scenario": scenario,
        "bugs": bugs,
        "command": command,
        "started_at": started,
        "finished_at": time.time(),
        **extra,
    }


def judge(run_dir: Path, model: SagaModel, identity: dict[str, Any]) -> dict[str, Any]:
    """Check the run directory's history; write ``verdicts.json`` and ``junit.xml``."""
    from saga_harness.contracts.results import read_contracts, write_section
    from saga_harness.reports.junit import write_junit

    typed = run_checks(read_history(run_dir), model).with_run(RunInfo.from_json(identity))
    typed.write(run_dir)
    verdicts = typed.to_json()
    events = next((c for c in verdicts["checks"] if c["name"] == "contracts"), None)
    if events is not None:  # event validation by type, beside pacts and fuzzing; writes junit.xml too
        write_section(run_dir, "events", {"ok": events["ok"], **events.get("stats", {})}, verdicts)
    else:
        write_junit(verdicts, run_dir / "junit.xml", contracts=read_contracts(run_dir))
    return verdicts


def report(run_dir: Path) -> Path | None:
    """Build the run's HTML report; a failure to draw it never loses the verdicts."""
    from saga_harness.reports.html import build_report

    try:
        return build_report(run_dir)
    except Exception:  # noqa: BLE001 - the verdicts are already on disk
        import logging

        logging.getLogger(__name__).exception("could not build the report for %s", run_dir)
        return None


def check_history(path: Path, out: Path | None = None, config: Path | None = None) -> tuple[dict[str, Any], Path]:
    """Re-check a recorded history offline with the model of ``config`` (or the one the run used)."""
    run_dir = path if path.is_dir() else path.parent
    meta: dict[str, Any] = {}
    for entry in read_history(path):
        if entry.get("type") == "meta":
            meta = entry
        break
    config = config or (Path(meta["config"]) if meta.get("config") else None)
    if config is not None:
        from saga_harness.adapters.declarative import DeclarativeSystem

        sut: Any = DeclarativeSystem.from_file(config, run_dir / "sut")
    else:
        from saga_harness.adapters.reference import ReferenceSystem

        sut = ReferenceSystem(run_dir=run_dir / "sut")
    model = model_with_triggers(sut)
    out_dir = (out or run_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    who = {k: meta.get(k) for k in ("run_id", "seed", "sut", "scenario", "bugs", "command")}
    from saga_harness.reports.junit import write_junit

    typed = run_checks(read_history(path), model).with_run(RunInfo.from_json(who))
    typed.write(out_dir)
    verdicts = typed.to_json()
    write_junit(verdicts, out_dir / "junit.xml")
    return verdicts, out_dir
