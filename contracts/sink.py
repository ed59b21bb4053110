"""A validating event sink: a push endpoint a user's bus can point at, that judges every event.

``POST /events`` takes one CloudEvent in binary or structured HTTP content mode
(batched mode is refused, 400) and answers 204 when it is valid (or of a type
with no schema, unless ``strict``), 422 with the failures when it is not.
``GET /summary`` gives the counts by type so far. With ``out``, each event and
its report are appended to a JSON-lines file as they arrive.

It is the harness's :class:`~saga_harness.sink.EventSink` with a judge: the event is
read from the wire as sent — nothing fills in a missing attribute before it is judged.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from saga_harness.contracts.events import EventReport, EventSummary, SchemaRegistry, bundled_registry
from saga_harness.sink import EventSink


class ValidatingSink(EventSink):
    """``await sink.start()``, push to ``sink.url``, ``await sink.stop()``; runs on the caller's loop."""

    def __init__(
        self,
        registry: SchemaRegistry | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        out: Path | None = None,
        strict: bool = False,
    ) -> None:
        super().__init__(lambda _event: None, host, port)  # accept() judges and records instead
        self.registry = registry or bundled_registry()
        self.out = out
        self.strict = strict
        self.summary = EventSummary()
        self._file: IO[str] | None = None

    @property
    def refused(self) -> int:
        """Requests that were not one event (bad JSON, batched mode)."""
        return self.rejected

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/summary", self._summary)

    def accept(self, event: dict[str, Any]) -> web.Response:
        report = self.registry.validate(event)
        self.summary.add(report, where=f"request {self.summary.events + 1}")
        self._record(event, report)
        rejected = report.status == "invalid" or (self.strict and report.status == "unknown")
        if not rejected:
            return web.Response(status=204)
        body_json = report.to_json()
        if report.status == "unknown":
            body_json["failures"] = [{"pointer": "/type", "reason": f"no schema for type {report.type!r} (strict)"}]
        return web.json_response({"error": "invalid CloudEvent", **body_json}, status=422)

    async def _summary(self, _request: web.Request) -> web.Response:
        return web.json_response({**self.summary.to_json(), "refused": self.refused})

    def _record(self, event: dict[str, Any], report: EventReport) -> None:
        if self._file is None:
            return
        line = {"received_at": time.time(), "event": event, "report": report.to_json()}
        self._file.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
        self._file.flush()  # a Ctrl-C must not lose what was already answered

    async def start(self) -> None:
        """Open the output file (appending) and listen; ``port=0`` picks a free port."""
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.out.open("a", encoding="utf-8")
        await super().start()

    async def stop(self) -> None:
        """Stop listening and close the output file."""
        await super().stop()
        if self._file is not None:
            self._file.close()
            self._file = None
