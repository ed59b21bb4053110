"""Scenarios and schedules are data: validated on load, deterministic by seed."""

from __future__ import annotations

import pytest
from saga_harness.chaos.guard import check_targets
from saga_harness.chaos.scenario import KINDS, catalogue, load_scenario
from saga_harness.chaos.schedule import build
from saga_harness.errors import ScenarioError, UnsafeTargetError

LINKS = ["client->orchestrator", "taskqueue->payment", "eventbus->orchestrator", "taskqueue->inventory"]
PROCESSES = [
    "orchestrator",
    "taskqueue",
    "eventbus",
    "payment",
    "inventory",
    "order",
    "ledger",
    "fraud",
    "email",
    "loyalty",
    "analytics",
]


def test_the_catalogue_has_at_least_ten_grounded_scenarios():
    scenarios = catalogue()
    assert len(scenarios) >= 10
    for scenario, path in scenarios:
        assert scenario.description and scenario.grounded_in, path
        assert path.stem == scenario.name
    kinds = {f.kind for s, _ in scenarios for f in s.faults}
    assert {
        "latency",
        "reset_peer",
        "limit_data",
        "cut",
        "timeout",
        "kill",
        "pause",
        "duplicate",
        "delay",
        "drop",
    } <= kinds


def test_same_seed_same_schedule_other_seed_other_schedule():
    scenario, _ = load_scenario("mixed-random")
    a = build(scenario, 7, LINKS, PROCESSES)
    assert a == build(scenario, 7, LINKS, PROCESSES)
    assert a != build(scenario, 8, LINKS, PROCESSES)
    assert len(a) == 5 and all(w.kind in KINDS and w.end_s > w.start_s for w in a)
    assert [w.start_s for w in a] == sorted(w.start_s for w in a)


def test_unknown_scenario_suggests_a_name():
    with pytest.raises(ScenarioError, match="Did you mean 'flaky-payment'"):
        load_scenario("flaky-paymnt")


@pytest.mark.parametrize(
    "text,needle",
    [
        ("name: x\ndescription: d\nfaults:\n  - {kind: latency, at: 1s}\n", "needs `link`"),
        ("name: x\ndescription: d\nfaults:\n  - {kind: explode, link: a->b}\n", "faults.0.kind"),
        ("name: x\ndescription: d\nfautls: []\n", "did you mean 'faults'"),
        ("name: x\ndescription: d\ndeadline: soon\n", "deadline"),
        ("name: x\n description: [\n", "not valid YAML"),
        ("- just\n- a list\n", "YAML mapping"),
        ("name: x\ndescription: d\nfaults:\n  - {kind: lose_answer, path: /x}\n", "needs `link`"),
        ("name: x\ndescription: d\nfaults:\n  - {kind: lose_answer, link: a->b, nth: [0]}\n", "counts matching calls"),
        ("name: x\ndescription: d\nfaults:\n  - {kind: http_error, link: a->b, status: 700}\n", "status"),
        ("name: x\ndescription: d\nsometimes:\n  - {compensated: a, outcome: b}\n", "exactly one of"),
        ("name: x\ndescription: d\nsometimes:\n  - {fault: explode}\n", "HTTP fault kind"),
    ],
)
def test_a_bad_file_names_the_key(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_a_fault_on_a_link_the_sut_lacks_is_refused_before_anything_starts(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ndescription: d\nfaults:\n  - {kind: cut, link: payment->mars, duration: 1s}\n")
    scenario, _ = load_scenario(path)
    with pytest.raises(ScenarioError, match="payment->mars"):
        build(scenario, 0, LINKS, PROCESSES)


def test_guard_refuses_non_loopback_targets():
    check_targets([("a", "127.0.0.1:80"), ("b", "http://localhost:8080/x"), ("c", "[::1]:9")])
    check_targets([("d", "10.0.0.5:80")], allowed_hosts=["10.0.0.5"])
    with pytest.raises(UnsafeTargetError, match="10.1.2.3"):
        check_targets([("link x", "10.1.2.3:5432")])


def test_an_http_fault_is_a_rule_keyed_on_calls_for_the_whole_run_unless_given_a_duration(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\ndescription: d\nfaults:\n"
        "  - {kind: lose_answer, link: taskqueue->payment, method: POST, path: /payments/*/capture, nth: [2]}\n"
        "  - {kind: http_error, link: taskqueue->payment, status: 429, first: 3, at: 1s, duration: 2s}\n"
        "sometimes:\n  - {fault: lose_answer, path: /payments/*/capture}\n"
    )
    scenario, _ = load_scenario(path)
    lose, error = build(scenario, 5, LINKS, PROCESSES)
    assert lose.kind == "lose_answer" and lose.target == "taskqueue->payment"
    assert lose.params["action"] == "lose_answer" and lose.params["nth"] == [2] and lose.params["until_healed"]
    assert lose.params["seed"] == 5 and lose.params["path"] == "/payments/*/capture"
    assert error.params["action"] == "status" and error.params["status"] == 429 and error.params["first"] == 3
    assert not error.params["until_healed"] and (error.start_s, error.end_s) == (1.0, 3.0)
    assert scenario.sometimes[0].fault == "lose_answer"


def test_random_http_faults_hit_a_drawn_call_on_a_drawn_link_whatever_the_timing(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\ndescription: d\nrandom: {count: 6, kinds: [lose_answer, duplicate_request], window: 5s}\n"
    )
    scenario, _ = load_scenario(path)
    windows = build(scenario, 3, LINKS, PROCESSES)
    assert windows == build(scenario, 3, LINKS, PROCESSES)
    assert all(w.target in LINKS and len(w.params["nth"]) == 1 and w.params["until_healed"] for w in windows)
    assert all(w.start_s == 0 for w in windows) and len({w.params["nth"][0] for w in windows}) > 1
