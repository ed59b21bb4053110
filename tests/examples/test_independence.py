"""The worked examples are what a user team would have written: they know nothing of the harness.

Every module under fixtures/minishop and fixtures/hotelbus imports only the
standard library, the web stack a small team would use, and its own package;
none imports saga_harness (or the reference system), not even by name at run
time. Every seeded bug a system declares has a test here that shows it, and a
calibration record in the system's draft saga-harness config.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HERE = Path(__file__).resolve().parent
SYSTEMS = ("minishop", "hotelbus")
THIRD_PARTY = {"fastapi", "starlette", "pydantic", "uvicorn", "httpx"}


def modules(system: str) -> list[Path]:
    found = sorted((FIXTURES / system).rglob("*.py"))
    assert found, f"no modules under fixtures/{system}"
    return found


def imported(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (relative imports count as its own package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(path.relative_to(FIXTURES).parts[0] if node.level else (node.module or "").split(".")[0])
    return names


@pytest.mark.parametrize("system", SYSTEMS)
def test_no_module_imports_the_harness(system: str) -> None:
    for path in modules(system):
        names = imported(path)
        assert not {n for n in names if n.startswith(("saga_harness", "harness", "sagashop"))}, path
        # Not even through importlib with a string:
        assert "saga_harness" not in path.read_text(), path


@pytest.mark.parametrize("system", SYSTEMS)
def test_modules_import_only_the_stdlib_the_web_stack_and_themselves(system: str) -> None:
    allowed = set(sys.stdlib_module_names) | THIRD_PARTY | {system, "__future__"}
    for path in modules(system):
        assert imported(path) <= allowed, (path, imported(path) - allowed)


def declared_bugs(system: str) -> set[str]:
    """The keys of ``BUGS`` in ``<system>/bugs.py``, read without importing the system."""
    tree = ast.parse((FIXTURES / system / "bugs.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "BUGS":
            return set(ast.literal_eval(node.value))
    raise AssertionError(f"fixtures/{system}/bugs.py declares no BUGS")


@pytest.mark.parametrize(("system", "test_file"), [("minishop", "test_minishop.py"), ("hotelbus", "test_hotelbus.py")])
def test_every_declared_bug_has_a_test_that_shows_it(system: str, test_file: str) -> None:
    tested = set(re.findall(r'parametrize\("buggy_\w+", \["([^"]+)"\]', (HERE / test_file).read_text()))
    assert declared_bugs(system) == tested
    assert len(tested) >= 3


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_draft_config_parses_and_calibrates_every_declared_bug(system: str) -> None:
    draft = tomllib.loads((FIXTURES / system / "saga-harness.draft.toml").read_text())
    records = draft["calibration"]["bugs"]
    assert {r["name"] for r in records} == declared_bugs(system)
    runs = set(draft["calibration"]["runs"])
    for record in records:
        assert record["env"] == {f"{system.upper()}_BUGS": record["name"]}
        assert record["exposed_by"] and set(record["exposed_by"]) <= runs, record
        assert record["caught_by"], record
