"""What saga-harness's pytest plugin costs every pytest start-up in a venv that has it installed.

The plugin is registered through the ``pytest11`` entry point, so pytest imports it in *every* project
of that venv, saga tests or not. Measured the way a user pays it, in the same run: ``pytest
--collect-only`` in a project with no test (start-up, plugins loaded, nothing collected) with the
plugin, and with it blocked (``-p no:saga_harness``) as the baseline; the median of
``BENCH_PLUGIN_RUNS`` (default 15) alternating runs of each, and the plugin module's own import
time (``python -X importtime``). Target: ≤ 0.2 s added.
Writes ``bench/results/plugin_import.json``. A machine-speed probe (plain ``json.loads`` rate) is in
the same file, so figures from different machines can be compared.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
RUNS = int(os.environ.get("BENCH_PLUGIN_RUNS", "15"))
TARGET_S = 0.2


def _timed(argv: list[str], cwd: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, cwd=cwd)
    if proc.returncode not in (0, 5):  # 5: no tests collected, as meant
        raise SystemExit(f"bench_plugin_import: {argv} failed: {proc.stderr.decode()[-2000:]}")
    return time.perf_counter() - t0


def _import_us(module: str) -> int:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import pytest; import {module}"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    for line in out.splitlines():
        if line.rstrip().endswith(f"| {module}"):
            return int(line.split("|")[1])
    return -1


def probe() -> dict[str, float]:
    """The machine's speed at plain JSON parsing, in the same run."""
    doc = json.dumps({"k": list(range(100)), "s": "x" * 500})
    t0 = time.perf_counter()
    for _ in range(20_000):
        json.loads(doc)
    return {"json_loads_per_s": round(20_000 / (time.perf_counter() - t0))}


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    with_plugin, without = [], []
    with tempfile.TemporaryDirectory() as empty:  # a project with no tests: start-up alone
        for _ in range(RUNS):
            with_plugin.append(_timed(base, empty))
            without.append(_timed([*base, "-p", "no:saga_harness"], empty))
    added = statistics.median(with_plugin) - statistics.median(without)
    figures = {
        "command": "python -m bench plugin_import",
        "runs": RUNS,
        "pytest_startup_with_plugin_s": round(statistics.median(with_plugin), 3),
        "pytest_startup_without_plugin_s": round(statistics.median(without), 3),
        "added_s": round(added, 3),
        "plugin_module_import_us": _import_us("saga_harness.pytest_plugin"),
        "target_added_s": TARGET_S,
        "meets_target": added <= TARGET_S,
        "probe": probe(),
    }
    (RESULTS / "plugin_import.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
