"""``saga-harness replay FILE``: run a failing run again from its counterexample."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.markup import escape
from saga_harness.cli import app
from saga_harness.cli.conclude import conclude
from saga_harness.cli.display import ProgressDisplay, console, elapsed_since
from saga_harness.cli.options import command_line


@app.command("replay")
def replay(
    file: Path = typer.Argument(..., help="a counterexample.json, or the run directory of a failing run"),
    out: Path = typer.Option(None, "--out", help="run directory (default runs/TIME-LABEL)"),
) -> None:
    """Run a failing run again — the same SUT, seed, bugs, workload and faults (HTTP faults hit the same
    calls) — and say whether the same findings came back (``replay.json`` in the new run directory).

    Exit status: as the new run's — 0 every check holds (the failure did not come back), 1 a violation
    is proved, 3 inconclusive; 2 a usage error (not a counterexample, an unknown driver).
    """
    # Imported here: `saga-harness --help` should not load the run machinery.
    from saga_harness.counterexample import file_sha256, load, violated_keys
    from saga_harness.errors import ConfigError, ScenarioError

    cx = load(file)
    if cx.config and file_sha256(cx.config) != cx.config_sha256:
        console.print(
            f"warning: {escape(cx.config)} changed since the counterexample was written (or is gone): "
            "the system replayed may not be the one that failed",
            highlight=False,
        )
    started = time.monotonic()
    config = Path(cx.config) if cx.config else None
    common = {"bugs": cx.bugs, "sut": cx.sut, "config": config, "env": cx.env, "database_url": cx.database_url}
    with ProgressDisplay() as display:
        if cx.driver in ("chaos", "explore"):
            from pydantic import ValidationError
            from saga_harness.chaos.run import execute_scenario
            from saga_harness.chaos.scenario import Scenario

            try:
                scenario = Scenario.model_validate(cx.scenario or {})
            except ValidationError as exc:
                raise ScenarioError(f"{file}: its scenario is not valid here: {exc}") from None
            result = execute_scenario(
                scenario,
                seed=cx.seed,
                sagas=cx.workload.get("sagas"),
                out=out,
                command=command_line(),
                listener=display,
                **common,
            )
        elif cx.driver == "run":
            from saga_harness.run import RunSpec, execute

            w = cx.workload
            spec = RunSpec(
                sagas=int(w.get("sagas", 100)),
                concurrency=int(w.get("concurrency", 20)),
                seed=cx.seed,
                mix=w.get("mix") or "",
                duplicates=float(w.get("duplicates", 0.0)),
                deadline_s=float(w.get("deadline_s", 30.0)),
                out=out,
                command=command_line(),
                **common,
            )
            result = execute(spec, display)
        elif cx.driver == "load":
            import tempfile

            import yaml
            from saga_harness.load.runner import LoadSpec, execute_load

            w = cx.workload
            scenario_file = None
            if cx.scenario:  # the scenario as it was, wherever its file is now
                scenario_file = Path(tempfile.mkdtemp(prefix="saga-replay-")) / f"{cx.scenario['name']}.yaml"
                scenario_file.write_text(yaml.safe_dump(cx.scenario, sort_keys=False))
            spec = LoadSpec(
                users=int(w.get("users", 20)),
                spawn_rate=float(w.get("spawn_rate", 10.0)),
                duration_s=float(w.get("duration_s", 20.0)),
                workers=int(w.get("workers", 0)),
                mix=str(w.get("mix") or ""),
                duplicates=float(w.get("duplicates", 0.1)),
                deadline_s=float(w.get("deadline_s", 60.0)),
                scenario=str(scenario_file) if scenario_file else None,
                seed=cx.seed,
                out=out,
                command=command_line(),
                **common,
            )
            result = execute_load(spec, display)
        else:
            raise ConfigError(f"{file}: a counterexample of driver {cx.driver!r}, which this version cannot replay")
    status = conclude(result.verdicts, result.run_dir)
    now = violated_keys(result.verdicts.findings)
    missing = sorted(set(cx.findings) - set(now))
    new = sorted(set(now) - set(cx.findings))
    reproduced = not missing and not new and bool(cx.findings)
    summary = {"counterexample": str(Path(file).resolve()), "reproduced": reproduced, "missing": missing, "new": new}
    (result.run_dir / "replay.json").write_text(json.dumps(summary, indent=2) + "\n")
    if reproduced:
        console.print(f"replay: reproduced — the same {len(now)} finding(s) came back", highlight=False)
    else:
        console.print(f"replay: not reproduced — {len(missing)} finding(s) did not come back", highlight=False)
        for key in missing:
            console.print(f"  missing: {escape(key)}", highlight=False)
        for key in new:
            console.print(f"  new: {escape(key)}", highlight=False)
    console.print(f"replay finished in {elapsed_since(started)}", highlight=False)
    raise typer.Exit(status)
