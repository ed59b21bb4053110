"""Each toxic's effect on real TCP traffic through a proxy to a server on 127.0.0.1.

Bounds are tolerant (a loaded 2-core machine) but each one fails if the toxic does
nothing or does the wrong thing. Runs against TOXIPROXY_URL when set, else the embedded server.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

# Timed assertions share one xdist worker with the other timed runs (see the Makefile).
pytestmark = pytest.mark.xdist_group("timed")


def source(payload: bytes):
    """A server handler sending ``payload`` then closing."""

    def handler(conn: socket.socket) -> None:
        conn.sendall(payload)

    return handler


# --- no toxic ------------------------------------------------------------------------------------
def test_bytes_pass_intact_both_ways(make_proxy, echo_port, tcp):
    port = make_proxy(echo_port)
    payload = os.urandom(4 << 20)
    with tcp.connect(port) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        got = bytearray()
        while len(got) < len(payload):
            chunk = sock.recv(1 << 20)
            assert chunk
            got += chunk
        sender.join()
    assert got == payload


def test_a_half_close_tears_the_connection_down(make_proxy, servers, tcp):
    recorder = tcp.Recorder()
    port = make_proxy(servers.start(recorder))
    with tcp.connect(port) as sock:
        sock.sendall(b"bye")
        sock.shutdown(socket.SHUT_WR)
        data, _how, elapsed = tcp.read_until_closed(sock)
    assert data == b"" and elapsed < 2
    assert recorder.done.wait(2) and bytes(recorder.data) == b"bye"


# --- latency ------------------------------------------------------------------------------------
def test_latency_applies_live_to_an_open_connection_and_goes_away(api, make_proxy, echo_port, add_toxic, tcp):
    port = make_proxy(echo_port)
    with tcp.connect(port) as sock:
        assert tcp.round_trip(sock) < 0.05
        add_toxic("latency", latency=100)
        delays = [tcp.round_trip(sock) for _ in range(3)]
        assert all(0.095 <= d < 0.3 for d in delays), delays
        api.post("/proxies/p/toxics/latency_downstream", json={"attributes": {"latency": 200}})
        assert 0.195 <= tcp.round_trip(sock) < 0.4
        api.delete("/proxies/p/toxics/latency_downstream")
        assert tcp.round_trip(sock) < 0.05


def test_upstream_latencies_add_up(make_proxy, echo_port, add_toxic, tcp, api):
    port = make_proxy(echo_port)
    add_toxic("latency", stream="upstream", latency=60)
    api.post("/proxies/p/toxics", json={"name": "more", "type": "latency", "attributes": {"latency": 60}})
    with tcp.connect(port) as sock:
        assert 0.115 <= tcp.round_trip(sock) < 0.35


def test_jitter_spreads_delays_within_bounds(make_proxy, echo_port, add_toxic, tcp):
    port = make_proxy(echo_port)
    add_toxic("latency", latency=50, jitter=40)
    with tcp.connect(port) as sock:
        delays = [tcp.round_trip(sock) for _ in range(12)]
    assert all(0.009 <= d < 0.2 for d in delays), delays
    assert max(delays) - min(delays) > 0.01, delays


def test_latency_delays_a_server_greeting_on_a_new_connection(make_proxy, servers, add_toxic, tcp):
    port = make_proxy(servers.start(source(b"hello")))
    add_toxic("latency", latency=150)
    # The clock starts before the connection: a busy machine may deschedule the
    # test between connect and recv, but cannot make the greeting come early.
    t0 = time.perf_counter()
    with tcp.connect(port) as sock:
        assert sock.recv(10) == b"hello"
        assert time.perf_counter() - t0 >= 0.14


# --- bandwidth ----------------------------------------------------------------------------------
def test_bandwidth_limits_the_byte_rate(make_proxy, servers, add_toxic, tcp):
    port = make_proxy(servers.start(source(b"x" * 150_000)))
    add_toxic("bandwidth", rate=300)  # KB/s, KB = 1000 bytes: 150 KB take 0.5 s
    with tcp.connect(port) as sock:
        data, _how, elapsed = tcp.read_until_closed(sock)
    assert len(data) == 150_000
    assert 0.4 <= elapsed < 1.2, elapsed


def test_upstream_bandwidth_and_rate_zero_blocks_until_removed(api, make_proxy, servers, add_toxic, tcp):
    recorder = tcp.Recorder()
    port = make_proxy(servers.start(recorder))
    add_toxic("bandwidth", stream="upstream", rate=0)
    with tcp.connect(port) as sock:
        sock.sendall(b"y" * 1000)
        time.sleep(0.3)
        assert bytes(recorder.data) == b""
        api.delete("/proxies/p/toxics/bandwidth_upstream")
        deadline = time.monotonic() + 2
        while len(recorder.data) < 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bytes(recorder.data) == b"y" * 1000


# --- slow_close ---------------------------------------------------------------------------------
def test_slow_close_passes_data_and_holds_the_close(make_proxy, servers, add_toxic, tcp):
    port = make_proxy(servers.start(source(b"hello")))
    add_toxic("slow_close", delay=300)
    with tcp.connect(port) as sock:
        t0 = time.perf_counter()
        assert sock.recv(10) == b"hello"
        assert time.perf_counter() - t0 < 0.2
        assert sock.recv(10) == b""
        assert 0.28 <= time.perf_counter() - t0 < 1.0


# --- timeout ------------------------------------------------------------------------------------
def test_timeout_drops_data_and_closes_after_idle(make_proxy, echo_port, add_toxic, tcp):
    port = make_proxy(echo_port)
    add_toxic("timeout", stream="upstream", timeout=300)
    with tcp.connect(port) as sock:
        t0 = time.perf_counter()
        time.sleep(0.15)
        sock.sendall(b"lost")  # dropped, and it restarts the idle timer
        data, _how, _ = tcp.read_until_closed(sock)
        elapsed = time.perf_counter() - t0
    assert data == b""
    assert 0.42 <= elapsed < 1.0, elapsed


def test_timeout_zero_never_closes_but_removing_it_does(api, make_proxy, echo_port, add_toxic, tcp):
    port = make_proxy(echo_port)
    add_toxic("timeout", timeout=0)
    with tcp.connect(port) as sock:
        sock.sendall(b"ping")
        sock.settimeout(0.4)
        with pytest.raises(TimeoutError):
            sock.recv(10)  # neither data nor a close
        sock.settimeout(5)
        api.delete("/proxies/p/toxics/timeout_downstream")
        data, _how, elapsed = tcp.read_until_closed(sock)
    assert data == b"" and elapsed < 1


# --- reset_peer ---------------------------------------------------------------------------------
def test_reset_peer_resets_a_connection_accepted_with_it(make_proxy, echo_port, add_toxic, tcp):
    port = make_proxy(echo_port)
    add_toxic("reset_peer", timeout=200)
    with tcp.connect(port) as sock:
        t0 = time.perf_counter()
        sock.sendall(b"ping")
        data, how, _ = tcp.read_until_closed(sock)
        elapsed = time.perf_counter() - t0
    assert data == b"" and how == "reset"
    assert 0.18 <= elapsed < 1.0


def test_reset_peer_added_later_closes_plainly(make_proxy, echo_port, add_toxic, tcp):
    port = make_proxy(echo_port)
    with tcp.connect(port) as sock:
        tcp.round_trip(sock)
        add_toxic("reset_peer", timeout=0)
        sock.sendall(b"ping")
        data, how, _ = tcp.read_until_closed(sock)
    assert data == b"" and how == "eof"


# --- slicer -------------------------------------------------------------------------------------
def test_slicer_cuts_data_into_delayed_slices(make_proxy, servers, add_toxic, tcp):
    payload = bytes(range(256)) * 4  # 1024 bytes in one write
    port = make_proxy(servers.start(source(payload)))
    add_toxic("slicer", average_size=100, size_variation=0, delay=30_000)  # delay in microseconds
    with tcp.connect(port) as sock:
        t0 = time.perf_counter()
        reads = []
        while chunk := sock.recv(65536):
            reads.append(chunk)
        elapsed = time.perf_counter() - t0
    assert b"".join(reads) == payload
    assert len(reads) >= 5, [len(r) for r in reads]
    assert max(len(r) for r in reads) <= 260
    assert elapsed >= 0.15


# --- limit_data ---------------------------------------------------------------------------------
def test_limit_data_passes_the_first_bytes_then_closes(make_proxy, servers, add_toxic, tcp):
    recorder = tcp.Recorder()
    port = make_proxy(servers.start(recorder))
    add_toxic("limit_data", stream="upstream", bytes=10)
    with tcp.connect(port) as sock:
        sock.sendall(b"0123456789abcdefghij")
        data, _how, elapsed = tcp.read_until_closed(sock)
    assert data == b"" and elapsed < 2
    assert recorder.done.wait(2)
    assert bytes(recorder.data) == b"0123456789"


def test_limit_data_downstream_counts_across_chunks(make_proxy, echo_port, add_toxic, tcp):
    port = make_proxy(echo_port)
    add_toxic("limit_data", bytes=6)
    with tcp.connect(port) as sock:
        sock.sendall(b"abcd")
        assert sock.recv(10) == b"abcd"
        sock.sendall(b"efgh")
        data, _how, _ = tcp.read_until_closed(sock)
    assert data == b"ef"


def test_noop_passes_everything(make_proxy, echo_port, add_toxic, tcp):
    port = make_proxy(echo_port)
    add_toxic("noop")
    add_toxic("noop", stream="upstream")
    with tcp.connect(port) as sock:
        payload = os.urandom(200_000)
        assert tcp.round_trip(sock, payload) < 2


# --- toxicity -----------------------------------------------------------------------------------
def test_toxicity_is_drawn_per_connection(make_proxy, echo_port, add_toxic, tcp, api):
    port = make_proxy(echo_port)
    add_toxic("latency", toxicity=0.0, latency=300)
    with tcp.connect(port) as sock:
        assert tcp.round_trip(sock) < 0.1
    api.patch("/proxies/p/toxics/latency_downstream", json={"toxicity": 0.5, "attributes": {"latency": 40}})
    delays = []
    for _ in range(16):
        with tcp.connect(port) as sock:
            delays.append(tcp.round_trip(sock))
    slow = sum(d >= 0.038 for d in delays)
    assert 0 < slow < 16, delays  # all alike has probability 2 / 2**16
    assert min(delays) < 0.03


# --- disable / delete ---------------------------------------------------------------------------
def test_disable_closes_connections_and_refuses_new_ones(api, make_proxy, echo_port, tcp):
    port = make_proxy(echo_port)
    with tcp.connect(port) as sock:
        tcp.round_trip(sock)
        api.post("/proxies/p", json={"enabled": False})
        data, _how, elapsed = tcp.read_until_closed(sock)
        assert data == b"" and elapsed < 1
    with pytest.raises(ConnectionRefusedError):
        tcp.connect(port)
    api.post("/proxies/p", json={"enabled": True})
    with tcp.connect(port) as sock:
        tcp.round_trip(sock)


def test_deleting_a_proxy_closes_its_connections(api, make_proxy, echo_port, tcp):
    port = make_proxy(echo_port)
    with tcp.connect(port) as sock:
        tcp.round_trip(sock)
        assert api.delete("/proxies/p").status_code == 204
        data, _how, elapsed = tcp.read_until_closed(sock)
    assert data == b"" and elapsed < 1


def test_an_unreachable_upstream_closes_the_client(make_proxy, tcp):
    closed = socket.create_server(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    port = make_proxy(dead_port)
    with tcp.connect(port) as sock:
        data, _how, elapsed = tcp.read_until_closed(sock)
    assert data == b"" and elapsed < 2
