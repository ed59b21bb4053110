"""The fake SUT is a fair test double: correct, every check holds; each of its seeded bugs is caught
by the real checkers, in the run meant to expose it — and the same run without the bug holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from saga_harness.adapters.fake import BUGS, FakeSystem
from saga_harness.checkers import Verdicts
from saga_harness.errors import ConfigError
from saga_harness.lifecycle import Lifecycle, RunRequest
from saga_harness.sut import (
    ContractProviders,
    DeliveryHooks,
    EventTap,
    LinkRouting,
    ProcessControl,
    Snapshots,
    SystemUnderTest,
)

# bug -> (how the run exposes it, the checker that must flag it)
EXPOSED = {
    "fake.double_effect_on_resend": ("resends", "idempotency"),
    "fake.skip_compensation": ("failures", "compensation"),
    "fake.no_command_dedupe": ("duplicate deliveries", "idempotency"),
}


def judged(tmp_path: Path, bug: str | None, exposure: str) -> Verdicts:
    life = Lifecycle(RunRequest(label="fake", out=tmp_path / (bug or "clean"), sut="fake", bugs=bug, seed=5))
    workload = life.plan(30, mix="ok=1,fail_charge=1,fail_ship=1", duplicates=0.5 if exposure == "resends" else 0.0)
    with life as run:
        rule = None
        if exposure == "duplicate deliveries":
            rule = run.call(run.sut.delivery_fault(run.http, "queue", {"target": "*", "duplicate": 1}))
        run.call(run.runner.drive(workload, 10))
        assert run.call(run.runner.converge(30))
        if rule is not None:
            run.call(run.sut.clear_delivery_fault(run.http, "queue", rule))
        return run.judge()


def test_every_bug_has_a_run_that_exposes_it():
    assert set(EXPOSED) == set(BUGS)


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_each_seeded_bug_is_caught_and_its_control_holds(tmp_path, bug):
    exposure, checker = EXPOSED[bug]
    control = judged(tmp_path, None, exposure)
    assert control.ok, control.explain()
    caught = judged(tmp_path, bug, exposure)
    failed = {c.name for c in caught.checks if not c.ok}
    assert checker in failed, caught.explain()
    assert all(v.evidence for v in caught[checker].violations)


def test_it_declares_the_abilities_it_simulates_and_no_others(tmp_path):
    sut = FakeSystem(tmp_path, extra_env={"FAKE_STEPS": "a,b", "FAKE_EXTERNAL": "gateway"})
    assert isinstance(sut, SystemUnderTest)
    for ability in (ProcessControl, DeliveryHooks, Snapshots, EventTap):
        assert isinstance(sut, ability), ability
    for ability in (LinkRouting, ContractProviders):
        assert not isinstance(sut, ability), ability
    assert "gateway" in sut.services() and "gateway" not in sut.processes()
    assert set(sut.triggers()) == {"ok", "fail_a", "fail_b"}
    assert [s.name for s in sut.model().steps] == ["a", "b"]


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"bugs": "fake.nope"}, "no seeded bug 'fake.nope'"),
        ({"database_url": "postgresql://x"}, "keeps its state in memory"),
        ({"extra_env": {"FAKE_STEPS": "queue"}}, "FAKE_STEPS"),
        ({"extra_env": {"FAKE_STEP_S": "soon"}}, "FAKE_STEP_S"),
    ],
)
def test_bad_options_are_config_errors(tmp_path, kw, needle):
    with pytest.raises(ConfigError, match=needle):
        FakeSystem(tmp_path, **kw)
