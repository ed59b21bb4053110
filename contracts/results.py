"""Transitional: ``contracts.json`` is read and written by :mod:`saga_harness.rundir` now.

Kept only until its last callers (contracts/verify.py, contracts/fuzz.py,
cli/demo.py, run.py) call :func:`saga_harness.rundir.write_contracts_section`
and :func:`saga_harness.reports.write_reports`; then delete this module. It no
longer rewrites ``junit.xml``: the writers own it (contracts must not import reports).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from saga_harness.rundir import CONTRACTS_FILE as FILE
from saga_harness.rundir import read_contracts, write_contracts_section

__all__ = ["FILE", "read_contracts", "write_section"]


def write_section(run_dir: str | Path, section: str, data: dict[str, Any], verdicts: object = None) -> Path:
    """Deprecated: :func:`saga_harness.rundir.write_contracts_section` (``verdicts`` is ignored)."""
    return write_contracts_section(run_dir, section, data)
