"""What the writers read from a run directory: the verdicts and the contract results.

The pacts and the fuzzing are sections of ``contracts.json``, written by the
contracts drivers. The events' validation is the ``contracts`` check of
``verdicts.json``; it is derived here, so every writer shows it the same way
whether or not ``contracts.json`` exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saga_harness.checkers.verdict import VERDICTS_FILE, Verdicts
from saga_harness.errors import HarnessError
from saga_harness.rundir import CONTRACT_SECTIONS, read_contracts

EVENTS_CHECK = "contracts"  # the checker whose stats are the events section


@dataclass(frozen=True)
class StoredRun:
    """A run directory's documents, as the writers use them."""

    verdicts: Verdicts | None  # None: the run checked contracts only
    contracts: dict[str, Any] = field(default_factory=dict)  # as contract_results gives them


def contract_results(run_dir: str | Path, verdicts: Verdicts | None) -> dict[str, Any]:
    """``pacts``, ``events`` and ``fuzz`` (those the run has) and ``ok`` for them all; empty when none."""
    doc = read_contracts(run_dir)
    check = verdicts.get(EVENTS_CHECK) if verdicts is not None else None
    if check is not None:  # the verdicts are the source: an older contracts.json may hold a stale copy
        doc["events"] = {"ok": check.ok, **check.stats}
    sections = {k: v for k, v in doc.items() if k in CONTRACT_SECTIONS and isinstance(v, dict)}
    if not sections:
        return {}
    return {**sections, "ok": all(bool(v.get("ok", True)) for v in sections.values())}


def read_stored(run_dir: str | Path) -> StoredRun:
    """The verdicts (when judged) and contract results of ``run_dir``.

    Raises :class:`~saga_harness.errors.HarnessError` when it holds neither, or one is damaged.
    """
    run_dir = Path(run_dir)
    verdicts = Verdicts.read(run_dir) if (run_dir / VERDICTS_FILE).is_file() else None
    contracts = contract_results(run_dir, verdicts)
    if verdicts is None and not contracts:
        raise HarnessError(
            f"{run_dir}: neither {VERDICTS_FILE} nor contract results; is it a saga-harness run directory? "
            f"(`saga-harness check {run_dir}` judges a recorded history again)"
        )
    return StoredRun(verdicts, contracts)
