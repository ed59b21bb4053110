"""Toxiproxy fixtures: the server in use (TOXIPROXY_URL, else the embedded one on a thread),
raw HTTP and toxiproxy-python clients, and real TCP servers on 127.0.0.1 to proxy to."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest


@pytest.fixture(scope="session")
def toxiproxy_url() -> Iterator[str]:
    url = os.environ.get("TOXIPROXY_URL")
    if url:
        yield url if "://" in url else f"http://{url}"
        return
    from saga_harness.chaos.server import EmbeddedServer

    with EmbeddedServer() as server:
        yield server.url


def _clear(client: httpx.Client) -> None:
    for name in client.get("/proxies").json():
        client.delete(f"/proxies/{name}")


@pytest.fixture
def api(toxiproxy_url) -> Iterator[httpx.Client]:
    """A raw HTTP client on the API; every proxy is deleted before and after the test."""
    with httpx.Client(base_url=toxiproxy_url, timeout=10) as client:
        _clear(client)
        yield client
        _clear(client)


@pytest.fixture
def toxi(api, toxiproxy_url):
    """A toxiproxy-python client bound to the server in use."""
    from toxiproxy import Toxiproxy

    parts = urlsplit(toxiproxy_url)
    client = Toxiproxy()
    client.update_api_consumer(parts.hostname, parts.port)
    return client


class TcpServers:
    """Threaded TCP servers on 127.0.0.1, one thread per connection running ``handler(conn)``."""

    def __init__(self) -> None:
        self.listeners: list[socket.socket] = []
        self.conns: list[socket.socket] = []

    def start(self, handler: Callable[[socket.socket], None]) -> int:
        listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.listeners.append(listener)

        def accept() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                self.conns.append(conn)
                threading.Thread(target=self._run, args=(handler, conn), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return listener.getsockname()[1]

    @staticmethod
    def _run(handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
        try:
            handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        for sock in self.listeners + self.conns:
            sock.close()


def echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)


class Recorder:
    """A server handler that keeps what it received, and how the stream ended ("eof" or "reset")."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ended: str | None = None
        self.done = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                self.data += data
            self.ended = "eof"
        except ConnectionResetError:
            self.ended = "reset"
        finally:
            self.done.set()


@pytest.fixture
def servers() -> Iterator[TcpServers]:
    servers = TcpServers()
    yield servers
    servers.close()


@pytest.fixture
def echo_port(servers) -> int:
    return servers.start(echo)


@pytest.fixture
def make_proxy(api):
    """``make_proxy(upstream_port, name="p", **fields) -> listen port`` (raw API, 201 checked)."""

    def make(upstream_port: int, name: str = "p", **fields) -> int:
        body = {"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream_port}", **fields}
        resp = api.post("/proxies", json=body)
        assert resp.status_code == 201, resp.text
        return int(resp.json()["listen"].rsplit(":", 1)[1])

    return make


@pytest.fixture
def add_toxic(api):
    """``add_toxic(type, stream="downstream", proxy="p", **attributes)`` (raw API, 200 checked)."""

    def add(type_: str, stream: str = "downstream", proxy: str = "p", toxicity: float = 1.0, **attributes) -> dict:
        body = {"type": type_, "stream": stream, "toxicity": toxicity, "attributes": attributes}
        resp = api.post(f"/proxies/{proxy}/toxics", json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    return add


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds to get ``payload`` echoed back in full."""
    t0 = time.perf_counter()
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        assert chunk, "connection closed during a round trip"
        got += chunk
    assert got == payload
    return time.perf_counter() - t0


def read_until_closed(sock: socket.socket) -> tuple[bytes, str, float]:
    """Everything until the peer closes: (data, "eof" | "reset", seconds until it closed)."""
    t0 = time.perf_counter()
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
        how = "eof"
    except ConnectionResetError:
        how = "reset"
    return bytes(data), how, time.perf_counter() - t0


@pytest.fixture
def tcp():
    """The TCP helpers, for tests: ``tcp.connect``, ``tcp.round_trip``, ``tcp.read_until_closed``, ..."""

    class _Tcp:
        pass

    helpers = _Tcp()
    helpers.connect = connect  # type: ignore[attr-defined]
    helpers.round_trip = round_trip  # type: ignore[attr-defined]
    helpers.read_until_closed = read_until_closed  # type: ignore[attr-defined]
    helpers.echo = echo  # type: ignore[attr-defined]
    helpers.Recorder = Recorder  # type: ignore[attr-defined]
    return helpers
