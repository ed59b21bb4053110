"""The history: an append-only JSON-lines log of everything observed in a run.

Writers (:class:`HistoryWriter`) append one observation per line; readers
(:func:`read_history`) stream and merge the shards of a run by time;
:class:`History` indexes a history per saga, in one pass, for the checkers.
The format is documented in ``FORMAT.md`` beside this file.
"""

from saga_harness.history.index import History, SagaRecord, build_index
from saga_harness.history.log import HistoryWriter, shard_path
from saga_harness.history.reader import read_history
from saga_harness.history.records import (
    CapturedEvent,
    Completion,
    FaultChange,
    Invoke,
    Meta,
    Phase,
    Record,
    Snapshot,
    StatusSeen,
    parse,
)

__all__ = [
    "CapturedEvent",
    "Completion",
    "FaultChange",
    "History",
    "HistoryWriter",
    "Invoke",
    "Meta",
    "Phase",
    "Record",
    "SagaRecord",
    "Snapshot",
    "StatusSeen",
    "build_index",
    "parse",
    "read_history",
    "shard_path",
]
