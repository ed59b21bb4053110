"""Push signatures for contract tests: the verifier and the fuzzer send what a real pusher would.

Pact replays a request exactly as the consumer recorded it, so a recorded
signature is stale (wrong timestamp) by the time the provider sees it. A
:class:`SigningProxy` sits between the verifier and the provider and re-signs
every request body with the SUT's test secret, as the real task queue or bus would.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import threading
import time

import aiohttp
from aiohttp import web
from saga_harness.sut import Signing

# Fuzzers send requests aiohttp refuses to parse (NUL in a header); that is their
# job, not an error of the proxy: keep aiohttp's tracebacks for them off the screen.
_quiet = logging.getLogger("contracts.signing.proxy")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False

# Headers a reverse proxy must not forward verbatim.
_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


def sign(signing: Signing, body: bytes, now: float | None = None) -> dict[str, str]:
    """The signature headers for ``body``."""
    ts = str(int(now if now is not None else time.time()))
    mac = hmac.new(signing.secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {signing.timestamp_header: ts, signing.signature_header: f"{signing.prefix}{mac}"}


class SigningProxy:
    """A loopback reverse proxy to ``target`` that signs each request; a context manager.

    It runs its own event loop in a thread, because Pact's verifier blocks the
    calling thread while it replays.
    """

    def __init__(self, target: str, signing: Signing) -> None:
        self.target = target.rstrip("/")
        self.signing = signing
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="signing-proxy", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SigningProxy:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None or not self.port:
            raise RuntimeError(f"signing proxy to {self.target} did not start: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the caller through __enter__
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def forward(request: web.Request) -> web.StreamResponse:
                body = await request.read()
                headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
                headers.update(sign(self.signing, body))
                async with session.request(
                    request.method, self.target + request.path_qs, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    payload = await resp.read()
                    out = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
                    return web.Response(status=resp.status, body=payload, headers=out)

            app = web.Application(client_max_size=16 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", forward)
            runner = web.AppRunner(app, access_log=None, logger=_quiet)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()
