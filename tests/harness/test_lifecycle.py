"""The one run lifecycle, in process, on the fake SUT: what it refuses before anything starts,
what it records, and that the SUT is down on every way out."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest
from postgres import PG_URL, pg_available
from saga_harness.adapters.fake import FakeSystem
from saga_harness.errors import ConfigError, MissingAbilityError, SutError
from saga_harness.history import read_history
from saga_harness.lifecycle import Lifecycle, RunRequest, rejudge
from saga_harness.progress import PhaseStarted, ProgressEvent, RunFinished, SagaCounts
from saga_harness.sut import Needs


def request(tmp_path: Path, **kw) -> RunRequest:
    return RunRequest(label="test", out=tmp_path / "run", sut="fake", seed=1, **kw)


def answers(url: str) -> bool:
    try:
        httpx.get(url + "/snapshot", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def test_a_run_records_meta_first_judges_and_leaves_the_sut_down(tmp_path):
    events: list[ProgressEvent] = []
    life = Lifecycle(request(tmp_path, command="saga-harness run --sut fake"), events.append)
    workload = life.plan(30, duplicates=0.2)
    with life as run:
        url = run.sut.saga_api().client_url
        assert answers(url)
        run.call(run.runner.drive(workload, 10))
        assert run.call(run.runner.converge(30))
        verdicts = run.judge()
    assert verdicts.ok, verdicts.explain()
    assert not answers(url) and life.sut._thread is None  # the fake's thread and port are gone
    lines = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert lines[0]["type"] == "meta" and lines[0]["sut"] == "fake" and lines[0]["command"].startswith("saga-harness")
    assert {"invoke", "ok", "event", "status", "snapshot", "phase"} <= {line["type"] for line in lines}
    stored = json.loads((tmp_path / "run" / "verdicts.json").read_text())
    assert stored["ok"] and stored["sut"] == "fake" and stored["seed"] == 1
    phases = [e.phase for e in events if isinstance(e, PhaseStarted)]
    assert phases == ["starting", "workload", "converging", "settling", "snapshot", "judging"]
    assert isinstance(events[-1], RunFinished) and events[-1].ok
    counts = [e for e in events if isinstance(e, SagaCounts)]
    assert counts[-1].started == counts[-1].finished == 30 and counts[-1].events > 0


@pytest.mark.parametrize("how", ["exception", "interrupt"])
def test_the_sut_is_shut_down_when_the_block_fails(tmp_path, how):
    life = Lifecycle(request(tmp_path))
    with pytest.raises(RuntimeError if how == "exception" else KeyboardInterrupt):
        with life as run:
            url = run.sut.saga_api().client_url
            run.call(run.runner.drive(life.plan(5), 5))
            raise RuntimeError("boom") if how == "exception" else KeyboardInterrupt
    assert not answers(url)
    assert isinstance(life.sut, FakeSystem) and life.sut._thread is None


def test_a_sut_that_fails_to_start_is_shut_down_too(tmp_path, monkeypatch):
    stopped = []

    def broken_start(self):
        raise SutError("the fake would not start")

    monkeypatch.setattr(FakeSystem, "start", broken_start)
    monkeypatch.setattr(FakeSystem, "shutdown", lambda self: stopped.append(self))
    life = Lifecycle(request(tmp_path))
    with pytest.raises(SutError, match="would not start"):
        with life:
            pass
    assert stopped == [life.sut]


def test_a_missing_ability_or_a_bad_workload_is_refused_before_anything_starts(tmp_path):
    life = Lifecycle(RunRequest(label="x", out=tmp_path / "run", sut="fake", env={"FAKE_EXTERNAL": "gateway"}))
    with pytest.raises(MissingAbilityError) as refused:
        life.require(Needs(processes=frozenset({"gateway"})), "scenario 'x'")
    message = str(refused.value)
    assert "process control" in message and "gateway" in message and "fake" in message
    assert "Nothing was started" in message and "\n" not in message
    with pytest.raises(MissingAbilityError, match="link routing"):
        life.require(Needs(links=frozenset({"client->orchestrator"})), "scenario 'x'")
    with pytest.raises(MissingAbilityError, match="contract providers"):
        life.require(Needs(contracts=True), "contracts verify")
    with pytest.raises(ConfigError, match="nope"):
        life.plan(10, mix="ok=1,nope=1")
    assert not (tmp_path / "run").exists()  # no run directory, no process, no port


def test_child_runs_share_the_started_sut_and_judge_on_their_own(tmp_path):
    events: list[ProgressEvent] = []
    life = Lifecycle(request(tmp_path, observe=False))
    with life as session:
        for seed, name in enumerate(("first", "second")):
            with session.child(tmp_path / name, process="pytest", listener=events.append) as run:
                run.call(run.runner.drive(life.plan(10, seed=seed), 5))
                assert run.call(run.runner.converge(30))
                assert run.judge().ok
    second = [json.loads(line) for line in (tmp_path / "second" / "history.jsonl").read_text().splitlines()]
    baseline = [e for e in second if e["type"] == "snapshot" and e.get("baseline")]
    # What the first run left is the second's baseline: the notifications of its completed sagas.
    assert baseline and any(e["data"].get("messages") for e in baseline)
    assert sum(isinstance(e, RunFinished) for e in events) == 2


def test_rejudging_a_history_gives_the_same_verdicts_with_the_model_its_meta_names(tmp_path):
    life = Lifecycle(
        RunRequest(
            label="x", out=tmp_path / "run", sut="fake", bugs="fake.skip_compensation", env={"FAKE_STEPS": "a,b"}
        )
    )
    with life as run:
        run.call(run.runner.drive(life.plan(20, mix="ok=1,fail_b=1"), 5))
        run.call(run.runner.converge(30))
        first = run.judge()
    assert not first.ok and {c.name for c in first.checks if not c.ok} >= {"compensation"}
    again, where = rejudge(tmp_path / "run" / "history.jsonl", tmp_path / "again")
    assert where == (tmp_path / "again").resolve()
    assert again.checks == first.checks and again.run.bugs == "fake.skip_compensation"
    assert again.run.env == {"FAKE_STEPS": "a,b"}  # the fake's own steps: its model judged it again


def test_the_fake_simulates_process_and_delivery_faults(tmp_path):
    life = Lifecycle(request(tmp_path))
    life.require(Needs(processes=frozenset({"charge"}), deliveries=frozenset({"queue"})), "this test")
    with life as run:
        sut = run.sut
        sut.kill("charge", signal.SIGKILL)
        run.call(run.runner.drive(life.plan(5, mix="ok=1"), 5))
        assert not run.call(run.runner.converge(0.5))  # stuck at charge while it is down
        sut.restart("charge")
        rule = run.call(sut.delivery_fault(run.http, "queue", {"target": "*", "duplicate": 1}))
        run.call(run.runner.drive(life.plan(5, mix="ok=1", seed=9), 5))
        run.call(sut.clear_delivery_fault(run.http, "queue", rule))
        assert run.call(run.runner.converge(30))
        assert run.judge().ok  # the services dedupe redelivered commands
    entries = list(read_history(tmp_path / "run"))
    assert sum(e["type"] == "status" and e.get("outcome") == "completed" for e in entries) == 10


# -- the reference system: real processes, a real database ------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(not pg_available(), reason="PostgreSQL is not running on 127.0.0.1:5432")
def test_a_failed_run_on_postgres_leaves_no_process_and_no_schema(tmp_path):
    import psutil
    import psycopg

    life = Lifecycle(RunRequest(label="pg", out=tmp_path / "run", sut="reference", database_url=PG_URL))
    prefix = life.sut.schema_prefix  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="the test's own failure"):
        with life as run:
            pids = [s.pid for s in run.sut.services().values()]
            assert len(pids) == 11 and all(pids)
            run.call(run.runner.drive(life.plan(5, mix="ok=1"), 5))
            raise RuntimeError("the test's own failure")
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    with psycopg.connect(PG_URL) as conn:
        left = conn.execute(
            "select schema_name from information_schema.schemata where schema_name like %s", (prefix + "\\_%",)
        ).fetchall()
    assert left == []
