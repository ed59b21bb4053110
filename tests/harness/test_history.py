"""The history: append-only shards, merged by time on read, every line citable."""

from __future__ import annotations

import json
import multiprocessing
import time

import pytest
from saga_harness.errors import HarnessError
from saga_harness.history import HistoryWriter, read_history, shard_path


def _write_shard(run_dir, process, n):
    with HistoryWriter(shard_path(run_dir, process), process=process) as w:
        for i in range(n):
            w("invoke", key=f"{process}-{i}")
            time.sleep(0.001)


def test_writer_appends_one_json_object_per_line(tmp_path):
    with HistoryWriter(shard_path(tmp_path), process="runner") as w:
        w("meta", run_id="r1", seed=3)
        w("event", process="sink", event={"id": "e1", "type": "t"})
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    first, second = (json.loads(x) for x in lines)
    assert first["type"] == "meta" and first["process"] == "runner" and first["seed"] == 3
    assert second["process"] == "sink" and second["event"]["id"] == "e1"
    assert first["mono"] <= second["mono"] and first["wall"] <= second["wall"]


def test_shards_from_several_processes_merge_in_time_order(tmp_path):
    procs = [multiprocessing.Process(target=_write_shard, args=(tmp_path, f"worker-{i}", 50)) for i in range(3)]
    for p in procs:
        p.start()
    with HistoryWriter(shard_path(tmp_path), process="runner") as w:
        for i in range(50):
            w("status", saga_id=str(i))
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
