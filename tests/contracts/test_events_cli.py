"""The validating sink over real HTTP, and the `contracts validate-events` / `contracts sink` commands."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from saga_harness.cli import main
from saga_harness.contracts.sink import ValidatingSink
from sagashop import events

SAGA_HARNESS = str(Path(sys.executable).parent / "saga-harness")
ENV = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}


def event(etype: str = "com.sagashop.ledger.posted", **data_over: object) -> dict:
    data = {"saga_id": "s1", "command_id": "s1:post_ledger", "entry_id": "led_charge_s1", "amount_cents": 900}
    return events.new_event(
        type_=etype,
        source="/sagashop/ledger",
        data={**data, **data_over},
        saga_id="s1",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )


# -- the sink over HTTP ----------------------------------------------------------
def _with_sink(scenario, **kw):
    async def run():
        sink = ValidatingSink(**kw)
        await sink.start()
        try:
            async with aiohttp.ClientSession() as http:
                return await scenario(http, sink.url, sink)
        finally:
            await sink.stop()

    return asyncio.run(run())


def test_the_sink_accepts_valid_events_in_both_modes_and_refuses_the_rest(tmp_path):
    out = tmp_path / "got" / "events.jsonl"

    async def scenario(http, url, sink):
        got = []
        headers, body = events.to_http(event(), "binary")
        async with http.post(url, data=body, headers=headers) as r:
            got.append((r.status, await r.read()))
        headers, body = events.to_http(event(), "structured")
        async with http.post(url, data=body, headers=headers) as r:
            got.append((r.status, await r.read()))
        bad = {**event(), "specversion": "0.2"}
        del bad["data"]["amount_cents"]
        async with http.post(url, json=bad, headers={"Content-Type": "application/cloudevents+json"}) as r:
            got.append((r.status, await r.json()))
        batch = json.dumps([event(), event()])
        async with http.post(url, data=batch, headers={"Content-Type": "application/cloudevents-batch+json"}) as r:
            got.append((r.status, await r.json()))
        async with http.get(url.replace("/events", "/summary")) as r:
            got.append((r.status, await r.json()))
        return got

    (binary, structured, invalid, batched, summary) = _with_sink(scenario, out=out)
    assert binary == (204, b"") and structured == (204, b"")
    status, body = invalid
    assert status == 422 and body["status"] == "invalid" and body["type"] == "com.sagashop.ledger.posted"
    assert {f["pointer"] for f in body["failures"]} == {"/specversion", "/data/amount_cents"}
    assert all(f["reason"] for f in body["failures"])
    status, body = batched
    assert status == 400 and "batched content mode is not accepted" in body["reason"]
    status, body = summary
    assert status == 200 and (body["events"], body["valid"], body["invalid"], body["refused"]) == (3, 2, 1, 1)
    assert body["by_type"]["com.sagashop.ledger.posted"] == {"valid": 2, "invalid": 1, "unknown": 0}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["report"]["status"] for line in lines] == ["valid", "valid", "invalid"]
    assert lines[0]["event"]["sagaid"] == "s1" and "data" in lines[0]["event"]


def test_a_binary_event_without_id_is_judged_as_sent():
    async def scenario(http, url, sink):
        headers, body = events.to_http(event(), "binary")
        headers = {k: v for k, v in headers.items() if k.lower() != "ce-id"}
        async with http.post(url, data=body, headers=headers) as r:
            return r.status, await r.json()

    status, body = _with_sink(scenario)
    assert status == 422 and [f["pointer"] for f in body["failures"]] == ["/id"]


def test_a_strict_sink_refuses_unknown_types():
    async def scenario(http, url, sink):
        async with http.post(url, json={**event(), "type": "com.example.x"}) as r:
            return r.status, await r.json()

    status, body = _with_sink(scenario, strict=True)
    assert status == 422 and body["status"] == "unknown" and body["failures"][0]["pointer"] == "/type"


# -- validate-events -------------------------------------------------------------
def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["saga-harness", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


def write_jsonl(path: Path, *lines: object) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def test_validate_events_exits_0_when_every_event_is_valid(tmp_path, monkeypatch, capsys):
    path = write_jsonl(tmp_path / "ok.jsonl", event(), "", event("com.sagashop.ledger.posted", amount_cents=0))
    code, out, _err = run_cli(monkeypatch, capsys, "contracts", "validate-events", str(path))
    assert code == 0, out
    assert "2 event(s): 2 valid, 0 invalid" in out


def test_validate_events_prints_line_id_type_pointer_and_reason_and_exits_1(tmp_path, monkeypatch, capsys):
    bad = event(amount_cents="nine")
    del bad["id"]
    renamed = event()
    renamed["data"]["amount"] = renamed["data"].pop("amount_cents")
    path = write_jsonl(tmp_path / "mixed.jsonl", event(), bad, "{not json", "[1, 2]", renamed)
    code, out, _err = run_cli(monkeypatch, capsys, "contracts", "validate-events", str(path))
    assert code == 1
    assert "line 2: id (none) type com.sagashop.ledger.posted" in out
    assert "/id: required attribute 'id' is missing" in out
    assert "/data/amount_cents: expected" not in out  # no title there: jsonschema's own words
    assert "/data/amount_cents: 'nine' is not of type 'integer'" in out
    assert "line 3:" in out and "not JSON" in out
    assert "line 4:" in out and "JSON object" in out
    assert f"line 5: id {renamed['id']} type com.sagashop.ledger.posted" in out
    assert "/data/amount_cents: required field 'amount_cents' is missing" in out
    assert "line 1:" not in out
    assert "5 event(s): 1 valid, 4 invalid" in out


def test_an_unknown_type_warns_by_default_and_fails_with_strict(tmp_path, monkeypatch, capsys):
    path = write_jsonl(tmp_path / "unknown.jsonl", event(), {**event(), "type": "com.example.thing"})
    code, out, _err = run_cli(monkeypatch, capsys, "contracts", "validate-events", str(path))
    assert code == 0 and "warning line 2" in out and "com.example.thing" in out
    code, out, _err = run_cli(monkeypatch, capsys, "contracts", "validate-events", str(path), "--strict")
    assert code == 1 and "error line 2" in out


def test_validate_events_json_output_and_extra_schemas(tmp_path, monkeypatch, capsys):
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "thing.json").write_text(json.dumps({"type": "object", "required": ["thing_id"]}))
    (schemas / "index.json").write_text(json.dumps({"com.example.thing": "thing.json"}))
    path = write_jsonl(tmp_path / "e.jsonl", {**event(), "type": "com.example.thing"})
    args = ("contracts", "validate-events", str(path), "--schemas", str(schemas), "--json")
    code, out, _err = run_cli(monkeypatch, capsys, *args)
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False and doc["summary"]["invalid"] == 1
    assert doc["problems"][0]["line"] == 1 and doc["problems"][0]["failures"][0]["pointer"] == "/data/thing_id"


def test_a_missing_events_file_is_a_one_paragraph_error_exit_2(tmp_path):
    missing = tmp_path / "nope.jsonl"
    proc = subprocess.run(
        [SAGA_HARNESS, "contracts", "validate-events", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert proc.returncode == 2
    assert str(missing) in proc.stderr.replace("\n", "") and "Traceback" not in proc.stderr + proc.stdout


def test_a_missing_schema_directory_is_an_error_exit_2(tmp_path, monkeypatch, capsys):
    path = write_jsonl(tmp_path / "ok.jsonl", event())
    args = ("contracts", "validate-events", str(path), "--schemas", str(tmp_path / "none"))
    code, _out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "none" in err and "does not exist" in err


# -- the sink command ------------------------------------------------------------
def test_the_sink_command_serves_until_ctrl_c_and_exits_0(tmp_path):
    out = tmp_path / "sink.jsonl"
    proc = subprocess.Popen(
        [SAGA_HARNESS, "contracts", "sink", "--port", "0", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split("listening on ", 1)[1].split()[0]
        headers, body = events.to_http(event(), "binary")
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers)) as r:
            assert r.status == 204
        with urllib.request.urlopen(url.replace("/events", "/summary")) as r:
            assert json.load(r)["valid"] == 1
        os.kill(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopped: 1 event(s), 1 valid" in stdout and "Traceback" not in stderr
    assert json.loads(out.read_text())["report"]["status"] == "valid"


def test_validate_events_reads_a_run_directory_or_its_history(tmp_path, monkeypatch, capsys):
    from saga_harness.history.records import CapturedEvent, Phase
    from saga_harness.testing import HistoryBuilder

    bad = event(amount_cents="nine")
    b = HistoryBuilder()
    b.add(Phase("workload-start"))
    b.add(CapturedEvent(event()))
    b.add(CapturedEvent(bad))
    run = tmp_path / "run"
    b.write(run)
    # a run judged before events.jsonl existed: its history's event lines, nothing else
    for target in (run, run / "history.jsonl"):
        code, out, _err = run_cli(monkeypatch, capsys, "contracts", "validate-events", str(target))
        assert code == 1 and "2 event(s): 1 valid, 1 invalid" in out, out
        assert "line 3: id" in out  # the history's own line
    write_jsonl(run / "events.jsonl", event())  # what every judged run writes: preferred
    code, out, _err = run_cli(monkeypatch, capsys, "contracts", "validate-events", str(run))
    assert code == 0 and "1 event(s): 1 valid" in out
    code, _out, err = run_cli(monkeypatch, capsys, "contracts", "validate-events", str(tmp_path / "empty"))
    assert code == 2 and "cannot read" in err


def test_every_judged_run_writes_its_events(tmp_path):
    from saga_harness.checkers import RunInfo
    from saga_harness.history.records import CapturedEvent
    from saga_harness.lifecycle import judge
    from saga_harness.models import reference_model
    from saga_harness.testing import HistoryBuilder

    sent = [event(), event(amount_cents="nine")]
    b = HistoryBuilder()
    for e in sent:
        b.add(CapturedEvent(e))
    run = tmp_path / "run"
    b.write(run)
    judge(run, reference_model(), RunInfo("r"), checkers=["contracts"])
    lines = (run / "events.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == sent  # as they came, the invalid one too
    assert not list(run.glob(".*partial"))
