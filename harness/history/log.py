"""Appending observations: one JSON object per line, never rewritten.

Each writer process owns its shard — the main process ``history.jsonl``, any
other ``history.d/<process>.jsonl`` — so several processes (Locust workers, a
nemesis) can record at once without locks between them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from saga_harness.history.records import Record, to_line

MAIN = "history.jsonl"
SHARDS = "history.d"


def shard_path(run_dir: str | Path, process: str | None = None) -> Path:
    """Where ``process`` writes in ``run_dir`` (None: the main shard)."""
    run_dir = Path(run_dir)
    if process is None:
        return run_dir / MAIN
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in process)
    return run_dir / SHARDS / f"{safe}.jsonl"


class HistoryWriter:
    """Thread-safe appender: ``append(record)`` adds one line (a :mod:`~saga_harness.history.records`
    record in its envelope), flushed at once."""

    def __init__(self, path: str | Path, process: str = "runner") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.process = process
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in close()
        self.count = 0

    def append(self, record: Record, process: str | None = None) -> None:
        """Append ``record``; ``process`` names the writer when it is not this writer's own."""
        entry = to_line(record, mono=time.monotonic(), wall=time.time(), process=process or self.process)
        line = json.dumps(entry, separators=(",", ":"), default=str)
        with self._lock:
            self._file.write(line + "\n")
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
