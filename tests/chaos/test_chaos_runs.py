"""Scenarios run on the reference system: green when it is correct, red with the seeded bugs.

In ``make test`` every scenario the reference system can run on SQLite runs clean in
``calibrate --quick`` (tests/chaos/test_calibrate.py), and each seeded bug through the runs that
expose it; here: the scenarios that need PostgreSQL, and (``-m slow``) every scenario on three
seeds and every bug through every scenario that exposes it. The soak scenarios (``soak: true``,
minutes each) have tests of their own, all slow: clean on a quiet machine and with two busy
processes pinned to the cores (the same verdict), and the double charge still caught."""

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
from saga_harness.supervisor import busy_loops

BIN = Path(sys.executable).parent / "saga-harness"
# Timed runs share one xdist worker (see the Makefile): their fault windows never race each other.
pytestmark = pytest.mark.xdist_group("timed")
HAS_TOXIPROXY = bool(
    os.environ.get("TOXIPROXY_URL")
    or shutil.which("toxiproxy-server")
    or importlib.util.find_spec("saga_harness.chaos.server")
)


def chaos_run(tmp_path, name, *extra, timeout: float = 600):
    out = tmp_path / name
    proc = subprocess.run(
        [str(BIN), "chaos", "run", name, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
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
        if scenario.soak:
            continue  # minutes each: the soak tests below
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
        if scenario.name in bug.exposed_by and not scenario.soak
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


# -- the soak: thousands of sagas, dozens of faults on every process, minutes ----------------------
SOAK_SEED = "11"
SOAK_TIMEOUT_S = 1800  # about 2 minutes on two cores, far longer on a crowded machine (its deadlines stretch)


def _statuses(verdicts: dict) -> dict[str, str]:
    return {c["name"]: c.get("status") or ("ok" if c["ok"] else "violated") for c in verdicts["checks"]}


def _settled(out: Path) -> dict:
    phases = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines() if '"type":"phase"' in x]
    return next(p["detail"] for p in phases if p["name"] == "evidence-settled")


def _soak_is_clean(proc, verdicts, out: Path) -> None:
    assert verdicts is not None, proc.stdout[-4000:] + proc.stderr[-2000:]
    violated = {c["name"]: len(c["violations"]) for c in verdicts["checks"] if c["violations"]}
    assert not violated and proc.returncode != 1, (violated, proc.stdout[-4000:])
    assert len(verdicts["faults"]) == 40 and verdicts["stats"]["starts"]["sagas"] == 2500
    settled = _settled(out)
    assert settled["drained"] and settled["snapshots_agreed"] and set(settled["pending"].values()) == {0}, settled


@pytest.mark.slow
@pytest.mark.timeout(SOAK_TIMEOUT_S + 60)
def test_soak_is_clean_on_the_reference_system(tmp_path):
    proc, verdicts = chaos_run(tmp_path, "soak", "--seed", SOAK_SEED, timeout=SOAK_TIMEOUT_S)
    _soak_is_clean(proc, verdicts, tmp_path / "soak")
    assert proc.returncode == 0 and _statuses(verdicts) == dict.fromkeys(_statuses(verdicts), "ok")


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity")
@pytest.mark.timeout(SOAK_TIMEOUT_S + 60)
def test_soak_gives_the_same_verdict_with_two_busy_processes_on_the_cores(tmp_path):
    # The busy machine: the same seed, two processes spinning on the cores the whole run.
    with busy_loops(2, tmp_path / "busy"):
        proc, verdicts = chaos_run(tmp_path, "soak", "--seed", SOAK_SEED, timeout=SOAK_TIMEOUT_S)
    _soak_is_clean(proc, verdicts, tmp_path / "soak")
    loads = [json.loads(x) for x in (tmp_path / "soak" / "history.jsonl").read_text().splitlines() if '"machine"' in x]
    busy = sorted(r["cpu_busy_pct"] for r in loads if r.get("type") == "machine")
    assert busy and busy[len(busy) // 2] >= 90, "the cores were not busy: the test tested nothing"


@pytest.mark.slow
@pytest.mark.timeout(SOAK_TIMEOUT_S + 60)
def test_soak_still_catches_the_double_charge(tmp_path):
    bug = "payment.double_charge_on_redelivery"
    proc, verdicts = chaos_run(tmp_path, "soak", "--seed", SOAK_SEED, "--bugs", bug, timeout=SOAK_TIMEOUT_S)
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    violated = {c["name"] for c in verdicts["checks"] if c["violations"]}
    assert violated & {"idempotency", "conservation"}, violated


@pytest.mark.slow
@pytest.mark.timeout(20 * 600)
def test_the_same_seed_gives_the_same_verdict_in_20_runs(tmp_path):
    # Faults, workload and timing differ from run to run only by the machine's noise: the status of
    # every check must not (bench/bench_determinism.py keeps the figures of the full-size runs).
    runs = []
    for i in range(20):
        proc, verdicts = chaos_run(tmp_path / f"run-{i:02d}", "mixed-random", "--seed", "7", "--sagas", "60")
        assert verdicts is not None, proc.stdout[-4000:] + proc.stderr[-2000:]
        runs.append((_statuses(verdicts), [f["id"] for f in verdicts["faults"]]))
    assert all(r == runs[0] for r in runs), [r[0] for r in runs]
    assert set(runs[0][0].values()) == {"ok"}


def test_chaos_list_shows_the_catalogue():
    proc = subprocess.run(
        [str(BIN), "chaos", "list"], capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"}
    )
    assert proc.returncode == 0
    for scenario, _ in catalogue():
        assert scenario.name in proc.stdout
