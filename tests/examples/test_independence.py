"""The worked examples are what a user team would have written: they know nothing of the harness.

Every module under fixtures/minishop, fixtures/hotelbus and fixtures/tripbook
imports only the standard library, the web stack a small team would use, and
its own package; none imports saga_harness (or the reference system), not even
by name at run time. Every seeded bug a system declares has a calibration record
in the system's saga-harness.toml (switched on by its own variable, exposed by
declared runs), and minishop's and hotelbus's a test of their own that shows it.
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
SYSTEMS = ("minishop", "hotelbus", "tripbook")
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
def test_the_config_is_valid_and_calibrates_every_declared_bug(system: str) -> None:
    from saga_harness.config import load_config

    path = FIXTURES / system / "saga-harness.toml"
    calibration = load_config(path).calibration  # the harness's own validation: names, runs, mixes
    assert calibration is not None and not (FIXTURES / system / "saga-harness.draft.toml").exists()
    assert {b.name for b in calibration.bugs} == declared_bugs(system)
    assert len(calibration.bugs) >= 3
    for bug in calibration.bugs:
        assert bug.env == {f"{system.upper()}_BUGS": bug.name}
        assert set(bug.exposed_by) <= set(calibration.runs) and bug.caught_by, bug
    # [env] declares the switch off, so a run without --env runs the correct system.
    assert tomllib.loads(path.read_text())["env"][f"{system.upper()}_BUGS"] == ""
