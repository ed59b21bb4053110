"""Run the ``saga-harness`` console script as a user would: a child process, a clean env."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "saga-harness"


def saga_harness(*args: str, cwd: Path, timeout: float = 600, columns: int = 200) -> subprocess.CompletedProcess:
    """``saga-harness ARGS`` in ``cwd``; rich's tables get ``columns`` to lay out in."""
    return subprocess.run(
        [str(BIN), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"COLUMNS": str(columns), "PATH": "/usr/bin:/bin"},
    )
