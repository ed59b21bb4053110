"""Hand-built histories, for testing checkers (ours and yours) without a SUT.

    b = HistoryBuilder()
    s = b.saga("s1", trigger="ok")            # invoke + ok for a new saga
    b.event("com.shop.order.created", saga_id="s1", total_cents=100)
    b.status("s1", "COMPLETED", "completed")
    b.snapshot("order", {"orders": [...]})
    verdicts = run_checks(b.entries, model)

Entries look exactly like a recorded ``history.jsonl``, with ``ref`` set to
``"built:<n>"`` so violations can cite them.
"""

from __future__ import annotations

import itertools
from typing import Any

from saga_harness.checkers import Verdicts, run_checks
from saga_harness.model import SagaModel


class HistoryBuilder:
    def __init__(self, start: float = 1_000.0) -> None:
        self.entries: list[dict[str, Any]] = []
        self._clock = start
        self._ids = itertools.count(1)

    def _add(self, type_: str, **fields: Any) -> dict[str, Any]:
        self._clock += 0.01
        entry = {
            "mono": self._clock,
            "wall": self._clock,
            "process": fields.pop("process", "test"),
            "type": type_,
            **fields,
        }
        entry["ref"] = f"built:{len(self.entries) + 1}"
        self.entries.append(entry)
        return entry

    def wait(self, seconds: float) -> None:
        self._clock += seconds

    def saga(
        self,
        saga_id: str,
        trigger: str = "ok",
        key: str | None = None,
        status: int = 202,
        request: dict[str, Any] | None = None,
    ) -> str:
        """A client starting saga ``saga_id`` (invoke, then ok)."""
        self.answer(key or f"key-{saga_id}", saga_id, status, trigger, request)
        return saga_id

    def answer(
        self,
        key: str,
        saga_id: str | None,
        status: int = 202,
        trigger: str = "ok",
        request: dict[str, Any] | None = None,
    ) -> None:
        """One request with ``key`` and its answer (``ok`` below 300, else ``fail``): a start or a resubmission."""
        op = next(self._ids)
        base = {"process": "client", "f": "start_saga", "op": op, "key": key, "trigger": trigger}
        self._add("invoke", **base, request=request or {"trigger": trigger})
        self._add("ok" if status < 300 else "fail", **base, status=status, value={"saga_id": saga_id}, saga_id=saga_id)

    def event(
        self,
        type_: str,
        saga_id: str,
        event_id: str | None = None,
        source: str = "/test",
        time: str | None = None,
        **data: Any,
    ) -> dict[str, Any]:
        """A captured CloudEvent whose data carries ``saga_id`` and ``data``."""
        event = {
            "specversion": "1.0",
            "id": event_id or f"ev-{next(self._ids)}",
            "source": source,
            "type": type_,
            "data": {"saga_id": saga_id, **data},
        }
        if time is not None:
            event["time"] = time
        return self._add("event", process="sink", event=event)

    def status(self, saga_id: str, state: str, outcome: str | None = None) -> None:
        self._add("status", process="client", saga_id=saga_id, state=state, outcome=outcome)

    def snapshot(self, service: str, data: dict[str, Any]) -> None:
        self._add("snapshot", process="runner", service=service, data=data)

    def check(self, model: SagaModel, names: list[str] | None = None) -> Verdicts:
        return run_checks(self.entries, model, names)
