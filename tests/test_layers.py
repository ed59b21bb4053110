"""Imports point downwards only: every import of every module of the harness and of the bundled
systems (module level and inside functions) is judged against the layer table below.

    front ends  cli, pytest_plugin, calibration, demo        may import anything
    drivers     chaos, contracts, load                       core, system, lifecycle, drivers
                                                             (chaos and contracts not load; contracts not chaos)
    writers     reports                                      core, writers
    lifecycle   lifecycle, run, runner                       core, system, lifecycle
    system      config, sut, adapters, supervisor, preload, ports, sink   core, system
    core        errors, pointer, model, models, history, checkers, workload, progress,
                rundir, durations, lazy, testing, counterexample   core
    ---
    fixtures    sagashop, tripbook, … (fixtures/*)           nothing of saga_harness

Nothing imports the writers or the front ends but the front ends. The ``contracts``
checker reaches the core through the ``saga_harness.checkers`` entry point (dynamic,
not an import).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where each installed package's source lives (pyproject's package-dir).
SOURCES = {
    "saga_harness": ROOT / "harness",
    "saga_harness.chaos": ROOT / "chaos",
    "saga_harness.contracts": ROOT / "contracts",
    "saga_harness.load": ROOT / "load",
    "saga_harness.reports": ROOT / "reports",
}
FIXTURES = ROOT / "fixtures"

# -- the rule table ------------------------------------------------------------------
CORE, SYSTEM, LIFECYCLE, WRITERS, DRIVERS, FRONT, FIXTURE = (
    "core",
    "system",
    "lifecycle",
    "writers",
    "drivers",
    "front ends",
    "fixtures",
)
# A module's layer is its longest listed prefix's (whole dotted parts); the package
# itself only by its exact name, so a new module must be placed here before it is judged.
PLACES: dict[str, str] = {
    "saga_harness": CORE,  # its __init__: lazy exports of core names
    **{
        f"saga_harness.{m}": CORE
        for m in (
            "errors",
            "pointer",
            "model",
            "models",
            "history",
            "checkers",
            "workload",
            "progress",
            "rundir",
            "durations",
            "lazy",
            "testing",
            "startplan",
            "counterexample",
        )
    },
    **{f"saga_harness.{m}": SYSTEM for m in ("config", "sut", "adapters", "supervisor", "preload", "ports", "sink")},
    **{f"saga_harness.{m}": LIFECYCLE for m in ("lifecycle", "run", "runner")},
    "saga_harness.reports": WRITERS,
    **{f"saga_harness.{m}": DRIVERS for m in ("chaos", "contracts", "load")},
    **{f"saga_harness.{m}": FRONT for m in ("cli", "pytest_plugin", "calibration", "demo")},
}
MAY_IMPORT: dict[str, frozenset[str]] = {
    FIXTURE: frozenset({FIXTURE}),
    CORE: frozenset({CORE}),
    SYSTEM: frozenset({CORE, SYSTEM}),
    LIFECYCLE: frozenset({CORE, SYSTEM, LIFECYCLE}),
    WRITERS: frozenset({CORE, WRITERS}),
    DRIVERS: frozenset({CORE, SYSTEM, LIFECYCLE, DRIVERS}),
    FRONT: frozenset({CORE, SYSTEM, LIFECYCLE, WRITERS, DRIVERS, FRONT, FIXTURE}),
}
# Exceptions to MAY_IMPORT, by module prefix (importer, imported): allowed or forbidden, and why.
ALSO_ALLOWED: dict[tuple[str, str], str] = {
    (
        "saga_harness.adapters",
        "sagashop",
    ): "the reference system's adapter starts it (sagashop cannot import its plugin)",
}
FORBIDDEN: dict[tuple[str, str], str] = {
    ("saga_harness.chaos", "saga_harness.load"): "chaos does not import load",
    ("saga_harness.contracts", "saga_harness.load"): "contracts does not import load",
    ("saga_harness.contracts", "saga_harness.chaos"): "contracts does not import chaos",
}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _fixture_packages() -> set[str]:
    return {p.name for p in FIXTURES.iterdir() if p.is_dir() and any(p.rglob("*.py"))}


def layer_of(module: str, fixtures: set[str] | None = None) -> str | None:
    """The layer of ``module``; None for a module outside the harness and the bundled systems
    (the standard library, third-party packages) — and for a harness module in no layer yet."""
    fixtures = _fixture_packages() if fixtures is None else fixtures
    if module.split(".")[0] in fixtures:
        return FIXTURE
    if not _within(module, "saga_harness"):
        return None
    if module == "saga_harness":
        return PLACES[module]
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        layer = PLACES.get(".".join(parts[:n]))
        if layer is not None:
            return layer
    return None


def judge(importer: str, imported: str, fixtures: set[str] | None = None) -> str | None:
    """The rule ``importer`` breaks by importing ``imported``, or None when the import is allowed."""
    fixtures = _fixture_packages() if fixtures is None else fixtures
    mine, theirs = layer_of(importer, fixtures), layer_of(imported, fixtures)
    if _within(importer, "saga_harness") and mine is None:
        return f"{importer} is in no layer: place it in PLACES (tests/test_layers.py)"
    if theirs is None:
        if _within(imported, "saga_harness"):
            return f"{imported} is in no layer: place it in PLACES (tests/test_layers.py)"
        return None  # the standard library or a third-party package
    for (a, b), why in FORBIDDEN.items():
        if _within(importer, a) and _within(imported, b):
            return why
    if any(_within(importer, a) and _within(imported, b) for a, b in ALSO_ALLOWED):
        return None
    assert mine is not None
    if theirs not in MAY_IMPORT[mine]:
        if mine == FIXTURE:
            return "a bundled system (fixtures/) imports nothing of saga_harness"
        allowed = [layer for layer in MAY_IMPORT if layer in MAY_IMPORT[mine]]
        return f"{mine} may import only {', '.join(allowed)}"
    return None


# -- reading the imports ---------------------------------------------------------------
@dataclass(frozen=True)
class Offence:
    path: str  # relative to the repository
    line: int
    importer: str
    imported: str
    rule: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.importer} ({layer_of(self.importer)}) imports "
            f"{self.imported} ({layer_of(self.imported)}): {self.rule}"
        )


def modules() -> dict[str, Path]:
    """Every module of the harness and of the bundled systems, by its import name."""
    found: dict[str, Path] = {}
    roots = {**SOURCES, **{name: FIXTURES / name for name in _fixture_packages()}}
    for package, folder in roots.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            if "__pycache__" in rel.parts:
                continue
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            # a subpackage mapped to its own folder (saga_harness.chaos) is found from there, not from harness/
            found.setdefault(name, path)
    return found


def imports(source: str, module: str, is_package: bool, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``source``, at any depth (functions,
    classes, ``if TYPE_CHECKING:`` blocks); relative imports resolved from ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield node.lineno, sub if sub in known else base


def offences(path: Path, module: str, source: str | None = None, known: set[str] | None = None) -> list[Offence]:
    """Every import of ``module`` (at ``path``; ``source`` instead of the file's text) against the table."""
    known = set(modules()) if known is None else known
    fixtures = _fixture_packages()
    text = path.read_text(encoding="utf-8") if source is None else source
    rel = str(path.relative_to(ROOT)) if path.is_absolute() else str(path)
    out = []
    for line, imported in imports(text, module, path.name == "__init__.py", known):
        rule = judge(module, imported, fixtures)
        if rule is not None:
            out.append(Offence(rel, line, module, imported, rule))
    return out


def all_offences() -> list[Offence]:
    found = modules()
    known = set(found)
    return [o for module, path in found.items() for o in offences(path, module, known=known)]


# -- the tests -------------------------------------------------------------------------
def test_every_module_of_the_harness_is_in_a_layer():
    unplaced = sorted(m for m in modules() if _within(m, "saga_harness") and layer_of(m) is None)
    assert not unplaced, f"place these in PLACES (tests/test_layers.py): {unplaced}"


def test_imports_point_downwards():
    bad = [str(o) for o in all_offences()]
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


LIFECYCLE_RULE = "lifecycle may import only core, system, lifecycle"
DRIVERS_RULE = "drivers may import only core, system, lifecycle, drivers"
UNPLACED = "saga_harness.newthing is in no layer: place it in PLACES (tests/test_layers.py)"


@pytest.mark.parametrize(
    ("importer", "imported", "rule"),
    [
        ("saga_harness.checkers.idempotency", "saga_harness.history", None),
        ("saga_harness.checkers.idempotency", "saga_harness.sut", "core may import only core"),
        ("saga_harness", "saga_harness.testing", None),
        ("saga_harness.history.index", "saga_harness.reports.html", "core may import only core"),
        ("saga_harness.sink", "saga_harness.run", "system may import only core, system"),
        ("saga_harness.run", "saga_harness.reports.junit", LIFECYCLE_RULE),
        ("saga_harness.lifecycle", "saga_harness.contracts.verify", LIFECYCLE_RULE),
        ("saga_harness.reports.html", "saga_harness.rundir", None),
        ("saga_harness.reports.html", "saga_harness.contracts.events", "writers may import only core, writers"),
        ("saga_harness.chaos.run", "saga_harness.lifecycle", None),
        ("saga_harness.chaos.run", "saga_harness.load.runner", "chaos does not import load"),
        ("saga_harness.contracts.verify", "saga_harness.chaos.wiring", "contracts does not import chaos"),
        ("saga_harness.load.runner", "saga_harness.chaos.scenario", None),
        ("saga_harness.chaos.scenario", "sagashop.bugs", DRIVERS_RULE),
        (
            "saga_harness.contracts.fuzz",
            "saga_harness.reports",
            DRIVERS_RULE,
        ),
        (
            "saga_harness.contracts.fuzz",
            "saga_harness.cli.display",
            DRIVERS_RULE,
        ),
        ("saga_harness.adapters.reference", "sagashop.topology", None),
        ("saga_harness.cli.demo", "saga_harness.reports.index", None),
        ("saga_harness.calibration", "sagashop.bugs", None),
        ("sagashop.app", "sagashop.db", None),
        ("sagashop.app", "saga_harness.errors", "a bundled system (fixtures/) imports nothing of saga_harness"),
        ("sagashop.app", "fastapi", None),
        ("saga_harness.checkers.x", "json", None),
        (
            "saga_harness.newthing",
            "json",
            UNPLACED,
        ),
    ],
)
def test_the_table_judges_a_pair(importer, imported, rule):
    assert judge(importer, imported, {"sagashop", "tripbook"}) == rule


def test_an_upward_import_is_reported_with_its_file_line_and_rule():
    source = (
        '"""A checker that reaches up."""\n'
        "import json\n"
        "from saga_harness.history import History\n"
        "from ..reports.junit import junit_xml\n"
        "\n"
        "def check(history, model):\n"
        "    from saga_harness import run\n"
        "    import saga_harness.chaos.scenario\n"
        "    return json, History, junit_xml, run\n"
    )
    path = ROOT / "harness" / "checkers" / "reaching_up.py"
    found = offences(path, "saga_harness.checkers.reaching_up", source)
    assert [str(o) for o in found] == [
        "harness/checkers/reaching_up.py:4: saga_harness.checkers.reaching_up (core) imports "
        "saga_harness.reports.junit (writers): core may import only core",
        "harness/checkers/reaching_up.py:7: saga_harness.checkers.reaching_up (core) imports "
        "saga_harness.run (lifecycle): core may import only core",
        "harness/checkers/reaching_up.py:8: saga_harness.checkers.reaching_up (core) imports "
        "saga_harness.chaos.scenario (drivers): core may import only core",
    ]


def test_a_bundled_system_that_imports_the_harness_is_reported():
    source = "from saga_harness.history.records import Meta\n"
    [o] = offences(FIXTURES / "sagashop" / "app.py", "sagashop.app", source)
    assert str(o) == (
        "fixtures/sagashop/app.py:1: sagashop.app (fixtures) imports saga_harness.history.records (core): "
        "a bundled system (fixtures/) imports nothing of saga_harness"
    )
