"""Toxiproxy 2.x's HTTP API, answered the way its Go server answers.

Routing is done by hand (one catch-all aiohttp route) so that every detail a client can
see matches: a known path with the wrong method is a 405 with an empty body, an unknown
path is Go's ``404 page not found``, errors are ``{"error": ..., "status": N}`` plus a
newline as ``text/plain`` (Go's ``http.Error``), DELETE and /reset are 204 with no body,
creating a toxic is a 200, and JSON is compact with Go's field order and escaping.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from saga_harness.chaos.server.collection import ProxyCollection
from saga_harness.chaos.server.errors import ApiError

VERSION = "2.12.0"  # the Toxiproxy release whose API and toxics this server follows

Handler = Callable[..., Awaitable[web.Response]]

_PLAIN = "text/plain; charset=utf-8"


def go_json(value: Any) -> bytes:
    """``value`` as Go's ``json.Marshal`` writes it: compact, UTF-8, with <, >, & escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text.encode()


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=go_json(value), status=status, headers={"Content-Type": "application/json"})


def _plain(status: int, text: str) -> web.Response:
    # Go's http.Error: text/plain, nosniff, the message and a newline.
    return web.Response(
        body=text.encode(), status=status, headers={"Content-Type": _PLAIN, "X-Content-Type-Options": "nosniff"}
    )


def error_response(err: ApiError) -> web.Response:
    """An API error as Toxiproxy sends it."""
    return _plain(err.status, go_json({"error": err.message, "status": err.status}).decode() + "\n")


def _empty(status: int) -> web.Response:
    return web.Response(status=status)


class Api:
    """The HTTP API over a :class:`ProxyCollection`; state changes are serialized by one lock."""

    def __init__(self, collection: ProxyCollection) -> None:
        self.collection = collection
        self.lock = asyncio.Lock()
        p, t = r"(?P<proxy>[^/]+)", r"(?P<toxic>[^/]+)"
        self.routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"/reset"), {"POST": self.reset}),
            (re.compile(r"/proxies"), {"GET": self.proxy_index, "POST": self.proxy_create}),
            (re.compile(r"/populate"), {"POST": self.populate}),
            (
                re.compile(rf"/proxies/{p}"),
                {
                    "GET": self.proxy_show,
                    "POST": self.proxy_update,
                    "PATCH": self.proxy_update,
                    "DELETE": self.proxy_delete,
                },
            ),
            (re.compile(rf"/proxies/{p}/toxics"), {"GET": self.toxic_index, "POST": self.toxic_create}),
            (
                re.compile(rf"/proxies/{p}/toxics/{t}"),
                {
                    "GET": self.toxic_show,
                    "POST": self.toxic_update,
                    "PATCH": self.toxic_update,
                    "DELETE": self.toxic_delete,
                },
            ),
            (re.compile(r"/version"), {"GET": self.version}),
        ]

    def app(self) -> web.Application:
        """The aiohttp application serving this API."""
        app = web.Application(client_max_size=16 << 20)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.Response:
        """Route ``request`` as gorilla/mux does in Toxiproxy, then run the handler."""
        for pattern, methods in self.routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                return _empty(405)
            # Toxiproxy refuses browsers, so a web page cannot drive a local server (CSRF).
            if request.headers.get("User-Agent", "").startswith("Mozilla/"):
                return _plain(403, "User agent not allowed\n")
            try:
                return await handler(request, **match.groupdict())
            except ApiError as err:
                return error_response(err)
        return _plain(404, "404 page not found\n")

    # --- handlers -------------------------------------------------------------------------
    async def proxy_index(self, request: web.Request) -> web.Response:
        proxies = self.collection.proxies
        return _json({name: proxies[name].to_json() for name in sorted(proxies)})

    async def proxy_create(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with self.lock:
            proxy = await self.collection.create(body)
        return _json(proxy.to_json(), 201)

    async def populate(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with self.lock:
            proxies, err = await self.collection.populate(body)
        # Toxiproxy sends null, not [], when nothing was created.
        listed = [p.to_json() for p in proxies] if proxies else None
        if err is None:
            return _json({"proxies": listed}, 201)
        return _json({"error": err.message, "status": err.status, "proxies": listed}, err.status)

    async def proxy_show(self, request: web.Request, proxy: str) -> web.Response:
        return _json(self.collection.get(proxy).to_json())

    async def proxy_update(self, request: web.Request, proxy: str) -> web.Response:
        body = await request.read()
        async with self.lock:
            updated = await self.collection.update(proxy, body)
        return _json(updated.to_json())

    async def proxy_delete(self, request: web.Request, proxy: str) -> web.Response:
        async with self.lock:
            self.collection.remove(proxy)
        return _empty(204)

    async def toxic_index(self, request: web.Request, proxy: str) -> web.Response:
        return _json([t.to_json() for t in self.collection.get(proxy).toxics()])

    async def toxic_create(self, request: web.Request, proxy: str) -> web.Response:
        body = await request.read()
        async with self.lock:
            toxic = self.collection.add_toxic(proxy, body)
        return _json(toxic.to_json())  # 200, not 201: Toxiproxy's choice

    async def toxic_show(self, request: web.Request, proxy: str, toxic: str) -> web.Response:
        return _json(self.collection.get_toxic(proxy, toxic)[1].to_json())

    async def toxic_update(self, request: web.Request, proxy: str, toxic: str) -> web.Response:
        body = await request.read()
        async with self.lock:
            updated = await self.collection.update_toxic(proxy, toxic, body)
        return _json(updated.to_json())

    async def toxic_delete(self, request: web.Request, proxy: str, toxic: str) -> web.Response:
        async with self.lock:
            await self.collection.remove_toxic(proxy, toxic)
        return _empty(204)

    async def reset(self, request: web.Request) -> web.Response:
        async with self.lock:
            await self.collection.reset()
        return _empty(204)

    async def version(self, request: web.Request) -> web.Response:
        return web.Response(
            body=f'{{"version": "{VERSION}"}}\n'.encode(),
            headers={"Content-Type": "application/json;charset=utf-8"},
        )
