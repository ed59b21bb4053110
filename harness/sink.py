"""The event sink: an HTTP endpoint a SUT's bus pushes every CloudEvent to.

It accepts both HTTP content modes — binary (``ce-*`` headers, data in the
body) and structured (``application/cloudevents+json``) — and refuses batched
mode. It records the event exactly as it came over the wire, in structured
form, before any SDK could fill in a missing attribute, and hands it to
``on_event`` (the run's history writer). It runs on the caller's asyncio loop.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


class WireError(ValueError):
    """The request is not one CloudEvent in a content mode the sink accepts."""


def event_from_wire(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The structured-form object of a pushed event, exactly as sent (no defaults filled in)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ctype = lowered.get("content-type", "")
    if ctype.startswith(BATCH):
        raise WireError("batched content mode is not accepted: push one event per request")
    attrs = {k[3:]: v for k, v in lowered.items() if k.startswith("ce-")}
    if attrs:  # binary mode
        event: dict[str, Any] = dict(attrs)
        if ctype:
            event["datacontenttype"] = ctype
        if body:
            if "json" in ctype or not ctype:
                try:
                    event["data"] = json.loads(body)
                except ValueError as exc:
                    raise WireError(f"binary-mode body is not valid JSON: {exc}") from None
            else:
                event["data_base64"] = base64.b64encode(body).decode()
        return event
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise WireError(f"structured-mode body is not valid JSON: {exc}") from None
    if not isinstance(event, dict):
        raise WireError("a structured-mode event must be a JSON object")
    return event


class EventSink:
    """An in-process HTTP sink: ``await sink.start()``, push to ``sink.url``, ``await sink.stop()``.

    Subclasses judge what arrives by overriding :meth:`accept` (the answer to one
    well-formed event) and add routes in :meth:`routes`.
    """

    def __init__(self, on_event: Callable[[dict[str, Any]], None], host: str = "127.0.0.1", port: int = 0) -> None:
        self.on_event = on_event
        self.host = host
        self.port = port
        self.received = 0
        self.rejected = 0  # requests that were not one event (bad JSON, batched mode)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/events"

    def accept(self, event: dict[str, Any]) -> web.Response:
        """Take one event as it came over the wire; the answer to its pusher."""
        self.on_event(event)
        return web.Response(status=204)

    def routes(self, app: web.Application) -> None:
        """Routes beside ``POST /events``."""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/events", self._receive)
        self.routes(app)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = event_from_wire(dict(request.headers), body)
        except WireError as exc:
            self.rejected += 1
            return web.json_response({"error": "not accepted", "reason": str(exc)}, status=400)
        self.received += 1
        return self.accept(event)

    async def start(self) -> None:
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
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
