"""Calibration: is every seeded bug caught, and is the correct system never flagged?

The plan is data. Each of the reference system's seeded bugs is declared once, in
``sagashop.bugs.BUGS``: what it breaks, the runs that expose it (catalogue
scenarios, or the runs below) and the checkers that must catch it; the runs without
a scenario (a plain run, a load run) are :data:`RUNS` below. A system described by a
``saga-harness.toml`` declares the same records in its ``[calibration]`` section
(``[calibration.runs.NAME]``, ``[[calibration.bugs]]``): :func:`described_plan`.
:func:`plan` and :func:`described_plan` turn them into jobs (:func:`merge` joins plans,
:func:`with_contention` adds a phase under CPU contention), :func:`calibrate` runs each
job with the drivers (``saga_harness.chaos.run.execute_scenario``, ``saga_harness.run.execute``,
``saga_harness.load.runner.execute_load``) in its own run directory, one seeded bug at a
time, and :func:`summarise` makes ``calibration.json``. Each job's progress comes as the
drivers' typed events.

A bug run *detects* its bug when at least one of the bug's expected checkers finds a
violation; a clean run is a *false positive* when any checker does. A check the run could
not support (its status ``inconclusive``: the machine was starved, say) is neither: it is
counted apart, as are the runs made under contention. A run that crashes (no verdict) is
run once more, and counts as an error if it crashes again.

Contention: :class:`Contention` starts busy-loop processes, each pinned to a core, through
the harness's one process supervisor, while the jobs marked with it run (all of them in one
phase, after the others, so no run is mislabelled), and stops them however the phase ends.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from saga_harness.adapters import load_sut
from saga_harness.chaos.run import execute_scenario
from saga_harness.chaos.scenario import CATALOGUE, DELIVERY_FAULTS, Scenario, catalogue, load_scenario
from saga_harness.chaos.schedule import on_link
from saga_harness.chaos.toxiproxy import close as close_toxiproxy
from saga_harness.checkers import DEFAULT
from saga_harness.checkers import checkers as registered_checkers
from saga_harness.config import CalibrationRunConfig, load_config
from saga_harness.errors import ConfigError, HarnessError, ScenarioError
from saga_harness.lifecycle import new_run_dir
from saga_harness.load.runner import LoadSpec, execute_load
from saga_harness.progress import Listener, ProgressEvent, ProgressState, ignore
from saga_harness.reports import write_reports
from saga_harness.reports.calibration import build_calibration_report
from saga_harness.run import RunResult, RunSpec, execute
from saga_harness.supervisor import ProcessSpec, Supervisor, install_exit_hooks, stop_all
from saga_harness.sut import LinkRouting
from sagashop.bugs import BUGS

REFERENCE = "reference"
# The bundled worked examples (`--examples`): systems described by a saga-harness.toml alone,
# in a source checkout's fixtures/ (they are not installed).
EXAMPLES = ("minishop", "hotelbus", "tripbook")
QUICK_SAGAS = 40  # sagas per scenario in --quick (scenarios with fewer keep theirs)
QUICK_SEED = 1
# --quick's scenarios for the bugs they expose (every usable scenario runs clean); a bug that
# none of them nor any of RUNS exposes brings in the scenarios that do.
QUICK_SCENARIOS = ("baseline", "duplicate-deliveries", "lost-results", "event-bus-killed", "flaky-payment")


@dataclass(frozen=True)
class PlainRun:
    """A plain run (``saga-harness run``, no faults) meant to expose some seeded bugs."""

    name: str
    sagas: int
    quick_sagas: int
    mix: str = ""
    concurrency: int = 20
    duplicates: float = 0.0
    deadline_s: float = 30.0
    quick: bool = True  # part of --quick

    def command(self, seed: int, quick: bool, bug: str | None) -> list[str]:
        args = ["run", "--sagas", str(self.quick_sagas if quick else self.sagas), "--seed", str(seed)]
        args += ["--concurrency", str(self.concurrency)]
        args += ["--mix", self.mix] if self.mix else []
        args += ["--duplicates", str(self.duplicates)] if self.duplicates else []
        return args + (["--bugs", bug] if bug else [])


@dataclass(frozen=True)
class LoadRun:
    """A Locust load run (``saga-harness load run``), optionally with a scenario, meant to expose bugs."""

    name: str
    users: int
    spawn_rate: float
    duration_s: float
    quick_duration_s: float
    mix: str = ""
    scenario: str | None = None
    duplicates: float = 0.1
    quick: bool = True  # part of --quick

    def command(self, seed: int, quick: bool, bug: str | None) -> list[str]:
        duration = self.quick_duration_s if quick else self.duration_s
        args = ["load", "run", "--users", str(self.users), "--spawn-rate", str(self.spawn_rate)]
        args += ["--duration", f"{duration:g}s", "--seed", str(seed), "--duplicates", str(self.duplicates)]
        args += ["--mix", self.mix] if self.mix else []
        args += ["--scenario", self.scenario] if self.scenario else []
        return args + (["--bugs", bug] if bug else [])


# The runs without a catalogue scenario that expose seeded bugs (a bug's ``exposed_by``
# names them, beside catalogue scenarios). Each also runs clean, as the bug runs'
# control, in the full calibration.
RUNS: tuple[PlainRun | LoadRun, ...] = (
    # Enough failing sagas that every seed has compensations with several steps to undo
    # (the default mix has 10% capture failures: 40 sagas could have none).
    PlainRun(
        "run-failures",
        sagas=200,
        quick_sagas=40,
        mix="ok=0.5,capture_fail=0.3,decline=0.1,out_of_stock=0.1",
    ),
    # A race for scarce stock needs concurrent sagas on a scarce SKU.
    PlainRun(
        "run-scarce",
        sagas=200,
        quick_sagas=100,
        mix="ok=0.5,capture_fail=0.2,scarce=0.3",
    ),
    LoadRun(
        "load-scarce",
        users=20,
        spawn_rate=20,
        duration_s=10,
        quick_duration_s=6,
        mix="ok=0.3,scarce=0.7",
    ),
    # Payment commits each capture but its answer is lost: the task queue retries it under load.
    # Not in --quick: duplicate-deliveries exposes the same bug there, and this run's 12 s fault
    # window would cost another 20 s (load-scarce keeps a load run in --quick).
    LoadRun(
        "load-lost-acknowledgement",
        users=10,
        spawn_rate=10,
        duration_s=10,
        quick_duration_s=6,
        scenario="lost-acknowledgement",
        quick=False,
    ),
)


def exposed_by(bug: str) -> set[str]:
    """The runs (catalogue scenarios and :data:`RUNS`) that expose the reference system's ``bug``."""
    return set(BUGS[bug].exposed_by)


def check_bug_runs() -> None:
    """Every run a seeded bug names exists (a catalogue scenario or one of :data:`RUNS`): a typo
    there would silently drop the bug from calibration."""
    known = {p.stem for p in CATALOGUE.glob("*.yaml")} | {r.name for r in RUNS}
    for bug in BUGS.values():
        unknown = sorted(set(bug.exposed_by) - known)
        if unknown:
            raise ConfigError(
                f"seeded bug {bug.name!r} (sagashop/bugs.py) names runs {unknown} that are neither catalogue "
                f"scenarios nor calibration runs; known: {', '.join(sorted(known))}"
            )
        if not bug.exposed_by or not bug.caught_by:
            raise ConfigError(f"seeded bug {bug.name!r} (sagashop/bugs.py) needs exposed_by and caught_by")


@dataclass(frozen=True)
class DescribedRun:
    """A ``[calibration.runs.NAME]`` of a described system: a plain run, or a chaos run of a scenario file."""

    name: str
    sagas: int
    quick_sagas: int
    concurrency: int = 20
    mix: str = ""
    duplicates: float = 0.0
    deadline_s: float = 30.0
    scenario: Path | None = None
    quick: bool = True


@dataclass(frozen=True)
class BugInfo:
    """A seeded bug of some system: what it breaks and the checkers, any one of which must catch it."""

    sut: str
    name: str
    breaks: str
    caught_by: tuple[str, ...]
    exposed_by: tuple[str, ...]

    @property
    def key(self) -> str:
        """Its name in ``calibration.json``: the reference system's bugs bare, a described system's
        ``"SYSTEM:BUG"`` (two systems may name a bug alike)."""
        return self.name if self.sut == REFERENCE else f"{self.sut}:{self.name}"


@dataclass(frozen=True)
class Job:
    """One run of the calibration: a scenario or a :data:`RUNS` entry (the reference system), or a
    described system's run, on one seed, clean or with one bug, maybe under contention."""

    kind: Literal["scenario", "run", "load"]
    name: str
    seed: int
    bug: str | None = None
    sagas: int | None = None  # scenario runs: the override of the scenario's count (None: the scenario's)
    quick: bool = False
    run: PlainRun | LoadRun | DescribedRun | None = None
    database_url: str | None = None  # only for the scenarios that require PostgreSQL
    sut: str = REFERENCE  # the system's name
    config: Path | None = None  # a described system's saga-harness.toml
    env: tuple[tuple[str, str], ...] = ()  # a described system's bug switches (--env)
    caught_by: tuple[str, ...] = ()  # the bug's checkers (empty: the reference's, from BUGS)
    contention: int = 0  # busy processes competing for the cores while it runs

    @property
    def target(self) -> str:
        return self.bug or "clean"

    @property
    def bug_key(self) -> str | None:
        """The bug's name in ``calibration.json`` (see :attr:`BugInfo.key`)."""
        if self.bug is None:
            return None
        return self.bug if self.sut == REFERENCE else f"{self.sut}:{self.bug}"

    @property
    def expected(self) -> tuple[str, ...]:
        """The checkers any one of which must flag this job's bug."""
        return self.caught_by or (BUGS[self.bug].caught_by if self.bug in BUGS else ())

    @property
    def dirname(self) -> str:
        base = f"{'bugs/' + self.bug if self.bug else 'clean'}/{self.name}-seed{self.seed}"
        base = base if self.sut == REFERENCE else f"{self.sut}/{base}"
        return base + (f"-busy{self.contention}" if self.contention else "")

    def command(self) -> str:
        """The command line that reproduces this run alone (contention aside)."""
        if isinstance(self.run, DescribedRun):
            args = _described_command(self)
        elif self.run is not None:
            args = self.run.command(self.seed, self.quick, self.bug)
        else:
            args = ["chaos", "run", self.name, "--seed", str(self.seed)]
            args += ["--sagas", str(self.sagas)] if self.sagas is not None else []
            args += ["--bugs", self.bug] if self.bug else []
            args += ["--database-url", self.database_url] if self.database_url else []
        return " ".join(shlex.quote(a) for a in ["saga-harness", *args])


def _shown(path: Path | None) -> str:
    """A path as a command line shows it: relative to the working directory when under it."""
    if path is None:
        return ""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _described_command(job: Job) -> list[str]:
    run = job.run
    assert isinstance(run, DescribedRun)
    sagas = run.quick_sagas if job.quick else run.sagas
    envs = [a for k, v in job.env for a in ("--env", f"{k}={v}")]
    if run.scenario is not None:
        args = ["chaos", "run", _shown(run.scenario), "--config", _shown(job.config), "--seed", str(job.seed)]
        return [*args, "--sagas", str(sagas), *envs]
    args = ["run", "--config", _shown(job.config), "--sagas", str(sagas), "--concurrency", str(run.concurrency)]
    args += ["--seed", str(job.seed)]
    args += ["--mix", run.mix] if run.mix else []
    args += ["--duplicates", f"{run.duplicates:g}"] if run.duplicates else []
    args += ["--deadline", f"{run.deadline_s:g}s"] if run.deadline_s != 30.0 else []
    return [*args, *envs]


@dataclass
class Plan:
    jobs: list[Job]
    seeds: list[int]
    quick: bool
    skipped: list[dict[str, str]] = field(default_factory=list)  # scenarios whose `requires` cannot be met
    bugs: dict[str, BugInfo] = field(default_factory=dict)  # every bug planned, by its key
    suts: list[str] = field(default_factory=lambda: [REFERENCE])  # the systems, in order
    contention: int = 0  # busy processes of the contention phase (0: none)


def _unmet(scenario: Scenario, links: set[str], database_url: str | None) -> str | None:
    """Why ``scenario`` cannot run on the reference system here, or None."""
    if "postgres" in scenario.requires and not database_url:
        return "requires the PostgreSQL backend (give --database-url)"
    wanted = {f.link for f in scenario.faults if on_link(f.kind)}
    wanted |= set(scenario.random.links) if scenario.random else set()
    missing = sorted(link for link in wanted if link not in links)
    if missing:
        return f"faults links the reference system does not have: {', '.join(missing)}"
    return None


def _reference_links(database_url: str | None) -> set[str]:
    with tempfile.TemporaryDirectory() as tmp:  # nothing is started: ports are only allocated
        sut = load_sut(Path(tmp) / "sut", sut="reference", database_url=database_url)
        return {link.name for link in sut.links()} if isinstance(sut, LinkRouting) else set()


def plan(seeds: int = 3, quick: bool = False, database_url: str | None = None) -> Plan:
    """The calibration's jobs: clean scenarios (and, in full, clean controls), then each bug's runs.

    Full: every catalogue scenario whose ``requires`` can be met, on seeds 1..``seeds``, clean
    and with each bug it exposes, and every :data:`RUNS` entry clean and with each of its bugs.
    ``quick``: seed 1 and at most :data:`QUICK_SAGAS` sagas a scenario; every usable scenario
    clean, and each bug through :data:`QUICK_SCENARIOS` and the short variants of the :data:`RUNS`
    marked ``quick`` (or, for a bug none of them exposes, what does). ``database_url``: PostgreSQL
    for the scenarios that require it (the others run on the default backend); without it they
    are skipped.
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1 (got {seeds}); each run needs a seed")
    check_bug_runs()
    seed_list = [QUICK_SEED] if quick else list(range(1, seeds + 1))
    links = _reference_links(database_url)
    usable, skipped = [], []
    for scenario, _path in catalogue():
        why = _unmet(scenario, links, database_url)
        if why:
            skipped.append({"scenario": scenario.name, "reason": why})
        else:
            usable.append(scenario)
    if quick:  # a soak takes minutes: the full calibration and make bench run it, --quick never
        usable = [s for s in usable if not s.soak]
    chosen, runs = usable, list(RUNS)  # the scenarios and runs for the bugs
    if quick:
        chosen = [s for s in usable if s.name in QUICK_SCENARIOS]
        runs = [r for r in RUNS if r.quick]
        covered = {b for b in BUGS if exposed_by(b) & {x.name for x in [*chosen, *runs]}}
        # A bug that --quick's own choice leaves out brings in what exposes it.
        chosen += [s for s in usable if s not in chosen and any(s.name in exposed_by(b) for b in set(BUGS) - covered)]
        runs += [r for r in RUNS if r not in runs and any(r.name in exposed_by(b) for b in set(BUGS) - covered)]

    def sagas(scenario: Scenario) -> int | None:
        return min(QUICK_SAGAS, scenario.workload.sagas) if quick else None

    def scenario_job(scenario: Scenario, seed: int, bug: str | None) -> Job:
        url = database_url if "postgres" in scenario.requires else None
        return Job("scenario", scenario.name, seed, bug, sagas(scenario), quick, database_url=url)

    def other_job(run: PlainRun | LoadRun, seed: int, bug: str | None) -> Job:
        kind: Literal["run", "load"] = "run" if isinstance(run, PlainRun) else "load"
        return Job(kind, run.name, seed, bug, quick=quick, run=run)

    jobs: list[Job] = []
    for seed in seed_list:
        jobs += [scenario_job(s, seed, None) for s in usable]  # every scenario the system can run, clean
        if not quick:  # the controls of the runs that expose bugs: the same run without the bug is green
            jobs += [other_job(r, seed, None) for r in runs]
    for bug in BUGS:
        for seed in seed_list:
            jobs += [scenario_job(s, seed, bug) for s in chosen if s.name in exposed_by(bug)]
            jobs += [other_job(r, seed, bug) for r in runs if r.name in exposed_by(bug)]
    infos = {
        name: BugInfo(REFERENCE, name, b.breaks, tuple(b.caught_by), tuple(b.exposed_by)) for name, b in BUGS.items()
    }
    return Plan(jobs, seed_list, quick, skipped, bugs=infos)


def described_plan(config: Path, seeds: int = 3, quick: bool = False) -> Plan:
    """The jobs of a system described by ``config`` (its ``[calibration]``): every run clean on seeds
    1..``seeds``, and each bug through the runs it names. ``quick``: seed 1, each run's ``quick_sagas``,
    the runs marked ``quick`` clean and each bug through its quick runs (a bug none of them exposes
    brings in what does)."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1 (got {seeds}); each run needs a seed")
    path = Path(config)
    cfg = load_config(path)
    if cfg.calibration is None:
        raise ConfigError(
            f"{path}: has no [calibration] section, so there is nothing to calibrate: add the runs "
            "([calibration.runs.NAME]: sagas, concurrency, mix, duplicates, deadline, scenario) and the "
            "seeded bugs ([[calibration.bugs]]: name, breaks, env, exposed_by, caught_by); see docs/config.md"
        )
    known = set(registered_checkers())
    for bug in cfg.calibration.bugs:
        unknown = sorted(set(bug.caught_by) - known)
        if unknown:
            raise ConfigError(
                f"{path}: [[calibration.bugs]] {bug.name!r}: caught_by names {unknown}, which are not checkers; "
                f"checkers: {', '.join(sorted(known))}"
            )
    runs = {name: _described_run(path, name, r) for name, r in cfg.calibration.runs.items()}
    seed_list = [QUICK_SEED] if quick else list(range(1, seeds + 1))
    chosen = [r for r in runs.values() if r.quick] if quick else list(runs.values())
    if quick:  # a bug that the quick runs leave out brings in the runs that expose it
        chosen += [
            r
            for r in runs.values()
            if r not in chosen
            and any(
                r.name in b.exposed_by and not set(b.exposed_by) & {c.name for c in chosen}
                for b in cfg.calibration.bugs
            )
        ]
    sut = cfg.name

    def job(run: DescribedRun, seed: int, bug: Any = None) -> Job:
        kind: Literal["scenario", "run"] = "scenario" if run.scenario is not None else "run"
        env = tuple(sorted(bug.env.items())) if bug is not None else ()
        caught = tuple(bug.caught_by) if bug is not None else ()
        name = bug.name if bug is not None else None
        return Job(kind, run.name, seed, name, quick=quick, run=run, sut=sut, config=path, env=env, caught_by=caught)

    jobs = [job(r, seed) for seed in seed_list for r in chosen]
    for bug in cfg.calibration.bugs:
        for seed in seed_list:
            jobs += [job(r, seed, bug) for r in chosen if r.name in bug.exposed_by]
    infos = {
        f"{sut}:{b.name}": BugInfo(sut, b.name, b.breaks, tuple(b.caught_by), tuple(b.exposed_by))
        for b in cfg.calibration.bugs
    }
    return Plan(jobs, seed_list, quick, bugs=infos, suts=[sut])


def _described_run(config: Path, name: str, r: CalibrationRunConfig) -> DescribedRun:
    scenario = None
    if r.scenario is not None:
        scenario = (config.parent / r.scenario).resolve()
        where = f"{config}: [calibration.runs.{name}] scenario = {r.scenario!r}"
        try:
            loaded, _ = load_scenario(scenario)
        except ScenarioError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        delivery = sorted({f.kind for f in loaded.faults if f.kind in DELIVERY_FAULTS})
        if delivery or (loaded.random and set(loaded.random.kinds) & set(DELIVERY_FAULTS)):
            raise ConfigError(
                f"{where}: its {', '.join(delivery) or 'random delivery'} faults need delivery hooks, which a "
                "system described by a saga-harness.toml has none of; use link faults (reset_peer on a push "
                "link loses its answers, so the sender delivers again) or process faults"
            )
    return DescribedRun(
        name,
        sagas=r.sagas,
        quick_sagas=r.quick_sagas or r.sagas,
        concurrency=r.concurrency,
        mix=r.mix_text(),
        duplicates=r.duplicates,
        deadline_s=r.deadline_s,
        scenario=scenario,
        quick=r.quick,
    )


def example_configs(root: Path | None = None) -> list[Path]:
    """The bundled worked examples' saga-harness.toml files (a source checkout's fixtures/, or the
    working directory's); a clear error where there are none (an installed wheel ships none)."""
    here = Path(__file__).resolve().parents[1] / "fixtures"
    for base in [root] if root is not None else [here, Path.cwd() / "fixtures"]:
        paths = [base / name / "saga-harness.toml" for name in EXAMPLES]
        if all(p.is_file() for p in paths):
            return paths
    raise ConfigError(
        "--examples: the worked examples (fixtures/minishop, fixtures/hotelbus, fixtures/tripbook) are in a source "
        "checkout, not in an installed harness; run from the checkout, or give each one's --config FILE"
    )


def merge(*plans: Plan) -> Plan:
    """One plan of several systems' (or one system's several) jobs, in order."""
    jobs = [j for p in plans for j in p.jobs]
    seeds = sorted({s for p in plans for s in p.seeds})
    suts = list(dict.fromkeys(s for p in plans for s in p.suts))
    bugs = {k: b for p in plans for k, b in p.bugs.items()}
    skipped = [s for p in plans for s in p.skipped]
    contention = max((p.contention for p in plans), default=0)
    return Plan(jobs, seeds, all(p.quick for p in plans), skipped, bugs, suts, contention)


def with_contention(plan_: Plan, busy: int = 2, seeds: int = 1) -> Plan:
    """``plan_`` and, after it, its jobs on its first ``seeds`` seeds again with ``busy`` busy processes
    pinned to the cores (:class:`Contention`), clean runs and bug runs alike."""
    if busy < 1:
        raise ConfigError(f"--contention must be at least 1 busy process (got {busy}); 0 means no contention phase")
    first = set(plan_.seeds[:seeds])
    again = [replace(j, contention=busy) for j in plan_.jobs if j.seed in first and not j.contention]
    return replace(plan_, jobs=[*plan_.jobs, *again], contention=busy)


@dataclass
class JobProgress:
    """A job in flight, for a live display: which job, and its run's progress so far."""

    job: Job
    index: int
    total: int
    state: ProgressState = field(default_factory=ProgressState)
    started: float = field(default_factory=time.monotonic)


# A busy loop: nothing but CPU (pinned to its core by the parent, as soon as it exists).
_BUSY = "while True:\n    pass\n"


class Contention:
    """``busy`` busy-loop processes, each pinned to one of this process's cores (Linux; elsewhere they only
    compete), started and stopped through the harness's process supervisor (so they go however the
    harness ends). A context manager."""

    def __init__(self, busy: int, log_dir: Path) -> None:
        self.busy = busy
        self.supervisor = Supervisor(log_dir)
        allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
        cores = sorted(allowed)
        self.cores = [cores[i % len(cores)] for i in range(busy)]

    def __enter__(self) -> Contention:
        self.supervisor.start(ProcessSpec(f"busy-{i}", [sys.executable, "-c", _BUSY]) for i in range(self.busy))
        try:
            if hasattr(os, "sched_setaffinity"):
                for name, core in zip(self.supervisor.names(), self.cores, strict=True):
                    os.sched_setaffinity(self.supervisor.pid(name), {core})
        except BaseException:
            self.supervisor.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.supervisor.stop()

    def pids(self) -> list[int]:
        """The busy processes alive now."""
        return self.supervisor.pids()

    def describe(self) -> dict[str, Any]:
        """What ran: how many busy processes, on which cores, their pids."""
        return {"busy": self.busy, "cores": self.cores, "pids": self.pids()}


def run_job(job: Job, run_dir: Path, listener: Listener = ignore) -> dict[str, Any]:
    """Run one job in ``run_dir`` with its driver; its record for ``calibration.json``.

    A run that crashes is recorded as an ``error`` (its traceback in ``calibration-error.txt``)
    so one broken run does not lose the rest of the calibration.
    """
    command = job.command()
    started = time.monotonic()
    record: dict[str, Any] = {
        "sut": job.sut,
        "kind": job.kind,
        "name": job.name,
        "bug": job.bug_key,
        "seed": job.seed,
        "contention": job.contention,
        "command": command,
    }
    try:
        result = _drive(job, run_dir, command, listener)
    except Exception as exc:  # noqa: BLE001 - recorded; the calibration then fails with it
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "calibration-error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        message = str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
        seconds = round(time.monotonic() - started, 2)
        return {
            **record,
            "verdict": "error",
            "error": message,
            "failed_checkers": [],
            "inconclusive_checkers": [],
            "detected": None,
            "seconds": seconds,
        }
    checks = result.verdicts.checks
    failed = sorted(c.name for c in checks if c.status == "violated")
    unsure = sorted(c.name for c in checks if c.status == "inconclusive")
    # Held back: violations a check found but would not stand by (the run could not support them).
    held = sorted(c.name for c in checks if c.status == "inconclusive" and c.inconclusive)
    verdict = "fail" if failed else "inconclusive" if unsure else "pass"
    detected = bool(set(failed) & set(job.expected)) if job.bug else None
    return {
        **record,
        "verdict": verdict,
        "failed_checkers": failed,
        "inconclusive_checkers": unsure,
        # Detected: a violation found by a checker meant to catch this bug (not merely by any checker).
        "detected": detected,
        # Not detected, yet a checker meant to catch it found it and held it back as inconclusive.
        "held_back": bool(job.bug) and not detected and bool(set(held) & set(job.expected)),
        "seconds": round(time.monotonic() - started, 2),
    }


def _drive(job: Job, run_dir: Path, command: str, listener: Listener) -> RunResult:
    """The job, by the driver of its kind."""
    if isinstance(job.run, DescribedRun):
        r, env = job.run, dict(job.env)
        sagas = r.quick_sagas if job.quick else r.sagas
        if r.scenario is not None:
            scenario, _ = load_scenario(r.scenario)
            return execute_scenario(
                scenario,
                seed=job.seed,
                sagas=sagas,
                out=run_dir,
                config=job.config,
                env=env,
                command=command,
                listener=listener,
            )
        spec = RunSpec(
            sagas=sagas,
            concurrency=r.concurrency,
            seed=job.seed,
            mix=r.mix,
            duplicates=r.duplicates,
            deadline_s=r.deadline_s,
            out=run_dir,
            config=job.config,
            env=env,
            command=command,
        )
        return execute(spec, listener)
    if job.kind == "scenario":
        scenario, _ = load_scenario(job.name)
        return execute_scenario(
            scenario,
            seed=job.seed,
            sagas=job.sagas,
            bugs=job.bug,
            out=run_dir,
            sut="reference",
            database_url=job.database_url,
            command=command,
            listener=listener,
        )
    if isinstance(job.run, PlainRun):
        r = job.run
        spec = RunSpec(
            sagas=r.quick_sagas if job.quick else r.sagas,
            concurrency=r.concurrency,
            seed=job.seed,
            mix=r.mix,
            duplicates=r.duplicates,
            deadline_s=r.deadline_s,
            out=run_dir,
            sut="reference",
            bugs=job.bug,
            command=command,
        )
        return execute(spec, listener)
    if isinstance(job.run, LoadRun):
        lr = job.run
        load_spec = LoadSpec(
            users=lr.users,
            spawn_rate=lr.spawn_rate,
            duration_s=lr.quick_duration_s if job.quick else lr.duration_s,
            mix=lr.mix,
            duplicates=lr.duplicates,
            scenario=lr.scenario,
            seed=job.seed,
            bugs=job.bug,
            out=run_dir,
            sut="reference",
            command=command,
        )
        return execute_load(load_spec, listener)
    raise AssertionError(job)  # the plans make no other job


def _clean_summary(clean: list[dict[str, Any]]) -> dict[str, Any]:
    busy = [r for r in clean if r.get("contention")]
    return {
        "runs": len(clean),
        "passed": sum(1 for r in clean if r.get("verdict") == "pass"),
        "false_positives": sum(1 for r in clean if r.get("verdict") == "fail"),
        "inconclusive": sum(1 for r in clean if r.get("verdict") == "inconclusive"),
        "errors": sum(1 for r in clean if r.get("verdict") == "error"),
        "under_contention": {
            "runs": len(busy),
            "false_positives": sum(1 for r in busy if r.get("verdict") == "fail"),
            "inconclusive": sum(1 for r in busy if r.get("verdict") == "inconclusive"),
            "errors": sum(1 for r in busy if r.get("verdict") == "error"),
        },
        "scenarios": sorted({r["name"] for r in clean}),
    }


def summarise(
    records: Iterable[dict[str, Any]], seconds: float, plan_: Plan | None = None, checkers: Iterable[str] = ()
) -> dict[str, Any]:
    """``calibration.json``: per bug detected_in / runs / checkers that flagged it / scenarios; clean runs
    (false positives and inconclusive runs apart, and those under contention); per system the same."""
    records = list(records)
    infos = (
        plan_.bugs
        if plan_ is not None and plan_.bugs
        else {
            name: BugInfo(REFERENCE, name, b.breaks, tuple(b.caught_by), tuple(b.exposed_by))
            for name, b in BUGS.items()
        }
    )
    bugs: dict[str, dict[str, Any]] = {}
    for key, info in infos.items():
        mine = [r for r in records if r.get("bug") == key]
        by_checker: dict[str, int] = {}
        for r in mine:
            for name in r.get("failed_checkers", []):
                by_checker[name] = by_checker.get(name, 0) + 1
        busy = [r for r in mine if r.get("contention")]
        bugs[key] = {
            "sut": info.sut,
            "detected_in": sum(1 for r in mine if r.get("detected")),
            "runs": len(mine),
            "checkers": sorted(by_checker),
            "scenarios": sorted({r["name"] for r in mine}),
            "expected_checkers": sorted(info.caught_by),
            "by_checker": dict(sorted(by_checker.items())),
            "errors": sum(1 for r in mine if r.get("verdict") == "error"),
            "inconclusive": sum(1 for r in mine if not r.get("detected") and r.get("verdict") == "inconclusive"),
            "held_back": sum(1 for r in mine if r.get("held_back")),
            "under_contention": {"runs": len(busy), "detected_in": sum(1 for r in busy if r.get("detected"))},
            "description": info.breaks,
        }
    clean_summary = _clean_summary([r for r in records if not r.get("bug")])

    def status(clean: dict[str, Any], mine: Iterable[dict[str, Any]]) -> str:
        # A bug run whose finding was held back (the machine was starved, say) neither detects nor
        # misses its bug: the calibration is then inconclusive, as a run is, unless something failed.
        mine = list(mine)
        if clean["false_positives"] or clean["errors"] or any(b["runs"] < 1 for b in mine):
            return "failed"
        if any(b["detected_in"] + b["held_back"] < b["runs"] for b in mine):
            return "failed"
        return "inconclusive" if any(b["detected_in"] < b["runs"] for b in mine) else "calibrated"

    suts: dict[str, dict[str, Any]] = {}
    for sut in plan_.suts if plan_ is not None else sorted({r.get("sut", REFERENCE) for r in records}):
        clean = _clean_summary([r for r in records if not r.get("bug") and r.get("sut", REFERENCE) == sut])
        keys = [k for k, b in bugs.items() if b["sut"] == sut]
        verdict = status(clean, (bugs[k] for k in keys))
        suts[sut] = {"clean": clean, "bugs": keys, "ok": verdict == "calibrated", "status": verdict}
    overall = status(clean_summary, bugs.values())
    out: dict[str, Any] = {
        "bugs": bugs,
        "clean": clean_summary,
        "suts": suts,
        "seconds": round(seconds, 1),
        "ok": overall == "calibrated",
        # calibrated: every bug detected in every run, no clean run flagged; inconclusive: the same,
        # except bug runs whose finding was held back; failed: a bug missed, a clean run flagged, an error.
        "status": overall,
    }
    if plan_ is not None:
        out.update(mode="quick" if plan_.quick else "full", seeds=plan_.seeds, skipped=plan_.skipped)
        out["contention"] = {"busy": plan_.contention} if plan_.contention else None
    out["checkers"] = list(checkers)
    out["runs"] = records
    return out


def prepare_out(out: Path | None) -> Path:
    """The calibration's directory; refuses one that already holds runs (histories append)."""
    if out is not None and (out / "runs").is_dir() and any((out / "runs").iterdir()):
        raise ConfigError(
            f"{out} already holds a calibration (its runs/ is not empty); runs would append to old "
            f"histories: give --out a new directory or remove that one"
        )
    return new_run_dir(out, "calibration")


def calibrate(
    plan_: Plan,
    out: Path,
    on_start: Callable[[JobProgress], None] | None = None,
    on_event: Callable[[JobProgress, ProgressEvent], None] | None = None,
    on_finish: Callable[[JobProgress, dict[str, Any]], None] | None = None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Run every job of ``plan_`` in ``out/runs/…``, ``jobs`` at a time; write ``calibration.json``
    and ``calibration.html``.

    ``on_start`` and ``on_finish`` bracket each job; ``on_event`` hears its progress events,
    ``progress.state`` being their fold so far. With ``jobs`` > 1 they are called from the jobs'
    threads. Each job has its own SUT, ports and run directory; only the machine is shared.
    The jobs marked with contention run last, together, while :class:`Contention`'s busy
    processes run (stopped whatever happens).
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1 (got {jobs})")
    started = time.monotonic()
    lock = threading.Lock()

    def one(index: int, job: Job) -> dict[str, Any]:
        progress = JobProgress(job, index, len(plan_.jobs))
        if on_start:
            on_start(progress)

        def listen(event: ProgressEvent) -> None:
            with lock:
                progress.state = progress.state.apply(event)
            if on_event:
                on_event(progress, event)

        run_dir = out / "runs" / job.dirname
        record = run_job(job, run_dir, listen)
        if record["verdict"] == "error":
            # An error is no verdict, and on a shared machine it is most often the machine (a port
            # taken between its allocation and the bind): keep the evidence beside, run once more.
            kept = run_dir.with_name(run_dir.name + "-error")
            run_dir.rename(kept)
            first = {"error": record["error"], "dir": str(kept.relative_to(out)), "seconds": record["seconds"]}
            progress.state = ProgressState()
            record = run_job(job, run_dir, listen)
            record["retried_after"] = first
        record["dir"] = str(run_dir.relative_to(out))
        if record["verdict"] != "error":
            path = write_reports(run_dir).html  # each run keeps its own report; calibration.html links to it
            record["report"] = str(path.relative_to(out)) if path else None
            # The history is the evidence (`saga-harness check` re-judges it); the SUT's SQLite
            # files are ~30 MB a run, which would make a full calibration gigabytes.
            shutil.rmtree(run_dir / "sut" / "data", ignore_errors=True)
        if on_finish:
            on_finish(progress, record)
        return record

    indexed = list(enumerate(plan_.jobs))
    quiet = [(i, j) for i, j in indexed if not j.contention]
    busy = [(i, j) for i, j in indexed if j.contention]
    records: dict[int, dict[str, Any]] = {}
    contention: dict[str, Any] | None = None
    try:
        records.update(_phase(one, quiet, jobs))
        if busy:
            with Contention(max(j.contention for _, j in busy), out / "contention") as cpu:
                contention = cpu.describe()
                records.update(_phase(one, busy, jobs))
                contention["alive_at_end"] = len(cpu.pids())  # each busy process ran the whole phase
    finally:
        # The embedded Toxiproxy server, if a link-fault scenario started one, goes with the calibration.
        close_toxiproxy()
    known = registered_checkers()
    judged = [c for c in DEFAULT if c in known] + [c for c in known if c not in DEFAULT]
    result = summarise([records[i] for i in sorted(records)], time.monotonic() - started, plan_, judged)
    if contention is not None:
        result["contention"] = contention
    (out / "calibration.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    build_calibration_report(out / "calibration.json")
    return result


def _phase(
    one: Callable[[int, Job], dict[str, Any]], todo: list[tuple[int, Job]], threads: int
) -> dict[int, dict[str, Any]]:
    """``one(i, job)`` for each job of a phase, ``threads`` at a time; the records by index."""
    if threads == 1 or len(todo) <= 1:
        return {i: one(i, job) for i, job in todo}
    return _in_parallel(one, todo, threads)


def _in_parallel(
    one: Callable[[int, Job], dict[str, Any]], jobs_: list[tuple[int, Job]], threads: int
) -> dict[int, dict[str, Any]]:
    """``one(i, job)`` for every job on ``threads`` threads; the records by index.

    The threads are daemons and this thread only waits: Ctrl-C (or a crash of a job's own code)
    stops every supervisor of the process — every job's SUT, Locust — and is raised here, instead
    of waiting for the other jobs to run to their end.
    """
    install_exit_hooks()  # from this (the main) thread: SIGINT then stops the jobs' processes too
    # Bug runs first: the longest runs are among them (a bug that keeps sagas from ending waits out
    # the deadline), and the short clean runs then fill the threads' ends.
    todo = sorted(jobs_, key=lambda item: item[1].bug is None)
    records: dict[int, dict[str, Any]] = {}
    failures: list[BaseException] = []
    lock = threading.Lock()
    idle = threading.Semaphore(0)

    def work() -> None:
        while True:
            with lock:
                if not todo or failures:
                    break
                index, job = todo.pop(0)
            try:
                record = one(index, job)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                with lock:
                    failures.append(exc)
                break
            with lock:
                records[index] = record
        idle.release()

    workers = [threading.Thread(target=work, name=f"calibrate-{n}", daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            while not idle.acquire(timeout=0.5):  # a timeout: Ctrl-C is heard between waits
                pass
    except BaseException:
        stop_all()
        raise
    if failures:
        stop_all()
        raise failures[0]
    return records
