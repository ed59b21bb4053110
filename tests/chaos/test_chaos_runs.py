"""Scenarios run on the reference system: green when it is correct, red with the seeded bugs.

In ``make test`` every scenario the reference system can run on SQLite runs clean in
``calibrate --quick`` (tests/chaos/test_calibrate.py), and each seeded bug through the runs that
expose it; here: the scenarios that need PostgreSQL, and (``-m slow``) every scenario on three
seeds and every bug through every scenario that exposes it."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from postgres import PG_URL, pg_available
from saga_harness.chaos.scenario import LINK_FAULTS, catalogue

BIN = Path(sys.executable).parent / "saga-harness"
# Timed runs share one xdist worker (see the Makefile): their fault windows never race each other.
pytestmark = pytest.mark.xdist_group("timed")
HAS_TOXIPROXY = bool(
    os.environ.get("TOXIPROXY_URL")
    or shutil.which("toxiproxy-server")
    or importlib.util.find_spec("saga_harness.chaos.server")
)


def chaos_run(tmp_path, name, *extra):
    out = tmp_path / name
    proc = subprocess.run(
        [str(BIN), "chaos", "run", name, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    verdicts = json.loads((out / "verdicts.json").read_text()) if (out / "verdicts.json").exists() else None
    return proc, verdicts


def backend(name: str) -> list[str]:
    """The extra arguments a scenario needs: the PostgreSQL backend for those that require it."""
    scenario = next(s for s, _ in catalogue() if s.name == name)
    return ["--database-url", PG_URL] if "postgres" in scenario.requires else []


def _params():
    out = []
    for scenario, _ in catalogue():
        marks = []
        if any(f.kind in LINK_FAULTS for f in scenario.faults) or (
            scenario.random and any(k in LINK_FAULTS for k in scenario.random.kinds)
        ):
            marks.append(pytest.mark.skipif(not HAS_TOXIPROXY, reason="no Toxiproxy server (embedded or real) yet"))
        if "postgres" in scenario.requires:
            marks += [
                pytest.mark.postgres,
                pytest.mark.skipif(not pg_available(), reason="PostgreSQL is not running on 127.0.0.1:5432"),
            ]
        else:
            # `calibrate --quick` runs these clean in make test (no false positive allowed).
            marks.append(pytest.mark.slow)
        out.append(pytest.param(scenario.name, marks=marks))
    return out


@pytest.mark.parametrize("name", _params())
def test_scenario_is_green_on_the_reference_system(tmp_path, name):
    proc, verdicts = chaos_run(tmp_path, name, "--seed", "1", "--sagas", "40", *backend(name))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert verdicts["ok"] and verdicts["scenario"] == name
    history = (tmp_path / name / "history.jsonl").read_text().splitlines()
    starts = [json.loads(x) for x in history if '"type":"fault"' in x and '"phase":"start"' in x]
    stops = [json.loads(x) for x in history if '"type":"fault"' in x and '"phase":"stop"' in x]
    assert len(starts) == len(stops) == len(verdicts["faults"])


def _bug_params():
    # Which scenario exposes which bug, and the checkers that must flag it: the bug's one record.
    from sagashop.bugs import BUGS

    return [
        pytest.param(bug.name, scenario.name, set(bug.caught_by), id=f"{bug.name}-{scenario.name}")
        for scenario, _ in catalogue()
        for bug in BUGS.values()
        if scenario.name in bug.exposed_by
    ]


# `saga-harness calibrate --quick` (tests/chaos/test_calibrate.py) runs every bug through its
# runs with these expectations in make test; this one, every bug × every exposing scenario, is slow.
@pytest.mark.slow
@pytest.mark.parametrize("bug,scenario,checkers", _bug_params())
def test_seeded_bug_is_caught_by_its_scenario(tmp_path, bug, scenario, checkers):
    proc, verdicts = chaos_run(tmp_path, scenario, "--seed", "1", "--bugs", bug)
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    failed = {c["name"] for c in verdicts["checks"] if not c["ok"]}
    assert failed & checkers, failed


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", _params())
def test_scenario_is_green_on_three_seeds(tmp_path, name, seed):
    proc, verdicts = chaos_run(tmp_path, name, "--seed", str(seed), *backend(name))
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_chaos_list_shows_the_catalogue():
    proc = subprocess.run(
        [str(BIN), "chaos", "list"], capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"}
    )
    assert proc.returncode == 0
    for scenario, _ in catalogue():
        assert scenario.name in proc.stdout
