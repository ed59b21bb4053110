"""Determinism: the same seed gives the same verdict — the status of every check — in repeated
runs of the reference system under faults (the catalogue's ``mixed-random``: five random faults
of mixed kinds, drawn from the seed, while 150 sagas run).

Writes ``bench/results/determinism.json``: each run's statuses, violations and time, and whether
they all agree. ``BENCH_DETERMINISM_RUNS`` (default 20), ``BENCH_DETERMINISM_SEED`` (default 7),
``BENCH_DETERMINISM_SCENARIO`` (default mixed-random). About 15 minutes on two cores.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from saga_harness.chaos.run import execute_scenario
from saga_harness.chaos.scenario import load_scenario

RESULTS = Path(__file__).parent / "results"
RUNS = int(os.environ.get("BENCH_DETERMINISM_RUNS", "20"))
SEED = int(os.environ.get("BENCH_DETERMINISM_SEED", "7"))
SCENARIO = os.environ.get("BENCH_DETERMINISM_SCENARIO", "mixed-random")


def one(tmp: Path, i: int) -> dict[str, Any]:
    scenario, _path = load_scenario(SCENARIO)
    out = tmp / f"run-{i:02d}"
    t0 = time.monotonic()
    execute_scenario(scenario, seed=SEED, out=out, command=f"bench determinism {i}")
    verdicts = json.loads((out / "verdicts.json").read_text())
    checks = verdicts["checks"]
    settled = next(
        (
            json.loads(x)["detail"]
            for x in (out / "history.jsonl").read_text().splitlines()
            if '"evidence-settled"' in x and '"type":"phase"' in x
        ),
        {},
    )
    return {
        "statuses": {c["name"]: c.get("status", "ok" if c["ok"] else "violated") for c in checks},
        "violations": {c["name"]: len(c["violations"]) for c in checks if c["violations"]},
        "faults": [f["id"] for f in verdicts["faults"]],
        "drained": settled.get("drained"),
        "waited_s": settled.get("waited_s"),
        "seconds": round(time.monotonic() - t0, 1),
    }


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(RUNS):
            runs.append(one(Path(tmp), i))
            print(f"[{i + 1}/{RUNS}] {json.dumps(runs[-1]['statuses'])} {runs[-1]['seconds']}s", flush=True)
    verdicts = Counter(json.dumps(r["statuses"], sort_keys=True) for r in runs)
    schedules = Counter(json.dumps(r["faults"]) for r in runs)
    result = {
        "scenario": SCENARIO,
        "seed": SEED,
        "runs": RUNS,
        "cores": os.cpu_count(),
        "distinct_verdicts": len(verdicts),
        "verdicts": {k: n for k, n in verdicts.items()},
        "same_schedule": len(schedules) == 1,
        "same_verdict": len(verdicts) == 1,
        "violations": sum(sum(r["violations"].values()) for r in runs),
        "all_drained": all(r["drained"] for r in runs),
        "per_run": runs,
        "target": {"same_verdict": True, "runs": 20},
    }
    result["ok"] = result["same_verdict"] and result["same_schedule"] and RUNS >= 20
    (RESULTS / "determinism.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("same_verdict", "distinct_verdicts", "violations", "ok")}))


if __name__ == "__main__":
    main()
