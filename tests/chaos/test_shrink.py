"""Shrinking: delta debugging over the fault windows, then fewer sagas, then narrower windows — on a
trial function with a known cause (the real runs are in the slow tier)."""

from __future__ import annotations

import pytest
import yaml
from saga_harness.chaos.scenario import Fault, Scenario, load_scenario
from saga_harness.chaos.schedule import build
from saga_harness.chaos.shrink import ddmin, fault_of, shrink, windows_of, write_scenario


def test_ddmin_finds_the_two_items_that_fail_together():
    tests = []

    def fails(items):
        tests.append(list(items))
        return {"b", "e"} <= set(items)

    assert ddmin(list("abcdefgh"), fails) == ["b", "e"]
    assert len(tests) < 30


def test_ddmin_gives_nothing_when_nothing_is_needed_to_fail():
    assert ddmin(list("abc"), lambda items: True) == []


def kill(process: str, at: float, duration: float = 4.0) -> Fault:
    return Fault(kind="kill", process=process, at=at, duration=duration)


def test_shrink_keeps_the_fault_that_matters_fewer_sagas_and_a_narrower_window():
    faults = [kill("order", 1), kill("payment", 2), kill("email", 3), kill("ledger", 4), kill("fraud", 5)]

    def trial(candidate, sagas):
        # fails (the same finding) while payment is killed for at least 1 s and 4 sagas or more run
        payment = [f for f in candidate if f.process == "payment" and f.duration >= 1.0]
        return {"idempotency · capture_payment · took effect twice"} if payment and sagas >= 4 else {"other"}

    shrunk = shrink(faults, 40, {"idempotency · capture_payment · took effect twice"}, trial, max_runs=40)
    assert [f.process for f in shrunk.faults] == ["payment"]
    assert shrunk.sagas == 5 and shrunk.faults[0].duration == 1.0
    assert shrunk.runs == len(shrunk.tried) <= 40


def test_shrink_stops_at_its_budget():
    faults = [kill(p, i) for i, p in enumerate(["a", "b", "c", "d"])]
    shrunk = shrink(faults, 10, {"x"}, lambda c, n: {"x"}, max_runs=3)
    assert shrunk.runs == 3


@pytest.mark.parametrize("seed", [1, 2])
def test_drawn_windows_become_explicit_faults_that_draw_the_same_windows(tmp_path, seed):
    scenario, _ = load_scenario("mixed-random")
    processes = ["payment", "inventory", "order", "ledger", "fraud", "email", "loyalty", "analytics"]
    processes += ["orchestrator", "taskqueue", "eventbus"]
    links = ["taskqueue->payment", "eventbus->orchestrator"]
    windows = build(scenario, seed, links, processes)
    again = windows_of([w.describe() for w in windows])
    explicit = [fault_of(w) for w in again]
    rebuilt = build(Scenario(name="x", description="d", faults=explicit), seed, links, processes)
    key = [(w.kind, w.target, w.start_s, w.end_s) for w in windows]
    assert [(w.kind, w.target, w.start_s, w.end_s) for w in rebuilt] == key
    path = write_scenario(Scenario(name="x-shrunk", description="d", faults=explicit), tmp_path / "s.yaml", seed)
    loaded, _ = load_scenario(path)
    assert [f.kind for f in loaded.faults] == [f.kind for f in explicit]
    assert yaml.safe_load(path.read_text())["name"] == "x-shrunk"
