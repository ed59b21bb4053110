"""The event sink: an HTTP endpoint a SUT's bus pushes every CloudEvent to.

It accepts both single-event HTTP content modes — binary (``ce-*`` headers,
data in the body) and structured (``application/cloudevents+json``) — at
``/events``, and refuses batched mode there; batched mode (a JSON array of
structured events) has a route of its own, ``/events:batch``, for a system
that can push many events per request (the reference bus does: one request
per event cost its bus more than all its other subscriptions together, and
the harness fell behind the system it watched). It records the event exactly as it came over the wire, in structured
form, before any SDK could fill in a missing attribute (binary-mode header values percent-decoded, as
the HTTP binding requires, by the CloudEvents SDK), and hands it to
``on_event`` (the run's history writer). It runs on the caller's asyncio loop.

:class:`Arrivals` keeps when events arrived, and :func:`quiet_window_s` says how long
the stream must stay silent before it counts as quiet: the runner judges a run only
once the events it can still expect are in.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from cloudevents.core.bindings.common import decode_header_value

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
QUIET_CAP_S = 30.0  # the quiet window never grows past this


class WireError(ValueError):
    """The request is not one CloudEvent in a content mode the sink accepts."""


def events_from_batch(headers: dict[str, str], body: bytes) -> list[dict[str, Any]]:
    """The events of a batched-mode push (a JSON array of structured events), exactly as sent."""
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if ctype and not ctype.startswith(BATCH) and not ctype.startswith("application/json"):
        raise WireError(f"a batch is {BATCH} (a JSON array of structured events), not {ctype}")
    try:
        batch = json.loads(body)
    except ValueError as exc:
        raise WireError(f"batched-mode body is not valid JSON: {exc}") from None
    if not isinstance(batch, list) or not all(isinstance(e, dict) for e in batch):
        raise WireError("a batch must be a JSON array of event objects")
    return batch


def _header_value(name: str, value: str) -> str:
    """A binary-mode attribute as the event holds it: the HTTP binding percent-encodes ``ce-*`` header
    values (``caf%C3%A9%20au%20lait`` is "café au lait"), and the CloudEvents SDK decodes them. ``time``
    stays text (the SDK would make it a datetime): its format is judged as it was sent."""
    if name == "time":
        return unquote(value)
    return str(decode_header_value(name, value))


def event_from_wire(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The structured-form object of a pushed event, exactly as sent (no defaults filled in)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ctype = lowered.get("content-type", "")
    if ctype.startswith(BATCH):
        raise WireError("batched content mode is not accepted: push one event per request")
    attrs = {k[3:]: _header_value(k[3:], v) for k, v in lowered.items() if k.startswith("ce-")}
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
        """Where one event per request is pushed (binary or structured mode)."""
        return f"http://{self.host}:{self.port}/events"

    @property
    def batch_url(self) -> str:
        """Where batches are pushed (batched mode: a JSON array of structured events)."""
        return f"http://{self.host}:{self.port}/events:batch"

    def accept(self, event: dict[str, Any]) -> web.Response:
        """Take one event as it came over the wire; the answer to its pusher."""
        self.on_event(event)
        return web.Response(status=204)

    def routes(self, app: web.Application) -> None:
        """Routes beside ``POST /events``."""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/events", self._receive)
        app.router.add_post("/events:batch", self._receive_batch)
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

    async def _receive_batch(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            batch = events_from_batch(dict(request.headers), body)
        except WireError as exc:
            self.rejected += 1
            return web.json_response({"error": "not accepted", "reason": str(exc)}, status=400)
        # One answer for the whole batch: each element is taken (and judged, by a subclass's
        # accept) on its own; a pusher that saw a refusal would push the whole batch again.
        for event in batch:
            self.received += 1
            self.accept(event)
        return web.Response(status=204)

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


class Arrivals:
    """When events arrived (the harness's monotonic clock): how many in the last second, how far
    apart they come lately, and when each saga last had one — what the quiet window and the
    progress of a saga are judged by. Cheap: a bounded deque and a dict."""

    RECENT = 256  # arrivals kept for the typical gap

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.count = 0
        self._recent: deque[float] = deque(maxlen=self.RECENT)

    def add(self, now: float) -> None:
        self.last = now
        self.count += 1
        self._recent.append(now)

    def in_last(self, seconds: float, now: float | None = None) -> int:
        """Arrivals in the last ``seconds`` (at most :attr:`RECENT` are remembered)."""
        since = (time.monotonic() if now is None else now) - seconds
        return sum(1 for t in reversed(self._recent) if t > since)

    def typical_gap_s(self) -> float:
        """The median gap between the recent arrivals (0 with fewer than three)."""
        times = list(self._recent)
        if len(times) < 3:
            return 0.0
        return statistics.median(b - a for a, b in zip(times, times[1:], strict=False))


def quiet_window_s(
    *,
    floor_s: float,
    typical_gap_s: float,
    drain_signal: bool,
    retry_interval_s: float | None,
    longest_fault_s: float,
    loop_lag_s: float = 0.0,
) -> float:
    """How long the event stream must stay silent before it counts as quiet; pure.

    At least ``floor_s``; five typical gaps between recent events (a slow system's events come
    far apart); when the system gives no drain signal, long enough for a delivery in retry to be
    tried again: the retry backoff's cap (with slack) where the system states it, else, after
    faults, the longest fault (a retry chain backs off about as long as it kept failing); plus
    the harness's own loop lag (an event it has not read yet is not silence). At most
    :data:`QUIET_CAP_S`.
    """
    window = max(floor_s, 5 * typical_gap_s)
    if not drain_signal:
        if retry_interval_s is not None:
            window = max(window, 1.5 * retry_interval_s)
        elif longest_fault_s > 0:
            window = max(window, longest_fault_s)
    return min(QUIET_CAP_S, window + loop_lag_s)
