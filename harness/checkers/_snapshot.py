"""Reading records out of the final snapshots (shared by the snapshot-based checks)."""

from __future__ import annotations

from typing import Any

from saga_harness.history import History
from saga_harness.model import Records
from saga_harness.pointer import resolve


def records(history: History, rule: Records) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    """``saga_id -> [records]`` for the rule's list in its service's snapshot, and the snapshot's line."""
    snap = history.snapshots.get(rule.service)
    if snap is None:
        return {}, None
    data, ref = snap
    items = resolve(data, rule.items, [])
    out: dict[str, list[dict[str, Any]]] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if any(resolve(item, p, None) != want for p, want in rule.where.items()):
            continue
        sid = resolve(item, rule.saga_id, None)
        if sid is not None:
            out.setdefault(str(sid), []).append(item)
    return out, ref
