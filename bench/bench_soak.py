"""The soak: the catalogue's ``soak`` scenario (2,500 sagas, 40 random faults on all eleven
processes within 90 s) on the reference system — clean on a quiet machine, clean with two busy
processes pinned to the cores (the same seed must give the same verdict), and with
``payment.double_charge_on_redelivery`` (still caught) — beside a plain run's throughput measured
in the same bench (machines differ: compare figures only with that baseline).

Writes ``bench/results/soak.json``: per run, the sagas, faults, violations and inconclusive checks
per check, the statuses, how long convergence and the evidence took to settle (the
``evidence-settled`` phase), the machine's load while it ran (``MachineLoad`` records) and the
monitor's own cost. ``BENCH_SOAK_SEED`` sets the seed (default 11). About 12 minutes on two cores.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from saga_harness.chaos.run import execute_scenario
from saga_harness.chaos.scenario import load_scenario
from saga_harness.lifecycle import Lifecycle, RunRequest
from saga_harness.supervisor import busy_loops

RESULTS = Path(__file__).parent / "results"
SEED = int(os.environ.get("BENCH_SOAK_SEED", "11"))
BUG = "payment.double_charge_on_redelivery"
BASELINE_SAGAS = 500


def _lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "history.jsonl").read_text().splitlines()]


def _phases(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last phase of each name, with its time (``mono``) beside its detail."""
    return {x["name"]: {**x["detail"], "_mono": x["mono"]} for x in lines if x["type"] == "phase"}


def _machine(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The machine's load over the run: medians and worst of the MachineLoad records."""
    loads = [x for x in lines if x["type"] == "machine"]

    def stat(key: str) -> dict[str, float] | None:
        values = sorted(x[key] for x in loads if x.get(key) is not None)
        if not values:
            return None
        return {"median": round(statistics.median(values), 2), "max": round(values[-1], 2)}

    return {
        "samples": len(loads),
        **{k: stat(k) for k in ("cpu_busy_pct", "sut_cpu_pct", "harness_cpu_pct", "loop_lag_p99_ms", "load1")},
    }


def figures(run_dir: Path, seconds: float) -> dict[str, Any]:
    """What one soak run shows, from its verdicts and its history."""
    verdicts = json.loads((run_dir / "verdicts.json").read_text())
    lines = _lines(run_dir)
    phases = _phases(lines)
    checks = verdicts["checks"]
    settled = phases.get("evidence-settled", {})
    healed = phases.get("healed", {}).get("_mono")
    ended = (phases.get("converged") or phases.get("deadline-passed") or {}).get("_mono")
    return {
        "status": verdicts.get("status", "ok" if verdicts["ok"] else "violated"),
        "statuses": {c["name"]: c.get("status", "ok" if c["ok"] else "violated") for c in checks},
        "sagas": verdicts["stats"]["starts"].get("sagas"),
        "faults": len(verdicts["faults"]),
        "violations": {c["name"]: len(c["violations"]) for c in checks if c["violations"]},
        "inconclusive": {
            c["name"]: len(c.get("inconclusive") or []) or 1 for c in checks if c.get("status") == "inconclusive"
        },
        "converge_after_healing_s": round(ended - healed, 2) if ended and healed else None,
        "deadline_extended": sum(1 for x in lines if x["type"] == "phase" and x["name"] == "deadline-extended"),
        "evidence_settled": {k: v for k, v in settled.items() if not k.startswith("_")},
        "events": sum(1 for x in lines if x["type"] == "event"),
        "machine": _machine(lines),
        "monitor": {k: v for k, v in phases.get("machine-monitor", {}).items() if not k.startswith("_")},
        "seconds": round(seconds, 1),
    }


def baseline(tmp: Path) -> dict[str, Any]:
    """A plain run's throughput on this machine, now: sagas from the first start to the last outcome."""
    request = RunRequest(label="soak-baseline", out=tmp / "baseline", sut="reference", seed=SEED)
    life = Lifecycle(request)
    workload = life.plan(BASELINE_SAGAS)
    t0 = time.monotonic()
    with life as run:
        run.call(run.runner.drive(workload, 24))
        run.call(run.runner.converge(120))
        run.judge()
    verdicts = json.loads((tmp / "baseline" / "verdicts.json").read_text())
    phases = _phases(_lines(tmp / "baseline"))
    took = phases["converged"]["_mono"] - phases["workload-start"]["_mono"]
    return {
        "sagas": BASELINE_SAGAS,
        "concurrency": 24,
        "sagas_per_s": round(BASELINE_SAGAS / took, 1),
        "status": verdicts.get("status", "ok" if verdicts["ok"] else "violated"),
        "seconds": round(time.monotonic() - t0, 1),
    }


def soak(tmp: Path, name: str, bugs: str | None = None, busy: int = 0) -> dict[str, Any]:
    scenario, _path = load_scenario("soak")
    out = tmp / name
    t0 = time.monotonic()
    if busy:
        with busy_loops(busy, tmp / f"{name}-busy"):
            execute_scenario(scenario, seed=SEED, bugs=bugs, out=out, command=f"bench soak {name}")
    else:
        execute_scenario(scenario, seed=SEED, bugs=bugs, out=out, command=f"bench soak {name}")
    return {"bugs": bugs, "busy_processes": busy, **figures(out, time.monotonic() - t0)}


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        result: dict[str, Any] = {"seed": SEED, "cores": os.cpu_count(), "baseline": baseline(tmp)}
        print(json.dumps({"baseline": result["baseline"]}), flush=True)
        for name, bugs, busy in (("clean", None, 0), ("double-charge", BUG, 0), ("clean-busy", None, 2)):
            result[name] = soak(tmp, name, bugs, busy)
            shown = {k: result[name][k] for k in ("status", "violations", "inconclusive", "seconds")}
            print(json.dumps({name: shown}), flush=True)
    clean, busy, bug = result["clean"], result["clean-busy"], result["double-charge"]
    result["target"] = {"clean_violations": 0, "same_verdict_quiet_and_busy": True, "double_charge_caught": True}
    result["ok"] = (
        not clean["violations"]
        and not busy["violations"]
        and clean["statuses"] == busy["statuses"]
        and bool(set(bug["violations"]) & {"idempotency", "conservation"})
    )
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"ok": result["ok"]}))


if __name__ == "__main__":
    main()
