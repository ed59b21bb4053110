"""The history: append-only shards, merged by time on read, every line citable; every line
written and read through the same record classes."""

from __future__ import annotations

import json
import multiprocessing
import time

import pytest
from handbuilt import SHOP
from saga_harness.errors import HarnessError
from saga_harness.history import (
    CapturedEvent,
    Completion,
    Entry,
    FaultChange,
    HistoryWriter,
    Invoke,
    Meta,
    Phase,
    Snapshot,
    StatusSeen,
    build_index,
    parse,
    read_entries,
    read_history,
    shard_path,
)
from saga_harness.model import SagaModel
from saga_harness.models import load_model
from saga_harness.testing import HistoryBuilder

EVERY_RECORD = [
    Meta("r1", sut="shop", seed=3, bugs="a.b", env={"X": "1"}, command="saga-harness run", extra={"sagas": 5}),
    Invoke("start_saga", 1, "k1", "ok", {"items": [1]}),
    Completion("ok", "start_saga", 1, "k1", "ok", 202, {"saga_id": "s1"}, "s1"),
    Completion("fail", "start_saga", 2, "k2", "ok", 409, "conflict"),
    Completion("info", "start_saga", 3, "k3", error="timed out"),
    CapturedEvent({"specversion": "1.0", "id": "e1", "source": "/pay", "type": "shop.charged", "data": {}}),
    StatusSeen("s1", "DONE", "completed"),
    StatusSeen("s1", "CANCELLED", "compensated", {"failed_step": "car", "attempts": {"cancel hotel": 2}}),
    FaultChange("start", {"id": "f1", "kind": "kill", "target": "payment"}),
    FaultChange("stop", {"id": "f1", "kind": "kill", "target": "payment"}),
    Phase("converged", {"after_s": 1.5}),
    Snapshot("orders", {"orders": []}, baseline=True),
    Snapshot("orders", {"orders": [{"saga_id": "s1"}]}),
]


def _write_shard(run_dir, process, n):
    with HistoryWriter(shard_path(run_dir, process), process=process) as w:
        for i in range(n):
            w.append(Invoke("start_saga", i, f"{process}-{i}"))
            time.sleep(0.001)


def test_writer_appends_one_json_object_per_line(tmp_path):
    with HistoryWriter(shard_path(tmp_path), process="runner") as w:
        w.append(Meta("r1", seed=3))
        w.append(CapturedEvent({"id": "e1", "type": "t"}), process="sink")
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    first, second = (json.loads(x) for x in lines)
    assert first["type"] == "meta" and first["process"] == "runner" and first["seed"] == 3
    assert second["process"] == "sink" and second["event"]["id"] == "e1"
    assert first["mono"] <= second["mono"] and first["wall"] <= second["wall"]


def test_every_record_reads_back_as_written(tmp_path):
    with HistoryWriter(shard_path(tmp_path), process="runner") as w:
        for record in EVERY_RECORD:
            w.append(record)
    entries = list(read_entries(tmp_path))
    assert [e.record for e in entries] == EVERY_RECORD
    assert [e.ref for e in entries] == [f"history.jsonl:{n}" for n in range(1, len(EVERY_RECORD) + 1)]
    assert all(isinstance(e, Entry) and e.process == "runner" and e.wall > 0 for e in entries)


def test_the_builder_writes_the_lines_the_writer_writes(tmp_path):
    b = HistoryBuilder()
    for record in EVERY_RECORD:
        b.add(record, process="runner")
    with HistoryWriter(shard_path(tmp_path), process="runner") as w:
        for record in EVERY_RECORD:
            w.append(record)
    written = [json.loads(x) for x in (tmp_path / "history.jsonl").read_text().splitlines()]
    for built, line in zip(b.entries, written, strict=True):
        assert list(built) == [*line, "ref"]  # the same fields in the same order, and a ref to cite
        assert parse(built) == parse(line)


def test_a_line_of_a_type_this_version_does_not_know_is_counted_and_skipped(tmp_path):
    model = SagaModel.model_validate(SHOP)
    b = HistoryBuilder()
    b.saga("s1")
    b.entries.append({"mono": 1.0, "wall": 2_000.0, "process": "future", "type": "telemetry", "ref": "built:3"})
    assert parse(b.entries[-1]) is None
    h = build_index(b.entries, model)
    assert h.entries == 3 and set(h.sagas) == {"s1"} and h.end == 2_000.0
    b.write(tmp_path)
    assert len(list(read_history(tmp_path))) == 3 and len(list(read_entries(tmp_path))) == 2


def test_the_index_keeps_the_run_the_faults_the_phases_and_the_baselines_typed():
    model = SagaModel.model_validate(SHOP)
    b = HistoryBuilder()
    b.meta("r7", sut="shop", seed=9, extra={"sagas": 1})
    b.fault("start", {"id": "f1", "kind": "kill", "target": "payment"})
    b.phase("workload-start")
    b.snapshot("stock", {"stock": [{"sku": "A", "available": 3}]}, baseline=True)
    b.saga("s1")
    b.lost("k9")
    b.fault("stop", {"id": "f1", "kind": "kill", "target": "payment"})
    b.phase("converged", after_s=0.5)
    h = build_index(b.entries, model)
    assert h.meta == Meta("r7", sut="shop", seed=9, extra={"sagas": 1})
    assert [(f.record.phase, f.ref, f.process) for f in h.faults] == [
        ("start", "built:2", "nemesis"),
        ("stop", "built:9", "nemesis"),
    ]
    assert list(h.phases) == ["workload-start", "converged"] and h.phases["workload-start"] < h.phases["converged"]
    assert h.baselines == {"stock": {"stock": [{"sku": "A", "available": 3}]}} and h.snapshots == {}
    assert h.keys["k9"].answers == [(None, None, "built:8")]  # no answer: no status, no saga


def test_shards_from_several_processes_merge_in_time_order(tmp_path):
    procs = [multiprocessing.Process(target=_write_shard, args=(tmp_path, f"worker-{i}", 50)) for i in range(3)]
    for p in procs:
        p.start()
    with HistoryWriter(shard_path(tmp_path), process="runner") as w:
        for i in range(50):
            w.append(StatusSeen(str(i)))
            time.sleep(0.001)
    for p in procs:
        p.join()
    entries = list(read_history(tmp_path))
    assert len(entries) == 200
    walls = [e["wall"] for e in entries]
    assert walls == sorted(walls)
    assert {e["process"] for e in entries} == {"runner", "worker-0", "worker-1", "worker-2"}
    assert any(e["ref"].startswith("history.d/worker-1.jsonl:") for e in entries)
    # each reference points at the very line it came from
    e = next(x for x in entries if x["ref"].startswith("history.d/worker-2.jsonl:"))
    line = int(e["ref"].rsplit(":", 1)[1])
    raw = (tmp_path / "history.d" / "worker-2.jsonl").read_text().splitlines()[line - 1]
    assert json.loads(raw)["key"] == e["key"]


def test_a_damaged_line_is_reported_with_its_place(tmp_path):
    (tmp_path / "history.jsonl").write_text('{"type": "meta", "wall": 1}\n{oops\n')
    with pytest.raises(HarnessError, match=r"history.jsonl:2: not a JSON object"):
        list(read_history(tmp_path))


def test_missing_history_is_a_clear_error(tmp_path):
    with pytest.raises(HarnessError, match="no history.jsonl"):
        list(read_history(tmp_path))


def test_the_index_places_each_piece_of_evidence_on_the_harnesss_timeline():
    model = load_model(
        {
            "steps": [
                {"name": "pay", "done": {"answer": "checkout", "text": "re:^paid"}},
                {"name": "ship", "done": {"state": "SHIPPED"}, "undone": {"read": "parcel", "pointer": "/back"}},
            ]
        }
    )
    b = HistoryBuilder()
    b.step("create", "s1", body={"id": "s1"})  # lines 1-2
    b.status("s1", "NEW")  # 3
    b.step("checkout", "s1", body="paid 30")  # 4-5
    b.status("s1", "SHIPPED", failed_step=None)  # 6
    b.status("s1", "SHIPPED", reason="returned")  # 7
    b.read("parcel", {"s1": {"back": False}, "ghost": {"back": True}})  # 8: an unknown saga is not made up
    b.read("parcel", {"s1": {"back": True}})  # 9
    h = build_index(b.entries, model)
    rec = h.sagas["s1"]
    assert set(h.sagas) == {"s1"}
    [(pay,)] = [tuple(rec.done["pay"])]
    assert (pay.after, pay.position, pay.source, pay.event_id) == (4, 5, "answer", "answer:checkout")
    [ship] = rec.done["ship"]
    assert (ship.after, ship.position, ship.source) == (3, 6, "state")  # since the status that did not show it
    [back] = rec.undone["ship"]
    assert (back.after, back.position, back.source) == (8, 9, "read")  # since the read that did not show it
    assert rec.fields == {"failed_step": None, "reason": "returned"} and rec.fields_ref == "built:7"
    assert rec.first_position == 1 and rec.reads == {"parcel"} and rec.answered == {"checkout": 1}  # steps it names
    assert h.keys["key-s1"].steps == {"create": 1, "checkout": 1}


def test_fault_windows_pair_each_start_with_its_stop():
    model = SagaModel.model_validate(SHOP)
    b = HistoryBuilder()
    with b.faulted("kill", "payment") as first:
        b.wait(1.0)
    b.fault("start", {"id": "f9", "kind": "cut", "target": "a->b"})  # never stopped: lasts to the end
    b.saga("s1")
    h = build_index(b.entries, model)
    (s1, e1, f1), (s2, e2, f2) = h.fault_windows()
    assert f1 == first and e1 - s1 >= 1.0 and f2["id"] == "f9" and e2 == h.end and s2 <= e2
