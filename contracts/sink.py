"""A validating event sink: a push endpoint a user's bus can point at, that judges every event.

``POST /events`` takes one CloudEvent in binary or structured HTTP content mode
(batched mode is refused, 400) and answers 204 when it is valid (or of a type
with no schema, unless ``strict``), 422 with the failures when it is not.
``GET /summary`` gives the counts by type so far. With ``out``, each event and
its report are appended to a JSON-lines file as they arrive.

The event is read from the wire with :func:`harness.sink.event_from_wire` —
nothing fills in a missing attribute before it is judged.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from contracts.events import EventReport, EventSummary, SchemaRegistry, bundled_registry
from harness.sink import WireError, event_from_wire


class ValidatingSink:
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
        self.registry = registry or bundled_registry()
        self.host = host
        self.port = port
        self.out = out
        self.strict = strict
        self.summary = EventSummary()
        self.refused = 0  # requests that were not one event (bad JSON, batched mode)
        self._file: IO[str] | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/events"

    def app(self) -> web.Application:
        """The aiohttp application (routes ``POST /events`` and ``GET /summary``)."""
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/events", self._receive)
        app.router.add_get("/summary", self._summary)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = event_from_wire(dict(request.headers), body)
        except WireError as exc:
            self.refused += 1
            return web.json_response({"error": "not accepted", "reason": str(exc)}, status=400)
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
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await self.stop()
            raise
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Stop listening and close the output file."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._file is not None:
            self._file.close()
            self._file = None
