"""Reading a history: stream each shard, merge them by time, keep line references.

:func:`read_history` yields the lines as JSON objects (what :func:`~saga_harness.history.build_index`
and ``run_checks`` take); :func:`read_entries` yields them typed (:class:`~saga_harness.history.Entry`).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from saga_harness.errors import HarnessError
from saga_harness.history.log import MAIN, SHARDS
from saga_harness.history.records import Entry, from_line

try:  # orjson parses several times faster; the format is plain JSON either way
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover
    _loads = json.loads


def _shards(path: Path) -> list[Path]:
    if path.is_dir():
        files = [path / MAIN] if (path / MAIN).exists() else []
        if (path / SHARDS).is_dir():
            files += sorted((path / SHARDS).glob("*.jsonl"))
        if not files:
            raise HarnessError(f"{path}: no {MAIN} (or {SHARDS}/*.jsonl) in this run directory")
        return files
    if not path.exists():
        raise HarnessError(f"{path}: no such history file")
    files = [path]
    if path.name == MAIN and (path.parent / SHARDS).is_dir():
        files += sorted((path.parent / SHARDS).glob("*.jsonl"))
    return files


def _stream(path: Path, label: str) -> Iterator[tuple[float, float, int, dict[str, Any]]]:
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = _loads(line)
            except ValueError as exc:
                raise HarnessError(f"{path}:{n}: not a JSON object ({exc}); the history is damaged here") from None
            entry["ref"] = f"{label}:{n}"
            yield entry.get("wall", 0.0), entry.get("mono", 0.0), n, entry


def read_history(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every entry of a run (a run directory, or a history file), merged by wall then
    monotonic time. Each entry carries ``ref`` = ``"<file>:<line>"`` to cite as evidence."""
    path = Path(path)
    files = _shards(path)
    streams = [_stream(f, f.name if f.parent.name != SHARDS else f"{SHARDS}/{f.name}") for f in files]
    if len(streams) == 1:
        for *_key, entry in streams[0]:
            yield entry
        return
    for *_key, entry in heapq.merge(*streams, key=lambda t: (t[0], t[1])):
        yield entry


def read_entries(path: str | Path) -> Iterator[Entry]:
    """Every entry of a run, typed: as :func:`read_history`, each line parsed into its
    :class:`~saga_harness.history.Entry` (lines of a type this version does not know are skipped)."""
    for line in read_history(path):
        entry = from_line(line)
        if entry is not None:
            yield entry
