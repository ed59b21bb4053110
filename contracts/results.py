"""``contracts.json``: the run directory's record of every contract check.

Three sections, each written by the step that produced it: ``pacts`` (provider
verification per interaction), ``events`` (CloudEvent validation by type) and
``fuzz`` (OpenAPI fuzzing per service). The report and JUnit read it back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILE = "contracts.json"


def read_contracts(run_dir: str | Path) -> dict[str, Any]:
    """The run's contract results (empty when it ran none)."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def write_section(
    run_dir: str | Path, section: str, data: dict[str, Any], verdicts: dict[str, Any] | None = None
) -> Path:
    """Set one section of ``contracts.json``, keeping the others, and rewrite ``junit.xml`` with it.

    ``verdicts``: the run's verdicts when the caller holds them (else read from ``verdicts.json``).
    """
    path = Path(run_dir) / FILE
    doc = read_contracts(run_dir)
    doc[section] = data
    doc["ok"] = all(bool(v.get("ok", True)) for k, v in doc.items() if isinstance(v, dict))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    # CI reads contract results as JUnit test cases too (beside the invariants, when the run has them).
    from saga_harness.reports.junit import write_junit

    if verdicts is None:
        verdicts_path = path.parent / "verdicts.json"
        verdicts = json.loads(verdicts_path.read_text(encoding="utf-8")) if verdicts_path.is_file() else {}
    write_junit(verdicts, path.parent / "junit.xml", contracts=doc)
    return path
