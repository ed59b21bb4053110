"""The wheel: one import namespace for the harness (`saga_harness`), the reference system as
`sagashop`, nothing generic at the top level, every package and data file included."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build_wheel(out: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    [built] = out.glob("saga_harness-*.whl")
    return built


@pytest.fixture
def wheel(tmp_path) -> Path:
    # One test builds it: two builds of one source tree at a time would share its build/ folder
    # (and xdist's --dist loadgroup does not keep tests together under pytest 9).
    return build_wheel(tmp_path)


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_wheel_has_one_namespace_and_every_file(wheel):
    names = _names(wheel)
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}
    # Nothing generic (chaos, contracts, load, reports, harness, fixtures) at the top level.
    assert top == {"saga_harness", "sagashop"}
    with zipfile.ZipFile(wheel) as zf:
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "saga-harness = saga_harness.cli:main" in entry_points
    assert "saga_harness = saga_harness.pytest_plugin" in entry_points
    assert "[saga_harness.sut]" in entry_points and "[pytest11]" in entry_points
    assert "License-Expression: MIT" in metadata and "Classifier: Framework :: Pytest" in metadata
    # A folder the [tool.setuptools] package list forgets, or a data file its patterns miss, fails here.
    names = set(names)
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    missing = []
    for package, folder in mapping.items():
        base = ROOT / folder
        for path in base.rglob("*"):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc",):
                continue
            rel = path.relative_to(base).as_posix()
            if path.suffix not in (".py", ".json", ".yaml", ".j2", ".css", ".toml") or rel.endswith("README.md"):
                continue
            wanted = package.replace(".", "/") + "/" + rel
            if wanted not in names:
                missing.append(wanted)
    assert not missing, f"not in the wheel: {missing[:20]}"
