"""The built wheel ships the harness's packages and the reference system as `sagashop`,
and never a top-level `fixtures` (PyPI's `fixtures` package owns that import name)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_top_level_names(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    [wheel] = tmp_path.glob("saga_harness-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert top == {"harness", "contracts", "chaos", "load", "reports", "sagashop", "tripbook"}
    assert "fixtures" not in top
    assert "sagashop/orchestrator/app.py" in names
    assert "saga-harness = harness.cli:main" in entry_points
    assert "[saga_harness.sut]" in entry_points and "[pytest11]" in entry_points
