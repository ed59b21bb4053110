"""The HTTP/1.1 fault proxy of one link: faults keyed on the call, not the clock.

A TCP proxy (``chaos/server``) can only delay, cut or reset bytes; the faults behind
double charges and lost compensations are about *requests*: answer the 2nd capture with
a 503 without forwarding it, let the 1st refund take effect and lose its answer, send a
command twice. So this proxy parses both directions, picks a rule when a request's head
is parsed (:meth:`RuleSet.pick`) and acts on that request only.

Parsing is httptools (llhttp, the parser Node.js and uvicorn use): C speed, pipelining
and chunked framing done right, and already installed with uvicorn[standard]. Messages
are re-serialized from the parsed pieces (request or status line, the headers as
received, the body re-framed as it was: Content-Length bytes as they come, chunked as
chunks with the trailers; chunk extensions are dropped), because a fault needs message
boundaries that raw socket reads do not give.

Per accepted client connection there is one upstream connection. Three FIFOs keep
order: ``sendq`` (requests not yet fully forwarded; a delayed request holds those
behind it), ``expect`` (one entry per message sent upstream: whose answer the next
response is, or "discard" for the second answer of a ``duplicate_after_answer``) and
``answers`` (one per request, in request order: what the client gets, written when it
reaches the head). Bodies stream in both directions; a request is held only until its
head is parsed, and in full only for ``cut_body`` (a ``duplicate`` keeps a copy). A
HEAD or Upgrade request is not pipelined upstream (its answer's length is not in the
answer). Everything runs on the event loop thread (asyncio Protocols on uvloop), so
nothing here locks.

A ``duplicate`` races its original, as a client's or a load balancer's retry does: a
second upstream connection (:class:`_Copy`) is opened when the request's head is parsed,
and the copy is written on it as soon as the original is wholly forwarded, so the callee
handles both at once; the copy's answer is read and dropped, then that connection
closes. It is not the client's connection's: once the copy is written it lives on until
its answer (or the link's end), whatever the client does. If it cannot be opened, the
original still goes through and the link counts the copy as dropped (``copy_stats``).
With ``duplicate_after_answer`` the copy instead follows the original's complete answer
on the same upstream connection, and that second answer is read and dropped.
"""

from __future__ import annotations

import asyncio
import collections
import http
import json
import socket
import struct
import time

import httptools
from saga_harness.chaos.httpfaults.calls import BODY_HEAD_BYTES, CALL_HEADERS, CallLog
from saga_harness.chaos.httpfaults.rules import HttpRule, RuleSet
from saga_harness.chaos.server.addresses import join_host_port

__all__ = ["Link", "injected_answer"]

_now = time.monotonic
WRITE_HIGH, WRITE_LOW = 1 << 20, 256 << 10  # transport write buffers
HOLD_HIGH, HOLD_LOW = 1 << 20, 256 << 10  # bytes held here (requests not yet forwarded, answers not yet written)
REFUSED_IDLE_S = 10.0  # how long a client whose upstream refused may wait to send its request
MAX_HEAD = 64 << 10  # an answer head to a HEAD request longer than this is a broken upstream
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_KEPT = {h.encode(): h for h in CALL_HEADERS}
_REASONS = {int(s): s.phrase for s in http.HTTPStatus}
_PAUSE_PEER, _PAUSE_HELD = 1, 2  # why a side's reading is paused
_CONNECTING, _OPEN, _GONE = 0, 1, 2  # the upstream connection
_FORWARD, _DROP, _CUT = 0, 1, 2  # what happens to a request's bytes


def injected_answer(status: int, payload: dict[str, str], *, close: bool = False) -> bytes:
    """A complete HTTP/1.1 answer with ``status`` and ``payload`` as its JSON body."""
    reason = _REASONS.get(status, "Injected")
    lines = [f"HTTP/1.1 {status} {reason}"]
    body = b""
    if status not in (204, 304):
        body = json.dumps(payload).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if status in (429, 503):
        lines.append("Retry-After: 1")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _reset(transport: asyncio.BaseTransport | None) -> None:
    """Close ``transport`` with an RST (SO_LINGER 0), dropping what it still buffers."""
    if transport is None or transport.is_closing():
        if transport is not None:
            transport.abort()  # type: ignore[attr-defined]
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        except OSError:
            pass
    transport.abort()  # type: ignore[attr-defined]


async def _drained(transport: asyncio.WriteTransport | None, limit_s: float = 5.0) -> None:
    """Return once ``transport`` handed everything it buffers to the kernel (or after ``limit_s``)."""
    deadline = _now() + limit_s
    while transport is not None and not transport.is_closing() and transport.get_write_buffer_size():
        if _now() > deadline:
            return
        await asyncio.sleep(0.001)


class Link:
    """One link: its listener, rules and call log, and its live connections."""

    def __init__(
        self, name: str, listen: tuple[str, int], upstream: tuple[str, int], *, log_size: int = 200_000
    ) -> None:
        self.name = name
        self.listen_host, self.listen_port = listen
        self.upstream_host, self.upstream_port = upstream
        self.rules = RuleSet()
        self.calls = CallLog(name, log_size)
        self.conns: set[Conn] = set()
        self.server: asyncio.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.copies: set[_Copy] = set()  # duplicates' own upstream connections, until their answer
        self.copy_stats = {"sent": 0, "answered": 0, "dropped": 0}

    @property
    def listen(self) -> str:
        """``host:port`` of the listener (the real port once started)."""
        return join_host_port(self.listen_host, self.listen_port)

    @property
    def upstream(self) -> str:
        """``host:port`` the link forwards to."""
        return join_host_port(self.upstream_host, self.upstream_port)

    async def start(self) -> None:
        """Listen (raises OSError if the address cannot be bound)."""
        self.loop = asyncio.get_running_loop()
        self.server = await self.loop.create_server(
            lambda: Conn(self), self.listen_host, self.listen_port, reuse_address=True, backlog=1024
        )
        self.listen_port = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        """Stop listening and close every connection (their pending calls are logged unanswered)."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in list(self.conns):
            conn.teardown(reset=False)
        for copy in list(self.copies):
            copy.end()

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream}


class Req:
    """A request being parsed or forwarded."""

    __slots__ = (
        "mono",
        "url",
        "parts",
        "head_done",
        "method",
        "path",
        "query",
        "headers",
        "body_head",
        "chunked",
        "expect_continue",
        "rule",
        "mode",
        "buf",
        "held",
        "copy",
        "complete",
        "streaming",
        "sent",
        "not_before",
        "serial",
        "upgrade",
        "answer",
        "fraction",
        "trailers",
    )

    def __init__(self, mono: float) -> None:
        self.mono = mono
        self.url = b""
        self.parts: list[bytes] = [b""]  # [request line, name, ": ", value, "\r\n", ...]
        self.head_done = False
        self.method = ""
        self.path = ""
        self.query = ""
        self.headers: dict[str, str] = {}
        self.body_head = b""
        self.chunked = False
        self.expect_continue = False
        self.rule: HttpRule | None = None
        self.mode = _FORWARD
        self.buf: list[bytes] = []  # bytes not yet forwarded
        self.held = 0
        self.copy: list[bytes] | None = None  # every byte sent, for a duplicate
        self.complete = False  # message complete parsed
        self.streaming = False  # its head went upstream; its body goes through as it comes
        self.sent = False  # wholly forwarded
        self.not_before = 0.0
        self.serial = False  # HEAD or Upgrade: nothing else in flight upstream with it
        self.upgrade = False
        self.answer: Answer | None = None
        self.fraction = 0.5
        self.trailers: list[bytes] = []


class Answer:
    """What the client gets for one request (or, with ``discard``, an answer nobody gets)."""

    __slots__ = (
        "req",
        "parts",
        "held",
        "done",
        "status",
        "live",
        "delay",
        "release_at",
        "lose",
        "close_after",
        "head",
        "discard",
        "recorded",
    )

    def __init__(self, req: Req | None, *, discard: bool = False) -> None:
        self.req = req
        self.parts: list[bytes] = []  # bytes not yet written to the client
        self.held = 0
        self.done = False  # complete (from upstream, or injected)
        self.status: int | None = None
        self.live = False  # at the head of the FIFO and released: bytes go straight to the client
        self.delay = 0.0
        self.release_at = 0.0
        self.lose: str | None = None
        self.close_after = False
        self.head = False  # the answer to a HEAD request: a head only
        self.discard = discard
        self.recorded = False


class Conn(asyncio.Protocol):
    """One client connection, its upstream connection, and the requests between them.

    The request parser's callbacks (``on_url`` ...) are methods of this protocol; the
    response parser's are on :class:`_Upstream`.
    """

    def __init__(self, link: Link) -> None:
        self.link = link
        self.loop = link.loop or asyncio.get_running_loop()
        self.client: asyncio.Transport | None = None
        self.up: asyncio.Transport | None = None
        self.upside = _Upstream(self)
        self.up_state = _CONNECTING
        self.parser = httptools.HttpRequestParser(self)
        self.req: Req | None = None  # being parsed
        self.sendq: collections.deque[Req] = collections.deque()
        self.expect: collections.deque[Answer] = collections.deque()
        self.answers: collections.deque[Answer] = collections.deque()
        self.gate: Answer | None = None  # forwarding waits for this answer
        self.held_in = 0
        self.held_out = 0
        self.client_paused = 0
        self.up_paused = 0
        self.pump_timer: asyncio.TimerHandle | None = None
        self.flush_timer: asyncio.TimerHandle | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.refused: asyncio.TimerHandle | None = None  # the upstream refused: requests get a 502 until this
        self.closed = False
        self.client_eof = False
        self.tunnel = False
        self.raw_in: bytearray | None = None  # client bytes after an Upgrade request, until its answer
        # While a read is being handled, writes are gathered and sent once at its end: a head and
        # its body in one segment, one send() instead of one per parsed piece.
        self.corked = False
        self.to_up: list[bytes] = []
        self.to_client: list[bytes] = []
        self.waiting_copies: dict[Req, _Copy] | None = None  # duplicates' copies, until their original is forwarded

    # --- the client's transport -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client = transport  # type: ignore[assignment]
        self.client.set_write_buffer_limits(WRITE_HIGH, WRITE_LOW)
        self.link.conns.add(self)
        self.connecting = self.loop.create_task(self._connect())

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.tunnel:
            self.up.write(data)  # type: ignore[union-attr]
            return
        if self.raw_in is not None:
            self.raw_in += data
            return
        self.corked = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.raw_in = bytearray(data[exc.args[0] :])
        except httptools.HttpParserError:
            self.teardown(reset=False)  # not HTTP/1.x: nothing sensible to answer
        finally:
            self.uncork()

    def eof_received(self) -> bool:
        self.client_eof = True
        if not self.answers or self.tunnel:
            self.teardown(reset=False)
            return False
        return True  # answer what was asked, then close

    def connection_lost(self, exc: Exception | None) -> None:
        self.teardown(reset=False)

    def pause_writing(self) -> None:
        self._pause_up(_PAUSE_PEER)

    def resume_writing(self) -> None:
        self._resume_up(_PAUSE_PEER)

    # --- writing ----------------------------------------------------------------------------
    def write_up(self, data: bytes) -> None:
        if self.closed:
            return
        if self.corked:
            self.to_up.append(data)
        else:
            self.up.write(data)  # type: ignore[union-attr]

    def write_client(self, data: bytes) -> None:
        if self.closed:
            return
        if self.corked:
            self.to_client.append(data)
        else:
            self.client.write(data)  # type: ignore[union-attr]

    def uncork(self) -> None:
        """Send what was gathered while corked."""
        self.corked = False
        if self.to_up:
            data = self.to_up[0] if len(self.to_up) == 1 else b"".join(self.to_up)
            self.to_up = []
            if self.up is not None and not self.up.is_closing():
                self.up.write(data)
        if self.to_client:
            data = self.to_client[0] if len(self.to_client) == 1 else b"".join(self.to_client)
            self.to_client = []
            if self.client is not None and not self.client.is_closing():
                self.client.write(data)

    # --- the request parser's callbacks ------------------------------------------------
    def on_message_begin(self) -> None:
        self.req = Req(_now())

    def on_url(self, url: bytes) -> None:
        self.req.url += url  # type: ignore[union-attr]

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self.req
        if req is None:
            return
        if req.head_done:
            req.trailers += (name, b": ", value, b"\r\n")
            return
        req.parts += (name, b": ", value, b"\r\n")
        lname = name.lower()
        kept = _KEPT.get(lname)
        if kept is not None:
            req.headers[kept] = value.decode("utf-8", "replace")
        elif lname == b"transfer-encoding":
            req.chunked = b"chunked" in value.lower()
        elif lname == b"expect":
            req.expect_continue = value.strip().lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        req = self.req
        assert req is not None
        parser = self.parser
        method = parser.get_method()
        req.method = method.decode("latin-1")
        req.head_done = True
        raw = req.url.decode("latin-1")
        path, _, req.query = raw.partition("?")
        if "://" in path:  # absolute-form
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        req.path = path
        req.parts[0] = b"%s %s HTTP/%s\r\n" % (method, req.url, parser.get_http_version().encode())
        req.parts.append(b"\r\n")
        head = b"".join(req.parts)
        req.parts = []
        answer = req.answer = Answer(req)
        self.answers.append(answer)
        if not parser.should_keep_alive() and not parser.should_upgrade():
            answer.close_after = True
        rule = req.rule = self.link.rules.pick(req.method, path) if self.link.rules else None
        action = rule.action if rule is not None else None
        if action == "status":
            assert rule is not None
            req.mode = _DROP
            close = req.expect_continue or answer.close_after  # the client may not send the body it announced
            self._inject(answer, rule.status, {"error": "injected by saga-harness", "rule": rule.id}, close)
            if close:
                answer.done = True
                self._flush()
            return
        if self.up_state == _GONE:
            req.mode = _DROP
            self._inject_bad_gateway(answer)
            return
        if method == b"HEAD":
            req.serial = answer.head = True
        if parser.should_upgrade():
            req.serial = req.upgrade = True
        if rule is not None:
            if action == "delay_request":
                req.not_before = req.mono + rule.delay_ms / 1000
            elif action == "delay_answer":
                answer.delay = rule.delay_ms / 1000
            elif action == "lose_answer":
                answer.lose = rule.lose
            elif action == "duplicate":
                req.copy = [head]
                if not rule.duplicate_after_answer:  # its connection opens now, the copy goes with the original
                    if self.waiting_copies is None:
                        self.waiting_copies = {}
                    self.waiting_copies[req] = _Copy(self.link, head_only=answer.head)
            elif action == "cut_body":
                req.mode = _CUT
                req.fraction = rule.body_fraction
        req.buf.append(head)
        req.held = len(head)
        self._held_in(len(head))
        self.sendq.append(req)
        self._pump()

    def on_body(self, data: bytes) -> None:
        req = self.req
        assert req is not None
        if len(req.body_head) < BODY_HEAD_BYTES:
            req.body_head += data[: BODY_HEAD_BYTES - len(req.body_head)]
        if req.mode == _DROP:
            return
        if req.chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        self._request_bytes(req, data)

    def on_message_complete(self) -> None:
        req, self.req = self.req, None
        assert req is not None
        req.complete = True
        if req.mode == _DROP:
            if not self.closed:
                req.answer.done = True  # type: ignore[union-attr]
                self._flush()
            return
        if req.chunked:
            self._request_bytes(req, b"".join([b"0\r\n", *req.trailers, b"\r\n"]) if req.trailers else b"0\r\n\r\n")
        self._pump()

    # --- forwarding requests -----------------------------------------------------------
    def _request_bytes(self, req: Req, data: bytes) -> None:
        if req.copy is not None:
            req.copy.append(data)
        if req.streaming:
            self.write_up(data)
        else:
            req.buf.append(data)
            if req.mode == _FORWARD:  # a request cut or copied whole must be read whole
                req.held += len(data)
                self._held_in(len(data))

    def _pump(self) -> None:
        """Forward what may go upstream now, in order."""
        if self.up_state != _OPEN or self.closed:
            return
        sendq = self.sendq
        while sendq:
            req = sendq[0]
            if not req.streaming:
                if self.gate is not None or (req.serial and self.expect):
                    return
                if req.not_before:
                    wait = req.not_before - _now()
                    if wait > 0:
                        if self.pump_timer is None:
                            self.pump_timer = self.loop.call_later(wait, self._pump_later)
                        return
                if req.mode == _CUT:
                    if req.complete:
                        self._cut(req)
                    return
                self.expect.append(req.answer)  # type: ignore[arg-type]
                req.streaming = True
                data = req.buf[0] if len(req.buf) == 1 else b"".join(req.buf)
                req.buf = []
                self._held_in(-req.held)
                self.write_up(data)
                if req.serial:
                    self.gate = req.answer
            if not req.complete:
                return  # the body goes through as it comes
            sendq.popleft()
            req.sent = True
            if req.copy is not None:
                copy = self.waiting_copies.pop(req, None) if self.waiting_copies else None
                if copy is not None:
                    copy.send(req.copy[0] if len(req.copy) == 1 else b"".join(req.copy))
                    req.copy = None
                elif req.answer.done:  # type: ignore[union-attr]
                    self._send_duplicate(req)
                else:
                    self.gate = req.answer  # nothing between the request and its copy

    def _pump_later(self) -> None:
        self.pump_timer = None
        self._pump()

    def _send_duplicate(self, req: Req) -> None:
        copy, req.copy = req.copy, None
        if copy is None or self.up_state != _OPEN:
            return
        second = Answer(None, discard=True)
        second.head = req.answer.head  # type: ignore[union-attr]
        self.expect.append(second)
        self.write_up(b"".join(copy))
        self.gate = second if req.serial else None

    def _cut(self, req: Req) -> None:
        head, body = req.buf[0], b"".join(req.buf[1:])
        data = head + body[: int(len(body) * req.fraction)] if body else head[: len(head) // 2]
        self.write_up(data)
        up, client = self.up, self.client
        self.teardown(reset=True, close_transports=False)

        async def reset_both() -> None:
            await _drained(up)  # what was forwarded reaches the upstream before the RST
            _reset(up)
            _reset(client)

        self.loop.create_task(reset_both())

    # --- answers --------------------------------------------------------------------------
    def answer_data(self, answer: Answer, data: bytes) -> None:
        """Bytes of ``answer`` from upstream."""
        if answer.discard or answer.lose is not None:
            return
        if answer.live:
            self.write_client(data)
            return
        if answer.delay and not answer.release_at:
            answer.release_at = _now() + answer.delay
        answer.parts.append(data)
        answer.held += len(data)
        self._held_out(len(data))
        if self.answers and self.answers[0] is answer:
            self._flush()

    def answer_complete(self, answer: Answer, status: int) -> None:
        """``answer`` is complete upstream (a final status; 1xx answers are not complete)."""
        answer.status = status
        answer.done = True
        req = answer.req
        if req is not None:
            if req.copy is not None and req.sent:
                self._send_duplicate(req)
            if req.upgrade and status != 101 and self.raw_in is not None:
                self.loop.call_soon(self._resume_parsing)  # not upgraded: the bytes after it are HTTP again
            if answer.lose is not None:
                self.upside.closing = True
                self.up.close()  # type: ignore[union-attr]
        if self.gate is answer:
            self.gate = None
        if not answer.discard:
            self._flush()
        if self.sendq:
            self._pump()

    def _flush(self) -> None:
        """Write the answers that may go to the client now, in request order."""
        answers = self.answers
        while answers and not self.closed:
            answer = answers[0]
            if not answer.live:
                if answer.lose is not None:
                    if answer.done:
                        answers.popleft()
                        self._record(answer, None, None)
                        self._lose(answer.lose)
                    return
                if answer.delay:
                    if not answer.release_at:
                        return  # held from its first byte on, which has not come yet
                    wait = answer.release_at - _now()
                    if wait > 0:
                        if self.flush_timer is None:
                            self.flush_timer = self.loop.call_later(wait, self._flush_later)
                        return
                answer.live = True
                if answer.parts:
                    data = answer.parts[0] if len(answer.parts) == 1 else b"".join(answer.parts)
                    answer.parts = []
                    self._held_out(-answer.held)
                    self.write_client(data)
            if not answer.done:
                return
            answers.popleft()
            self._record(answer, answer.status, _now())
            if answer.close_after:
                self.teardown(reset=False)
                return
        if not answers and self.req is None and not self.closed:
            if self.client_eof or (self.up_state == _GONE and self.refused is None):
                self.teardown(reset=False)

    def _flush_later(self) -> None:
        self.flush_timer = None
        self._flush()

    def _inject(self, answer: Answer, status: int, payload: dict[str, str], close: bool) -> None:
        answer.parts = [injected_answer(status, payload, close=close)]
        answer.status = status
        answer.delay = 0.0
        answer.lose = None
        answer.close_after = answer.close_after or close

    def _inject_bad_gateway(self, answer: Answer) -> None:
        upstream = self.link.upstream
        payload = {"error": f"saga-harness: the upstream {upstream} refused or closed the connection"}
        payload["link"] = self.link.name
        self._inject(answer, 502, payload, True)

    def _record(self, answer: Answer, status: int | None, mono_answer: float | None) -> None:
        if answer.recorded or answer.req is None:
            return
        answer.recorded = True
        req = answer.req
        rule = req.rule
        self.link.calls.add(
            req.method,
            req.path,
            req.query,
            status,
            rule.id if rule is not None else None,
            rule.action if rule is not None else None,
            req.mono,
            mono_answer,
            req.headers,
            req.body_head.decode("utf-8", "replace"),
        )

    def _lose(self, how: str) -> None:
        client = self.client
        self.teardown(reset=how == "reset", close_transports=False)
        if self.up is not None:
            self.up.close()
        if how == "close":
            if client is not None:
                client.close()
            return

        async def reset_client() -> None:
            await _drained(client)  # earlier answers first
            _reset(client)

        self.loop.create_task(reset_client())

    def _resume_parsing(self) -> None:
        data, self.raw_in = self.raw_in, None
        self.parser = httptools.HttpRequestParser(self)
        if data:
            self.data_received(bytes(data))

    def go_tunnel(self, rest: bytes) -> None:
        """The upstream switched protocols: bytes flow both ways unparsed from now on."""
        self.tunnel = True
        if rest:
            self.write_client(rest)
        data, self.raw_in = self.raw_in, None
        if data:
            self.write_up(bytes(data))

    # --- the upstream connection --------------------------------------------------------------
    async def _connect(self) -> None:
        link = self.link
        try:
            transport, _ = await self.loop.create_connection(
                lambda: self.upside, link.upstream_host, link.upstream_port
            )
        except OSError:
            # Refused: the client's requests get a 502 (the caller learns its callee is down), then the
            # connection closes; a client that asks nothing is closed after a while.
            self.refused = self.loop.call_later(REFUSED_IDLE_S, self.teardown, False)
            self.upstream_gone()
            return
        finally:
            self.connecting = None
        if self.closed:
            transport.close()
            return
        self.up = transport  # type: ignore[assignment]
        self.up.set_write_buffer_limits(WRITE_HIGH, WRITE_LOW)
        self.up_state = _OPEN
        if self.up_paused:
            self.up.pause_reading()
        self._pump()

    def upstream_gone(self) -> None:
        """The upstream refused, closed or broke: what it still owed the client becomes a 502."""
        if self.up_state == _GONE or self.closed:
            self.up_state = _GONE
            return
        self.up_state = _GONE
        if self.tunnel:
            self.teardown(reset=False)
            return
        self.upside.eof()
        for answer in self.expect:
            if answer.discard or answer.done:
                continue
            if answer.lose is not None:
                answer.done = True  # the client's connection goes, as the rule says
            elif answer.live or answer.parts:
                answer.done = True  # half an answer: the connection closes after what was written
                answer.close_after = True
                answer.status = None
            else:
                self._inject_bad_gateway(answer)
                answer.done = True
        self.expect.clear()
        self._drop_copies()
        for req in self.sendq:
            req.mode = _DROP
            self._inject_bad_gateway(req.answer)  # type: ignore[arg-type]
            req.answer.done = req.complete  # type: ignore[union-attr]
        self.sendq.clear()
        self.gate = None
        self._held_in(-self.held_in)
        if self.up is not None:
            self.up.close()
        self._flush()

    # --- flow control -------------------------------------------------------------------------
    def _held_in(self, n: int) -> None:
        self.held_in += n
        if n > 0 and self.held_in > HOLD_HIGH:
            self._pause_client(_PAUSE_HELD)
        elif n < 0 and self.held_in < HOLD_LOW:
            self._resume_client(_PAUSE_HELD)

    def _held_out(self, n: int) -> None:
        self.held_out += n
        if n > 0 and self.held_out > HOLD_HIGH:
            self._pause_up(_PAUSE_HELD)
        elif n < 0 and self.held_out < HOLD_LOW:
            self._resume_up(_PAUSE_HELD)

    def _pause_client(self, why: int) -> None:
        if not self.client_paused and self.client is not None and not self.client.is_closing():
            self.client.pause_reading()
        self.client_paused |= why

    def _resume_client(self, why: int) -> None:
        was = self.client_paused
        self.client_paused &= ~why
        if was and not self.client_paused and self.client is not None and not self.client.is_closing():
            self.client.resume_reading()

    def _pause_up(self, why: int) -> None:
        if not self.up_paused and self.up is not None and not self.up.is_closing():
            self.up.pause_reading()
        self.up_paused |= why

    def _resume_up(self, why: int) -> None:
        was = self.up_paused
        self.up_paused &= ~why
        if was and not self.up_paused and self.up is not None and not self.up.is_closing():
            self.up.resume_reading()

    # --- the end -----------------------------------------------------------------------------
    def _drop_copies(self) -> None:
        """The originals of the copies not sent yet will not be forwarded: neither will the copies."""
        if self.waiting_copies:
            for copy in self.waiting_copies.values():
                copy.end()
            self.waiting_copies.clear()

    def teardown(self, reset: bool = False, close_transports: bool = True) -> None:
        """End both connections; every request not answered yet is logged with no status."""
        if self.closed:
            return
        self.uncork()  # what was gathered goes out before the close (an RST drops it anyway)
        self.closed = True
        for answer in self.answers:
            self._record(answer, None, None)
        self.answers.clear()
        self.sendq.clear()
        self.expect.clear()
        for timer in (self.pump_timer, self.flush_timer, self.refused):
            if timer is not None:
                timer.cancel()
        if self.connecting is not None:
            self.connecting.cancel()
        self.link.conns.discard(self)
        self._drop_copies()
        self.upside.closing = True
        if not close_transports:
            return
        if reset:
            _reset(self.client)
            _reset(self.up)
        else:
            if self.client is not None:
                self.client.close()
            if self.up is not None:
                self.up.close()


class _Upstream(asyncio.Protocol):
    """The upstream side of a :class:`Conn`: parses answers and hands their bytes on."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.parser = httptools.HttpResponseParser(self)
        self.cur: Answer | None = None
        self.in_msg = False
        self.parts: list[bytes] = []
        self.reason = b""
        self.status = 0
        self.chunked = False
        self.until_eof = False
        self.length = False
        self.head_only = False
        self.head_buf: bytearray | None = None
        self.trailers: list[bytes] = []
        self.raw = False
        self.closing = False

    # --- the upstream transport --------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if self.closing or conn.closed:
            return
        if self.raw:
            conn.client.write(data)  # type: ignore[union-attr]
            return
        conn.corked = True
        try:
            if self.head_buf is not None or (not self.in_msg and conn.expect and conn.expect[0].head):
                self._head_only(data)
                return
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.raw = True
            conn.go_tunnel(data[exc.args[0] :])
        except httptools.HttpParserError:
            self.closing = True
            conn.upstream_gone()
        finally:
            conn.uncork()

    def eof_received(self) -> bool:
        self.conn.upstream_gone()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.upstream_gone()

    def pause_writing(self) -> None:
        self.conn._pause_client(_PAUSE_PEER)

    def resume_writing(self) -> None:
        self.conn._resume_client(_PAUSE_PEER)

    def _head_only(self, data: bytes) -> None:
        """The answer to a HEAD request: a head whose Content-Length announces no body here."""
        buf = self.head_buf = (self.head_buf or bytearray()) + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                self.closing = True
                self.conn.upstream_gone()
            return
        self.head_buf = None
        head, rest = bytes(buf[: end + 4]), bytes(buf[end + 4 :])
        self.head_only = True
        self.parser = httptools.HttpResponseParser(self)
        try:
            self.parser.feed_data(head)
            if self.in_msg:
                self.on_message_complete()
        except httptools.HttpParserError:
            self.closing = True
            self.conn.upstream_gone()
            return
        finally:
            self.head_only = False
        self.parser = httptools.HttpResponseParser(self)
        if rest:
            self.data_received(rest)

    def eof(self) -> None:
        """The upstream closed: an answer delimited by the close ends here."""
        if self.in_msg and self.until_eof and not self.closing:
            self.on_message_complete()

    # --- the response parser's callbacks ------------------------------------------------------
    def on_message_begin(self) -> None:
        expect = self.conn.expect
        if not expect:
            raise ValueError("an answer no request asked for")
        self.cur = expect[0]
        self.in_msg = True
        self.parts = [b""]
        self.reason = b""
        self.trailers = []
        self.chunked = self.length = False

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_msg:
            return
        if self.parts is None:
            self.trailers += (name, b": ", value, b"\r\n")
            return
        self.parts += (name, b": ", value, b"\r\n")
        lname = name.lower()
        if lname == b"transfer-encoding":
            self.chunked = b"chunked" in value.lower()
        elif lname == b"content-length":
            self.length = True

    def on_headers_complete(self) -> None:
        parser = self.parser
        status = self.status = parser.get_status_code()
        parts = self.parts
        parts[0] = b"HTTP/%s %d %s\r\n" % (parser.get_http_version().encode(), status, self.reason)
        parts.append(b"\r\n")
        self.parts = None  # type: ignore[assignment]  # what follows the head are trailers
        self.until_eof = not self.chunked and not self.length and status >= 200 and status not in (204, 304)
        self.conn.answer_data(self.cur, b"".join(parts))  # type: ignore[arg-type]

    def on_body(self, data: bytes) -> None:
        if self.chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        self.conn.answer_data(self.cur, data)  # type: ignore[arg-type]

    def on_message_complete(self) -> None:
        answer = self.cur
        assert answer is not None
        conn = self.conn
        if self.chunked and not self.head_only:
            trailers = self.trailers
            conn.answer_data(answer, b"".join([b"0\r\n", *trailers, b"\r\n"]) if trailers else b"0\r\n\r\n")
        self.in_msg = False
        self.cur = None
        if 100 <= self.status < 200 and self.status != 101:
            return  # informational: the final answer follows
        conn.expect.popleft()
        conn.answer_complete(answer, self.status)


class _Copy(asyncio.Protocol):
    """A ``duplicate``'s copy on an upstream connection of its own (see the module docstring).

    Opened when it is made; :meth:`send` writes the copy once the original is forwarded (or
    once the connection is open, if later); the answer is parsed only to know where it ends,
    then the connection closes. :meth:`end` gives up: a copy handed to :meth:`send` and never
    written is counted as dropped.
    """

    def __init__(self, link: Link, *, head_only: bool) -> None:
        self.link = link
        self.head_only = head_only  # the answer to a HEAD: a head only
        self.transport: asyncio.Transport | None = None
        self.data: bytes | None = None  # handed over, not written yet
        self.given = False  # send() was called
        self.written = False
        self.ended = False
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        link.copies.add(self)
        self.connecting: asyncio.Task[None] | None = link.loop.create_task(self._connect())  # type: ignore[union-attr]

    async def _connect(self) -> None:
        link = self.link
        try:
            await link.loop.create_connection(lambda: self, link.upstream_host, link.upstream_port)  # type: ignore[union-attr]
        except OSError:
            self.connecting = None
            self.end()

    def send(self, data: bytes) -> None:
        """Write the copy now, or as soon as the connection is open."""
        self.given = True
        if self.ended:
            self.link.copy_stats["dropped"] += 1
            return
        self.data = data
        if self.transport is not None:
            self._write()

    def _write(self) -> None:
        data, self.data = self.data, None
        self.written = True
        self.link.copy_stats["sent"] += 1
        self.transport.write(data)  # type: ignore[union-attr, arg-type]

    def end(self, answered: bool = False) -> None:
        """Close the connection (or stop opening it); no-op once ended."""
        if self.ended:
            return
        self.ended = True
        self.link.copies.discard(self)
        stats = self.link.copy_stats
        if answered:
            stats["answered"] += 1
        elif self.given and not self.written:
            stats["dropped"] += 1
        self.data = None
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
        if self.transport is not None:
            self.transport.close()

    # --- the transport --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connecting = None
        self.transport = transport  # type: ignore[assignment]
        if self.ended:
            transport.close()
        elif self.data is not None:
            self._write()

    def data_received(self, data: bytes) -> None:
        if self.ended:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.end(answered=True)  # 101: switched protocols, nothing more to read
        except httptools.HttpParserError:
            self.end()

    def eof_received(self) -> bool:
        self.end(answered=self.status >= 200)  # a final head came: an answer delimited by the close ends here
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.end()

    # --- the response parser's callbacks ------------------------------------------------------
    def on_headers_complete(self) -> None:
        status = self.status = self.parser.get_status_code()
        if status == 101 or (self.head_only and status >= 200):
            self.end(answered=True)

    def on_message_complete(self) -> None:
        if self.ended or 100 <= self.status < 200:
            return  # informational: the final answer follows
        self.end(answered=True)
