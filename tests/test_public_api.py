"""What users may import, pinned: each public package's ``__all__`` (sorted as isort sorts:
CONSTANTS, then Classes, then functions), and ``import saga_harness`` stays cheap."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXPORTED = {
    "saga_harness": [
        "ConfigError",
        "HarnessError",
        "HistoryBuilder",
        "MissingAbilityError",
        "SagaModel",
        "ScenarioError",
        "SutError",
        "UnsafeTargetError",
        "Verdict",
        "Verdicts",
        "Violation",
        "read_history",
        "register",
        "run_checks",
    ],
    "saga_harness.checkers": [
        "DEFAULT",
        "Checker",
        "RunInfo",
        "RunStats",
        "Verdict",
        "Verdicts",
        "Violation",
        "checkers",
        "register",
        "run_checks",
        "verdict",
    ],
    "saga_harness.history": [
        "CapturedEvent",
        "Completion",
        "Entry",
        "Evidence",
        "FaultChange",
        "History",
        "HistoryWriter",
        "HttpCall",
        "Invoke",
        "KeyRecord",
        "MachineLoad",
        "Meta",
        "Phase",
        "Record",
        "SagaRecord",
        "Snapshot",
        "StatusSeen",
        "build_index",
        "from_line",
        "parse",
        "read_entries",
        "read_history",
        "shard_path",
        "to_line",
    ],
    "saga_harness.reports": [
        "ReportPaths",
        "build_calibration_report",
        "build_explore_report",
        "build_report",
        "build_run_index",
        "write_junit",
        "write_reports",
    ],
    "saga_harness.contracts": [
        "EventReport",
        "EventSummary",
        "SchemaRegistry",
        "bundled_registry",
        "validate_event",
    ],
    "saga_harness.chaos": [
        "Fault",
        "Scenario",
        "catalogue",
        "load_scenario",
    ],
    "saga_harness.load": [],
    "saga_harness.chaos.httpfaults": ["ACTIONS", "Call", "HttpFaults", "HttpRule", "RuleSet", "close", "server_url"],
}
# Packages whose names are imported on first use (saga_harness.lazy), and must stay so.
LAZY = ("saga_harness", "saga_harness.contracts", "saga_harness.chaos", "saga_harness.chaos.httpfaults")
# What `import saga_harness` may load of the project and of the heavy dependencies.
HEAVY = re.compile(r"^(pydantic|jinja2|jsonschema|referencing|yaml|httpx|rich|orjson|saga_harness\.(?!lazy$))")


def _isort_key(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("package", sorted(EXPORTED))
def test_exported_members_are_pinned_and_sorted(package):
    module = importlib.import_module(package)
    assert module.__all__ == EXPORTED[package]
    assert module.__all__ == sorted(module.__all__, key=_isort_key)
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)  # every exported name resolves
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(EXPORTED[package])


@pytest.mark.parametrize("package", LAZY)
def test_lazy_exports_are_what_type_checkers_see(package):
    """The runtime table (_WHERE) and the ``if TYPE_CHECKING:`` imports name the same members in
    the same modules, and each member is defined where the table says (or re-exported from there)."""
    module = importlib.import_module(package)
    where = module._WHERE
    assert sorted(where) == sorted(module.__all__)
    init = Path(module.__file__)
    seen: dict[str, str] = {}
    for node in ast.walk(ast.parse(init.read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), ast.dump(stmt)
                seen.update({alias.name: str(stmt.module) for alias in stmt.names})
    assert seen == where
    for name, home in where.items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nope'"):
        module.nope  # noqa: B018


def test_import_saga_harness_is_cheap():
    code = "import json, sys; import saga_harness; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = [m for m in json.loads(out.stdout) if HEAVY.match(m)]
    assert loaded == [], f"`import saga_harness` loads {loaded}: export them lazily (saga_harness.lazy)"


def test_a_lazy_export_is_imported_on_first_use():
    code = (
        "import sys, saga_harness\n"
        "assert 'saga_harness.checkers' not in sys.modules\n"
        "saga_harness.run_checks\n"
        "assert 'saga_harness.checkers' in sys.modules and 'run_checks' in vars(saga_harness)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
