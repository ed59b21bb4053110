"""The history: an append-only JSON-lines log of everything observed in a run.

Writers (:class:`HistoryWriter`) append one record per line; readers stream and
merge the shards of a run by time, as JSON lines (:func:`read_history`) or typed
(:func:`read_entries`); :func:`build_index` indexes a history per saga, in one
pass, for the checkers (:class:`History`). The record types — one frozen
dataclass per kind of line, written and read by the same code — are in
:mod:`saga_harness.history.records`.
"""

from saga_harness.history.index import Evidence, History, KeyRecord, SagaRecord, build_index
from saga_harness.history.log import HistoryWriter, shard_path
from saga_harness.history.reader import read_entries, read_history
from saga_harness.history.records import (
    CapturedEvent,
    Completion,
    Entry,
    FaultChange,
    HttpCall,
    Invoke,
    MachineLoad,
    Meta,
    Phase,
    Record,
    Snapshot,
    StatusSeen,
    from_line,
    parse,
    to_line,
)

__all__ = [
    "CapturedEvent",
    "Completion",
    "Entry",
    "Evidence",
    "FaultChange",
    "History",
    "HistoryWriter",
    "HttpCall",
    "Invoke",
    "KeyRecord",
    "MachineLoad",
    "Meta",
    "Phase",
    "Record",
    "SagaRecord",
    "Snapshot",
    "StatusSeen",
    "build_index",
    "from_line",
    "parse",
    "read_entries",
    "read_history",
    "shard_path",
    "to_line",
]
