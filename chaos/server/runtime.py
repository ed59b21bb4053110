"""Running the embedded server: on its own event loop thread (tests, the harness) or as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable, Iterable

from aiohttp import web
from saga_harness.chaos.server.addresses import AddressPolicy, join_host_port
from saga_harness.chaos.server.api import Api
from saga_harness.chaos.server.collection import ProxyCollection
from saga_harness.errors import HarnessError, UnsafeTargetError


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _Running:
    """The API site and the proxies of one server, on the running loop."""

    def __init__(self, runner: web.AppRunner, collection: ProxyCollection, host: str, port: int) -> None:
        self.runner = runner
        self.collection = collection
        self.host = host
        self.port = port

    async def close(self) -> None:
        self.collection.close()
        await self.runner.cleanup()
        # Connections still dialling their upstream, toxics still sleeping: end them before the loop closes.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _open(host: str, port: int, policy: AddressPolicy) -> _Running:
    if not policy.allows(host):
        raise UnsafeTargetError(
            f"the Toxiproxy API would listen on {host!r}, which is not a loopback address; it only binds "
            f"127.0.0.0/8, ::1 or localhost unless the host is allowed (--allow-host {host}). Nothing was started."
        )
    collection = ProxyCollection(asyncio.get_running_loop(), policy)
    runner = web.AppRunner(Api(collection).app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise HarnessError(
            f"the Toxiproxy API cannot listen on {join_host_port(host, port)}: {reason}; pick another --port "
            f"(0 picks a free one) or stop the process using it"
        ) from None
    bound = runner.addresses[0]
    return _Running(runner, collection, host, bound[1])


def serve(
    host: str = "127.0.0.1",
    port: int = 8474,
    *,
    allowed_hosts: Iterable[str] = (),
    on_ready: Callable[[str], None] | None = None,
    parent_pid: int | None = None,
) -> None:
    """Run a Toxiproxy-compatible server until SIGINT or SIGTERM (or until ``parent_pid`` exits).

    ``on_ready`` gets the API's URL once it listens (``port=0`` picks a free port).
    Proxies may only listen on and connect to loopback, or to ``allowed_hosts``.
    Raises :class:`~saga_harness.errors.UnsafeTargetError` for a non-loopback ``host`` that
    is not allowed, :class:`~saga_harness.errors.HarnessError` if the port is taken.
    """
    policy = AddressPolicy(allowed_hosts)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running = await _open(host, port, policy)
        try:
            if on_ready is not None:
                on_ready(f"http://{join_host_port(host, running.port)}")
            if parent_pid is not None:
                loop.create_task(_watch_parent(parent_pid, stop))
            await stop.wait()
        finally:
            await running.close()

    loop = _new_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    # A server started for a harness process must not outlive it, even if it was SIGKILLed.
    while os.getppid() == pid:
        await asyncio.sleep(1.0)
    stop.set()


class EmbeddedServer:
    """A Toxiproxy-compatible server on a background thread of this process.

    >>> with EmbeddedServer() as server:      # doctest: +SKIP
    ...     Toxiproxy().update_api_consumer(server.host, server.port)

    ``port=0`` (the default) picks a free port; ``url`` is known after ``start()``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, allowed_hosts: Iterable[str] = ()) -> None:
        self.host = host
        self.port = port
        self._policy = AddressPolicy(allowed_hosts)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """The API's base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{join_host_port(self.host, self.port)}"

    def start(self, timeout: float = 10.0) -> EmbeddedServer:
        """Start serving; returns once the API listens (or raises why it could not)."""
        if self._thread is not None:
            return self
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="toxiproxy-embedded", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise HarnessError(f"the embedded Toxiproxy did not start within {timeout:g} s")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: every proxy and connection is closed."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        thread.join(timeout)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = self._loop = _new_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        running = await _open(self.host, self.port, self._policy)
        self.port = running.port
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await running.close()
