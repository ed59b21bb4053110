"""The HTTP fault proxy as a process: its links, a small JSON control API, and the run loop.

Why a process of its own (``python -m saga_harness.chaos.httpfaults``), as the embedded
Toxiproxy server: the proxies parse every request of the links they sit on; on the
harness's own event loop they would compete with the workload, the history writer and
the display, so a busy harness would look like a slow link and a busy link would starve
the harness's observations. Here they have a loop (uvloop) and a core to themselves.

API (JSON; errors are ``{"error": message}``)::

    GET    /version                      {"name": "saga-harness-httpfaults", "version": 1}
    GET    /links                        [{"name", "listen", "upstream"}, ...]
    POST   /links                        {"name", "upstream": "host:port", "listen": "127.0.0.1:0"} -> 201
                                         (409: the name exists; 400: an address not on loopback nor allowed)
    GET    /links/{name}                 {"name", "listen", "upstream", "rules": [...], "copies": {"sent",
                                         "answered", "dropped", "open"}} (copies: a ``duplicate``'s copies on
                                         their own upstream connections; dropped: that connection failed)
    DELETE /links/{name}                 204; its listener and connections close
    GET    /links/{name}/rules           [HttpRule JSON, ...]
    POST   /links/{name}/rules           HttpRule JSON -> 201 (400: invalid, 409: its id is set)
    DELETE /links/{name}/rules/{id}      204 (404 if absent)
    GET    /links/{name}/calls?since=SEQ[&limit=N]   {"calls": [Call JSON, ...], "next": SEQ}

Chaos traffic stays on loopback: links listen on and connect to 127.0.0.0/8, ::1 or
localhost only, unless a host is allowed with ``--allow-host``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from saga_harness.chaos.httpfaults.proxy import Link
from saga_harness.chaos.httpfaults.rules import HttpRule
from saga_harness.chaos.server.addresses import AddressPolicy, join_host_port, resolve_host, split_host_port
from saga_harness.chaos.server.errors import ApiError
from saga_harness.errors import HarnessError, UnsafeTargetError

__all__ = ["NAME", "VERSION", "Links", "api_app", "serve"]

NAME = "saga-harness-httpfaults"
VERSION = 1
_LINK_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


class Links:
    """The links of one server, confined to the addresses ``policy`` allows. Loop thread only."""

    def __init__(self, policy: AddressPolicy, *, log_size: int = 200_000) -> None:
        self.policy = policy
        self.log_size = log_size
        self.links: dict[str, Link] = {}

    def get(self, name: str) -> Link:
        """The link ``name`` (404 if none)."""
        link = self.links.get(name)
        if link is None:
            raise ApiError(f"no link named {name!r}; create it with POST /links", 404)
        return link

    def _address(self, what: str, address: object) -> tuple[str, int]:
        if not isinstance(address, str) or not address:
            raise ApiError(f"{what!r} must be a 'host:port' string, not {address!r}", 400)
        try:
            host, port = split_host_port(address, "listen" if what == "listen" else "dial")
        except ApiError as exc:
            raise ApiError(f"{what!r}: {exc.message}", 400) from None
        if not self.policy.allows(host):
            raise ApiError(
                f"{what} address {address!r} is not on loopback: the HTTP fault proxy only listens on and "
                f"forwards to 127.0.0.0/8, ::1 or localhost unless the host is allowed "
                f"(python -m saga_harness.chaos.httpfaults --allow-host {host or 'HOST'}). Nothing was changed.",
                400,
            )
        if what == "listen":
            try:
                host = resolve_host(host)
            except ApiError as exc:
                raise ApiError(exc.message, 400) from None
        elif port == 0:
            raise ApiError(f"'upstream' {address!r} has no port to connect to", 400)
        return host, port

    async def create(self, body: Any) -> Link:
        """``POST /links``: a new link, listening."""
        if not isinstance(body, dict):
            raise ApiError("the body must be a JSON object with 'name' and 'upstream'", 400)
        unknown = sorted(set(body) - {"name", "upstream", "listen"})
        if unknown:
            raise ApiError(f"unknown field(s) {unknown}; a link has 'name', 'upstream' and 'listen'", 400)
        name = body.get("name")
        if not isinstance(name, str) or not _LINK_NAME.fullmatch(name):
            raise ApiError(f"'name' must be 1-200 characters of letters, digits, '_.:-', not {name!r}", 400)
        if "upstream" not in body:
            raise ApiError("'upstream' is missing: the 'host:port' the link forwards to", 400)
        upstream = self._address("upstream", body["upstream"])
        listen = self._address("listen", body.get("listen", "127.0.0.1:0"))
        if name in self.links:
            raise ApiError(f"a link named {name!r} exists; DELETE /links/{name} first", 409)
        link = Link(name, listen, upstream, log_size=self.log_size)
        try:
            await link.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ApiError(f"cannot listen on {join_host_port(*listen)}: {reason}", 409 if exc.errno else 500) from None
        if name in self.links:  # created meanwhile
            link.close()
            raise ApiError(f"a link named {name!r} exists; DELETE /links/{name} first", 409)
        self.links[name] = link
        return link

    def delete(self, name: str) -> None:
        """``DELETE /links/{name}``: its listener and connections close."""
        self.get(name)
        self.links.pop(name).close()

    def close(self) -> None:
        """Close every link."""
        for link in self.links.values():
            link.close()
        self.links.clear()


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(value, separators=(",", ":")).encode(), status=status, content_type="application/json"
    )


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(f"the body is not JSON: {exc}", 400) from None


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiError(f"query parameter {name}={value!r} is not an integer", 400) from None
    if number < 0:
        raise ApiError(f"query parameter {name}={value!r} must not be negative", 400)
    return number


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    try:
        return await handler(request)
    except ApiError as exc:
        return _json({"error": exc.message}, exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json({"error": f"{exc.reason}: {request.method} {request.path}"}, exc.status)


def api_app(links: Links) -> web.Application:
    """The control API over ``links`` (see the module docstring)."""

    async def version(request: web.Request) -> web.Response:
        return _json({"name": NAME, "version": VERSION})

    async def link_index(request: web.Request) -> web.Response:
        return _json([link.to_json() for link in links.links.values()])

    async def link_create(request: web.Request) -> web.Response:
        link = await links.create(await _body(request))
        return _json(link.to_json(), 201)

    async def link_show(request: web.Request) -> web.Response:
        link = links.get(request.match_info["name"])
        copies = {**link.copy_stats, "open": len(link.copies)}
        return _json({**link.to_json(), "rules": [r.to_json() for r in link.rules.rules()], "copies": copies})

    async def link_delete(request: web.Request) -> web.Response:
        links.delete(request.match_info["name"])
        return web.Response(status=204)

    async def rule_index(request: web.Request) -> web.Response:
        link = links.get(request.match_info["name"])
        return _json([r.to_json() for r in link.rules.rules()])

    async def rule_create(request: web.Request) -> web.Response:
        link = links.get(request.match_info["name"])
        body = await _body(request)
        try:
            rule = HttpRule.from_json(body)
        except (ValueError, TypeError) as exc:
            raise ApiError(str(exc), 400) from None
        try:
            link.rules.add(rule)
        except ValueError as exc:
            raise ApiError(str(exc), 409) from None
        return _json(rule.to_json(), 201)

    async def rule_delete(request: web.Request) -> web.Response:
        link = links.get(request.match_info["name"])
        rule_id = request.match_info["rule_id"]
        if not link.rules.remove(rule_id):
            raise ApiError(f"link {link.name!r} has no rule {rule_id!r}", 404)
        return web.Response(status=204)

    async def call_index(request: web.Request) -> web.Response:
        link = links.get(request.match_info["name"])
        since = _int_param(request, "since", 0) or 0
        calls, nxt = link.calls.since(since, _int_param(request, "limit", None))
        return _json({"calls": [c.to_json() for c in calls], "next": nxt})

    app = web.Application(middlewares=[_errors])
    app.router.add_get("/version", version)
    app.router.add_get("/links", link_index)
    app.router.add_post("/links", link_create)
    app.router.add_get("/links/{name}", link_show)
    app.router.add_delete("/links/{name}", link_delete)
    app.router.add_get("/links/{name}/rules", rule_index)
    app.router.add_post("/links/{name}/rules", rule_create)
    app.router.add_delete("/links/{name}/rules/{rule_id}", rule_delete)
    app.router.add_get("/links/{name}/calls", call_index)
    return app


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    # A server started for a harness process must not outlive it, even if it was SIGKILLed.
    while os.getppid() == pid:
        await asyncio.sleep(1.0)
    stop.set()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    allowed_hosts: Iterable[str] = (),
    on_ready: Callable[[str], None] | None = None,
    parent_pid: int | None = None,
) -> None:
    """Run the HTTP fault proxy until SIGINT or SIGTERM (or until ``parent_pid`` is no longer our parent).

    ``on_ready`` gets the API's URL once it listens (``port=0`` picks a free port).
    Raises :class:`~saga_harness.errors.UnsafeTargetError` for a non-loopback ``host`` that
    is not allowed, :class:`~saga_harness.errors.HarnessError` if the port is taken.
    """
    policy = AddressPolicy(allowed_hosts)
    if not policy.allows(host):
        raise UnsafeTargetError(
            f"the HTTP fault proxy's API would listen on {host!r}, which is not a loopback address; it only "
            f"binds 127.0.0.0/8, ::1 or localhost unless the host is allowed (--allow-host {host}). "
            f"Nothing was started."
        )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        links = Links(policy)
        runner = web.AppRunner(api_app(links), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise HarnessError(
                f"the HTTP fault proxy's API cannot listen on {join_host_port(host, port)}: {reason}; pick "
                f"another --port (0 picks a free one) or stop the process using it"
            ) from None
        try:
            if on_ready is not None:
                on_ready(f"http://{join_host_port(host, runner.addresses[0][1])}")
            if parent_pid is not None:
                loop.create_task(_watch_parent(parent_pid, stop))
            await stop.wait()
        finally:
            links.close()
            await runner.cleanup()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    loop = _new_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
