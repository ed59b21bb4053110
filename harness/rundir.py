"""A run directory: the names of its documents, and the readers and writers of the ones shared
between layers.

::

    runs/<run>/
      history.jsonl          the history (saga_harness.history); other writers' shards in history.d/
      verdicts.json          every checker's verdict (Verdicts.write / Verdicts.read)
      events.jsonl           every captured CloudEvent as it came over the wire, one per line (written when judged)
      counterexample.json    what a failing run needs to be run again (saga_harness.counterexample)
      contracts.json         contract results, one section per driver: pacts (verify), fuzz (fuzz)
      load.json              Locust's figures (the load driver)
      junit.xml, report.html the writers' (saga_harness.reports.write_reports), from the files above
      sut/                   the SUT's logs and data

The contracts drivers write their section of ``contracts.json`` here and the
writers read it, so neither imports the other. CloudEvent validation is not a
section of its own: it is the ``contracts`` check in ``verdicts.json``, and the
writers show it beside the pacts and the fuzzing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from saga_harness.checkers.verdict import VERDICTS_FILE
from saga_harness.errors import HarnessError
from saga_harness.history.log import MAIN as HISTORY_FILE
from saga_harness.history.log import SHARDS as HISTORY_SHARDS

CONTRACTS_FILE = "contracts.json"
EVENTS_FILE = "events.jsonl"
LOAD_FILE = "load.json"
JUNIT_FILE = "junit.xml"
REPORT_FILE = "report.html"
SUT_DIR = "sut"
CONTRACT_SECTIONS = ("pacts", "events", "fuzz")

__all__ = [
    "CONTRACTS_FILE",
    "CONTRACT_SECTIONS",
    "EVENTS_FILE",
    "HISTORY_FILE",
    "HISTORY_SHARDS",
    "JUNIT_FILE",
    "LOAD_FILE",
    "REPORT_FILE",
    "SUT_DIR",
    "VERDICTS_FILE",
    "read_contracts",
    "read_load",
    "write_contracts_section",
]


def _read_object(path: Path, what: str) -> dict[str, Any] | None:
    """The JSON object in ``path``, None when there is no such file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc}); {what}") from None
    if not isinstance(doc, dict):
        raise HarnessError(f"{path}: not a JSON object; {what}")
    return doc


def read_contracts(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``contracts.json`` (empty when it checked no contracts).

    Sections: ``pacts`` (provider verification per interaction), ``fuzz`` (OpenAPI
    fuzzing per service), each with its own ``ok``; ``ok`` for all of them.
    """
    doc = _read_object(
        Path(run_dir) / CONTRACTS_FILE, "run `saga-harness contracts verify` (or `fuzz`) again to rewrite it"
    )
    return doc or {}


def write_contracts_section(run_dir: str | Path, section: str, data: dict[str, Any]) -> Path:
    """Set one section of ``contracts.json``, keeping the others; return the file's path.

    Only ``contracts.json`` is written: ``junit.xml`` and ``report.html`` are the writers'
    (``saga_harness.reports.write_reports(run_dir)`` rebuilds them).
    """
    if section not in CONTRACT_SECTIONS:
        raise ValueError(f"unknown contracts.json section {section!r}; sections: {', '.join(CONTRACT_SECTIONS)}")
    path = Path(run_dir) / CONTRACTS_FILE
    doc = read_contracts(run_dir)
    doc[section] = data
    doc["ok"] = all(bool(v.get("ok", True)) for k, v in doc.items() if k in CONTRACT_SECTIONS and isinstance(v, dict))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{CONTRACTS_FILE}.tmp")  # atomic: a reader never sees half of it
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_load(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``load.json`` (Locust's figures), None when the run had no load."""
    return _read_object(Path(run_dir) / LOAD_FILE, "the load run was interrupted; run it again")
