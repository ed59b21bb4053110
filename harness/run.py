"""A plain run (``saga-harness run``): the workload alone, then convergence and the verdicts.

It is the smallest driver of the :class:`~saga_harness.lifecycle.Lifecycle`: plan the
workload, start sagas, wait for them to end, judge. Chaos and load runs are drivers
beside it (``saga_harness.chaos.run``, ``saga_harness.load.runner``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from saga_harness.checkers import Verdicts
from saga_harness.counterexample import violated_keys
from saga_harness.lifecycle import Lifecycle, RunRequest, counterexample
from saga_harness.progress import Listener, ignore


def sut_label(sut: str | None, config: Path | None) -> str:
    """How a run directory names the SUT: the plugin's name, the description's file stem, else ``reference``."""
    return sut or (Path(config).stem if config else "reference")


@dataclass(frozen=True)
class RunSpec:
    """A plain run: how many sagas, how (mix, duplicates, concurrency, seed), against which SUT."""

    sagas: int = 100
    concurrency: int = 20
    seed: int = 0
    mix: str | Mapping[str, float] = ""
    duplicates: float = 0.0
    deadline_s: float = 30.0
    out: Path | None = None
    sut: str | None = None
    config: Path | None = None
    bugs: str | None = None
    database_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    command: str = ""


@dataclass(frozen=True)
class RunResult:
    """A judged run: where it is, and its verdicts."""

    run_dir: Path
    verdicts: Verdicts


def execute(spec: RunSpec, listener: Listener = ignore) -> RunResult:
    """Start the SUT, drive the workload, wait for convergence, judge; the SUT is down on return."""
    life = Lifecycle(
        RunRequest(
            label=sut_label(spec.sut, spec.config),
            out=spec.out,
            sut=spec.sut,
            config=spec.config,
            bugs=spec.bugs,
            database_url=spec.database_url,
            env=spec.env,
            seed=spec.seed,
            command=spec.command,
            extra={"sagas": spec.sagas, "concurrency": spec.concurrency, "duplicates": spec.duplicates},
        ),
        listener,
    )
    workload = life.plan(spec.sagas, mix=spec.mix, duplicates=spec.duplicates)
    with life as run:
        run.call(run.runner.drive(workload, spec.concurrency))
        run.call(run.runner.converge(spec.deadline_s))
        verdicts = run.judge()
    if verdicts.status == "violated":
        mix = spec.mix if isinstance(spec.mix, str) else dict(spec.mix)
        workload = {
            "sagas": spec.sagas,
            "concurrency": spec.concurrency,
            "mix": mix,
            "duplicates": spec.duplicates,
            "deadline_s": spec.deadline_s,
        }
        counterexample("run", life, workload=workload, findings=violated_keys(verdicts.findings)).write(life.run_dir)
    return RunResult(life.run_dir, verdicts)
