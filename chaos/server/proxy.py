"""The TCP proxy: a listener per proxy, and per connection two links (upstream = client→server,
downstream = server→client), each a chain of toxic stages ending in the other socket.

Built on asyncio Protocols (uvloop in practice), not streams: with no toxic on a link,
``data_received`` writes straight into the other transport, so a chunk costs one call
and flow control is the transports' own (the reader pauses while the writer's buffer
is above its high-water mark). With toxics, chunks go through :class:`Stage` queues,
one task per toxic, and the link pauses its reader while the stages hold too much.

Everything here runs on the event loop thread: no locks, and every hand-over between
stages is synchronous, so adding or removing a toxic on a live connection keeps the
byte order.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import socket
import struct
import time
from collections.abc import Coroutine
from typing import Any

from saga_harness.chaos.server.addresses import join_host_port, resolve_host, split_host_port
from saga_harness.chaos.server.errors import server_error
from saga_harness.chaos.server.toxics import DOWNSTREAM, UPSTREAM, ResetPeerToxic, Toxic, noop_pipe

log = logging.getLogger(__name__)

# Transport write buffers: large, so a bulk transfer rarely stops its reader.
WRITE_HIGH, WRITE_LOW = 4 << 20, 1 << 20
# Bytes waiting in a link's toxic stages before its reader pauses (Toxiproxy's channels hold ~1024 chunks).
CHAIN_HIGH, CHAIN_LOW = 4 << 20, 1 << 20

# Why a link's source is paused; it reads again when no reason is left.
_PAUSE_CONNECT, _PAUSE_DEST, _PAUSE_CHAIN = 1, 2, 4

_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_now = time.monotonic


class Chunk:
    """Bytes read from a socket, with the time they were read (latency counts from it)."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes, ts: float) -> None:
        self.data = data
        self.ts = ts


_EOF: Any = object()  # what a stage holds after reading the end of stream


class Stage:
    """One toxic on one link: its input queue, the chunk it holds, and the task running its pipe."""

    __slots__ = ("link", "toxic", "next", "queue", "waiter", "held", "closed", "state", "task")

    def __init__(self, link: Link, toxic: Toxic, next_: Stage | Link) -> None:
        self.link = link
        self.toxic = toxic
        self.next = next_
        self.queue: collections.deque[Chunk | None] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.held: Any = None
        self.closed = False
        self.state = toxic.new_state()
        self.task: asyncio.Task[None] | None = None

    # --- fed by the previous stage or the socket ---------------------------------
    def put(self, chunk: Chunk | None) -> None:
        """Queue a chunk (None: end of stream); a closed stage drops it."""
        if self.closed:
            return
        self.queue.append(chunk)
        if chunk is not None:
            self.link.queued(len(chunk.data))
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- the API a toxic's pipe uses ------------------------------------------------
    async def recv(self) -> Chunk | None:
        """The next chunk, or None at the end of stream; the stage holds it until released."""
        while not self.queue:
            self.waiter = waiter = self.link.loop.create_future()
            try:
                await waiter
            finally:
                self.waiter = None
        chunk = self.queue.popleft()
        if chunk is None:
            self.held = _EOF
        else:
            self.link.dequeued(len(chunk.data))
            self.held = chunk
        return chunk

    async def wait_input(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for input; False if none came."""
        if not self.queue:
            self.waiter = waiter = self.link.loop.create_future()
            timer = self.link.loop.call_later(timeout, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self.waiter = None
        return bool(self.queue)

    def emit(self) -> None:
        """Pass the held chunk on."""
        chunk, self.held = self.held, None
        if isinstance(chunk, Chunk):
            self.next.put(chunk)

    def emit_part(self, n: int) -> None:
        """Pass the first ``n`` bytes of the held chunk on and keep holding the rest."""
        held = self.held
        self.next.put(Chunk(held.data[:n], held.ts))
        held.data = held.data[n:]

    def discard(self) -> None:
        """Drop the held chunk."""
        self.held = None

    def close(self) -> None:
        """End the stream here: what is queued is dropped and the close goes on to the socket."""
        if self.closed:
            return
        self.closed = True
        self.held = None
        dropped = sum(len(c.data) for c in self.queue if c is not None)
        self.queue.clear()
        if dropped:
            self.link.dequeued(dropped)
        self.next.put(None)

    # --- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        """Run the toxic; toxicity is drawn each time it (re)starts on this connection, as in Toxiproxy."""
        toxic = self.toxic
        active = random.random() < toxic.toxicity
        self.task = self.link.loop.create_task(self._run(toxic.pipe(self) if active else noop_pipe(self)))

    async def _run(self, pipe: Coroutine[Any, Any, None]) -> None:
        try:
            await pipe
        except asyncio.CancelledError:
            pass  # interrupted: ``interrupt`` passes on what the stage holds
        except Exception:  # a bug in a toxic must not leave the connection hanging
            log.exception("toxic %s failed; closing its connection", self.toxic.name)
            self.close()

    async def interrupt(self) -> bool:
        """Stop the toxic and pass on what it held; False if it had already ended the stream."""
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        if self.closed:
            return False
        held, self.held = self.held, None
        if held is _EOF:
            self.close()
            return False
        if held is not None:
            self.next.put(held)
        return True

    def drain_into(self, target: Stage | Link) -> None:
        """Hand every queued chunk to ``target``, in order (the stage is being removed)."""
        queue = self.queue
        while queue:
            chunk = queue.popleft()
            if chunk is not None:
                self.link.dequeued(len(chunk.data))
            target.put(chunk)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Link:
    """One direction of a connection: ``source`` → toxic stages → ``dest``.

    The link is itself the last element of its chain (``put`` writes to ``dest``), so
    with no toxic ``head`` is the link and data go straight through.
    """

    __slots__ = (
        "loop",
        "direction",
        "source",
        "dest",
        "head",
        "stages",
        "open",
        "eof",
        "buffered",
        "paused",
        "pending",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, direction: str) -> None:
        self.loop = loop
        self.direction = direction
        self.source: asyncio.Transport | None = None
        self.dest: asyncio.Transport | None = None
        self.head: Stage | Link = self
        self.stages: list[Stage] = []
        self.open = False  # dest can be written
        self.eof = False  # the end of stream from source was fed in
        self.buffered = 0  # bytes queued in stages
        self.paused = 0  # bit set of _PAUSE_* reasons
        # Data read before the connection is wired (the loop may deliver some before pause_reading
        # takes effect); None once wired.
        self.pending: list[bytes] | None = []

    def put(self, chunk: Chunk | None) -> None:
        """The end of the chain: write to ``dest``, or close it at the end of stream."""
        if not self.open:
            return
        if chunk is None:
            # Toxiproxy closes the whole socket on EOF: a half-close tears the connection down.
            self.open = False
            self.dest.close()  # type: ignore[union-attr]
            return
        try:
            self.dest.write(chunk.data)  # type: ignore[union-attr]
        except RuntimeError:  # dest failed a moment ago; its connection_lost is on its way
            self.open = False

    def feed(self, data: bytes) -> None:
        """Data read from ``source`` (the slow path; ``_Side.data_received`` inlines the fast one)."""
        head = self.head
        if head is not self:
            head.put(Chunk(data, _now()))
        elif self.open:
            self.put(Chunk(data, 0.0))
        elif self.pending is not None:
            self.pending.append(data)
            self.pause(_PAUSE_CONNECT)

    def feed_eof(self) -> None:
        if not self.eof:
            self.eof = True
            if self.pending is None:
                self.head.put(None)

    def wired(self) -> None:
        """The connection is up and the toxics are in place: pass on what was read meanwhile."""
        pending, self.pending = self.pending, None
        for data in pending or ():
            self.feed(data)
        if self.eof:
            self.head.put(None)
        self.resume(_PAUSE_CONNECT)

    # --- flow control ----------------------------------------------------------------
    def pause(self, reason: int) -> None:
        if not self.paused and self.source is not None:
            try:
                self.source.pause_reading()
            except Exception:  # closing transport: nothing to pause
                pass
        self.paused |= reason

    def resume(self, reason: int) -> None:
        if not self.paused & reason:
            return
        self.paused &= ~reason
        if not self.paused and self.source is not None and not self.source.is_closing():
            try:
                self.source.resume_reading()
            except Exception:  # closing transport: nothing to resume
                pass

    def queued(self, n: int) -> None:
        self.buffered += n
        if self.buffered > CHAIN_HIGH and not self.paused & _PAUSE_CHAIN:
            self.pause(_PAUSE_CHAIN)

    def dequeued(self, n: int) -> None:
        self.buffered -= n
        if self.paused & _PAUSE_CHAIN and self.buffered <= CHAIN_LOW:
            self.resume(_PAUSE_CHAIN)

    # --- live toxics -------------------------------------------------------------------
    def add_toxic(self, toxic: Toxic) -> None:
        """Append a stage for ``toxic`` at the end of the chain (before ``dest``)."""
        stage = Stage(self, toxic, self)
        if self.stages:
            self.stages[-1].next = stage
        else:
            self.head = stage
        self.stages.append(stage)
        stage.start()

    def _stage(self, toxic: Toxic) -> Stage | None:
        for stage in self.stages:
            if stage.toxic is toxic:
                return stage
        return None

    async def update_toxic(self, toxic: Toxic) -> None:
        """Restart ``toxic``'s stage so it picks up new attributes (and draws its toxicity again)."""
        stage = self._stage(toxic)
        if stage is not None and await stage.interrupt():
            stage.start()

    async def remove_toxic(self, toxic: Toxic) -> None:
        """Take ``toxic``'s stage out of the chain; what it held or queued goes on, in order."""
        stage = self._stage(toxic)
        if stage is None:
            return
        if await stage.interrupt():
            toxic.cleanup(stage)
        if stage not in self.stages:  # the connection went away meanwhile
            return
        index = self.stages.index(stage)
        after = stage.next
        stage.drain_into(after)
        if index:
            self.stages[index - 1].next = after
        else:
            self.head = after
        del self.stages[index]

    def cancel(self) -> None:
        for stage in self.stages:
            stage.cancel()


class _Side(asyncio.Protocol):
    """One socket of a connection: feeds the link reading it, throttles the link writing to it."""

    __slots__ = ("conn", "out", "into", "transport")

    def __init__(self, conn: Connection, out: Link, into: Link) -> None:
        self.conn = conn
        self.out = out  # the link this socket is the source of
        self.into = into  # the link writing to this socket
        self.transport: asyncio.Transport | None = None

    def data_received(self, data: bytes) -> None:
        link = self.out
        if link.head is link and link.open:  # the fast path: no toxic on this link
            try:
                link.dest.write(data)  # type: ignore[union-attr]
            except RuntimeError:  # dest failed a moment ago; its connection_lost is on its way
                link.open = False
        else:
            link.feed(data)

    def eof_received(self) -> bool:
        self.out.feed_eof()
        return True  # keep the socket writable; the other link closes it when its stream ends

    def pause_writing(self) -> None:
        self.into.pause(_PAUSE_DEST)

    def resume_writing(self) -> None:
        self.into.resume(_PAUSE_DEST)

    def connection_lost(self, exc: Exception | None) -> None:
        self.into.open = False
        self.out.feed_eof()
        self.conn.side_lost(self)


class _ClientSide(_Side):
    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.conn.accepted(self, transport)  # type: ignore[arg-type]


class _UpstreamSide(_Side):
    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.conn.alive += 1
        # Nothing is read from the server until the toxics are in place on this connection.
        transport.pause_reading()  # type: ignore[attr-defined]


class Connection:
    """A client connection and its upstream connection, joined by two links."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        loop = proxy.loop
        self.up = Link(loop, UPSTREAM)
        self.down = Link(loop, DOWNSTREAM)
        self.client = _ClientSide(self, self.up, self.down)
        self.upstream: _UpstreamSide | None = None
        self.down.paused = _PAUSE_CONNECT  # resumed once the toxics are in place
        self.alive = 0  # sockets not yet lost
        self.dead = False

    def accepted(self, side: _ClientSide, transport: asyncio.Transport) -> None:
        side.transport = transport
        self.alive += 1
        self.up.source = transport
        self.down.dest = transport
        _tune(transport)
        # Nothing is read from the client until the upstream connection is up.
        self.up.pause(_PAUSE_CONNECT)
        self.proxy.connections.add(self)
        self.proxy.loop.create_task(self._connect())

    async def _connect(self) -> None:
        proxy = self.proxy
        try:
            host, port = split_host_port(proxy.upstream, "dial")
            side = _UpstreamSide(self, self.down, self.up)
            transport, _ = await proxy.loop.create_connection(lambda: side, host or "127.0.0.1", port)
        except Exception:
            # Toxiproxy closes the client when the upstream cannot be reached.
            if self.client.transport is not None:
                self.client.transport.close()
            self._maybe_done()
            return
        self.upstream = side
        if self.dead:
            transport.abort()
            return
        _tune(transport)
        self.up.dest = transport
        self.down.source = transport
        self.up.open = not transport.is_closing()
        self.down.open = self.client.transport is not None and not self.client.transport.is_closing()
        if any(isinstance(t, ResetPeerToxic) for t in proxy.chains[UPSTREAM] + proxy.chains[DOWNSTREAM]):
            # As in Toxiproxy: reset_peer present at accept makes every close of this connection an RST.
            for t in (self.client.transport, transport):
                sock = t.get_extra_info("socket") if t is not None else None
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        for toxic in proxy.chains[UPSTREAM]:
            self.up.add_toxic(toxic)
        for toxic in proxy.chains[DOWNSTREAM]:
            self.down.add_toxic(toxic)
        self.up.wired()
        self.down.wired()

    def link(self, direction: str) -> Link:
        return self.up if direction == UPSTREAM else self.down

    def side_lost(self, side: _Side) -> None:
        self.alive -= 1
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.alive <= 0 and not self.dead:
            self.dead = True
            self.up.cancel()
            self.down.cancel()
            self.proxy.connections.discard(self)

    def abort(self) -> None:
        """Close both sockets now (the proxy is being disabled or deleted)."""
        self.dead = True
        self.up.cancel()
        self.down.cancel()
        for side in (self.client, self.upstream):
            if side is not None and side.transport is not None:
                side.transport.abort()


def _tune(transport: asyncio.Transport) -> None:
    transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)


class Proxy:
    """A named proxy: its listener, its toxic chains (one per direction) and its open connections."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str, listen: str, upstream: str) -> None:
        self.loop = loop
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.chains: dict[str, list[Toxic]] = {UPSTREAM: [], DOWNSTREAM: []}
        self.connections: set[Connection] = set()
        self._server: asyncio.AbstractServer | None = None

    def to_json(self) -> dict[str, Any]:
        """The proxy as Toxiproxy shows it, field order and the stray ``Logger`` included."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            # Toxiproxy ≥ 2.5 leaks its (empty-looking) logger into the JSON; kept for byte-for-byte parity.
            "Logger": {},
            "toxics": [t.to_json() for t in self.toxics()],
        }

    def toxics(self) -> list[Toxic]:
        """Every toxic, upstream ones first, each direction in the order added."""
        return self.chains[UPSTREAM] + self.chains[DOWNSTREAM]

    def find_toxic(self, name: str) -> Toxic | None:
        for toxic in self.toxics():
            if toxic.name == name:
                return toxic
        return None

    # --- listener ----------------------------------------------------------------------
    async def start(self) -> None:
        """Listen (a no-op if enabled); ``listen`` then names the bound port. Bind failures are 500s."""
        if self.enabled:
            return
        host, port = split_host_port(self.listen)
        ip = resolve_host(host)
        try:
            server = await self.loop.create_server(self._accept, ip or None, port, reuse_address=True, backlog=1024)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if exc.errno:
                reason = os.strerror(exc.errno)
            reason = reason[:1].lower() + reason[1:]
            raise server_error(f"listen tcp {join_host_port(ip, port)}: bind: {reason}") from None
        sockname = server.sockets[0].getsockname()
        self._server = server
        self.listen = join_host_port(sockname[0], sockname[1])
        self.enabled = True

    def _accept(self) -> _ClientSide:
        return Connection(self).client

    def stop(self) -> None:
        """Stop listening (new connections are refused) and close every open connection."""
        if not self.enabled:
            return
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.connections):
            conn.abort()
        self.connections.clear()

    # --- toxics ---------------------------------------------------------------------------
    def add_toxic(self, toxic: Toxic) -> None:
        """Add ``toxic`` at the end of its direction's chain, on open connections too."""
        self.chains[toxic.direction].append(toxic)
        for conn in list(self.connections):
            if conn.upstream is not None:
                conn.link(toxic.direction).add_toxic(toxic)

    async def update_toxic(self, toxic: Toxic, attributes: dict[str, int], toxicity: float) -> None:
        """Change ``toxic``'s attributes and toxicity, live."""
        toxic.attributes.update(attributes)
        toxic.toxicity = toxicity
        await asyncio.gather(*(c.link(toxic.direction).update_toxic(toxic) for c in list(self.connections)))

    async def remove_toxic(self, toxic: Toxic) -> None:
        """Remove ``toxic`` from its chain and from open connections (a timeout toxic closes them)."""
        self.chains[toxic.direction].remove(toxic)
        await asyncio.gather(*(c.link(toxic.direction).remove_toxic(toxic) for c in list(self.connections)))

    async def remove_all_toxics(self) -> None:
        for toxic in self.toxics():
            await self.remove_toxic(toxic)
