"""HTTP faults on a link: the rules (pure), then the proxy process over real sockets.

The integration tests start the proxy as the harness does (the client's ``server_url()``)
and put it in front of a real HTTP/1.1 server on loopback that counts its effects; every
fault is judged on the upstream's own counters, not only on the proxy's call log.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import httptools
import psutil
import pytest
import saga_harness.chaos.httpfaults.client as hf_client
from aiohttp import web
from saga_harness.chaos.httpfaults import Call, HttpFaults, HttpRule, RuleSet
from saga_harness.chaos.httpfaults.calls import CallLog
from saga_harness.errors import ScenarioError

# --- the rules, without a network ----------------------------------------------------------


def _picks(rules: RuleSet, requests: list[tuple[str, str]]) -> list[str | None]:
    return [(r.id if (r := rules.pick(m, p)) else None) for m, p in requests]


def test_nth_picks_only_those_matching_requests():
    rules = RuleSet()
    rules.add(HttpRule(id="r", action="status", method="POST", path="/pay/*", nth=(2, 4)))
    seq = [("POST", "/pay/1"), ("GET", "/pay/1"), ("POST", "/pay/2"), ("POST", "/other"), ("POST", "/pay/3")]
    seq += [("POST", "/pay/4"), ("POST", "/pay/5")]
    # matching: /pay/1 (1st), /pay/2 (2nd), /pay/3 (3rd), /pay/4 (4th), /pay/5 (5th)
    assert _picks(rules, seq) == [None, None, "r", None, None, "r", None]


def test_first_n_picks_the_first_matching_requests():
    rules = RuleSet()
    rules.add(HttpRule(id="f", action="status", path="/a", first=2))
    assert _picks(rules, [("GET", "/b"), ("GET", "/a"), ("POST", "/a"), ("GET", "/a")]) == [None, "f", "f", None]


def test_nth_wins_over_first_and_first_over_probability():
    rules = RuleSet()
    rules.add(HttpRule(id="n", action="status", nth=(3,), first=1, probability=0.0))
    rules.add(HttpRule(id="f", action="status", first=1, probability=0.0))
    assert _picks(rules, [("GET", "/")] * 3) == ["f", None, "n"]


def test_probability_is_deterministic_from_seed_and_id():
    def run(seed: int, rule_id: str = "p") -> list[bool]:
        rules = RuleSet()
        rules.add(HttpRule(id=rule_id, action="status", probability=0.3, seed=seed))
        return [rules.pick("GET", "/x") is not None for _ in range(400)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert run(7) != run(7, "q")
    assert 80 < sum(run(7)) < 160  # ~0.3 of 400
    rules = RuleSet()
    rules.add(HttpRule(id="all", action="status"))
    assert all(rules.pick("GET", "/x") for _ in range(50))  # 1.0: every matching request


def test_method_is_case_insensitive_and_path_a_glob_without_the_query():
    rule = HttpRule(id="g", action="status", method="post", path="/payments/*/capture")
    assert rule.method == "POST"
    assert rule.matches("POST", "/payments/p-1/capture")
    assert not rule.matches("GET", "/payments/p-1/capture")
    assert not rule.matches("POST", "/payments/p-1/refund")
    rules = RuleSet()
    rules.add(rule)
    assert rules.pick("post", "/payments/9/capture") is rule


def test_rules_are_tried_in_order_and_every_matching_rule_counts():
    rules = RuleSet()
    rules.add(HttpRule(id="a", action="status", first=1))
    rules.add(HttpRule(id="b", action="duplicate", nth=(1, 2)))
    # 1st request: both pick it, "a" was set first; "b" counted it anyway, so it picks the 2nd only.
    assert _picks(rules, [("GET", "/")] * 3) == ["a", "b", None]
    assert rules.remove("a") and not rules.remove("a")
    assert [r.id for r in rules.rules()] == ["b"]
    with pytest.raises(ValueError, match="'b' is already set"):
        rules.add(HttpRule(id="b", action="status"))


def test_a_rule_round_trips_through_json():
    rule = HttpRule(id="r", action="cut_body", method="PUT", path="/x/*", nth=(1, 3), seed=4, body_fraction=0.25)
    data = json.loads(json.dumps(rule.to_json()))
    assert data["nth"] == [1, 3] and data["duplicate_after_answer"] is False
    assert HttpRule.from_json(data) == rule
    after = HttpRule(id="d", action="duplicate", duplicate_after_answer=True)
    assert HttpRule.from_json(json.loads(json.dumps(after.to_json()))) == after
    assert HttpRule.from_json({"id": "d", "action": "duplicate"}).duplicate_after_answer is False


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"action": "status"}, "'id'"),
        ({"id": "r", "action": "explode"}, "'action'"),
        ({"id": "r", "action": "stauts"}, "did you mean 'status'"),
        ({"id": "r", "action": "status", "nth": [0]}, "'nth'"),
        ({"id": "r", "action": "status", "nth": "2"}, "'nth'"),
        ({"id": "r", "action": "status", "first": 0}, "'first'"),
        ({"id": "r", "action": "status", "probability": 1.5}, "'probability'"),
        ({"id": "r", "action": "status", "status": 100}, "'status'"),
        ({"id": "r", "action": "status", "status": True}, "'status'"),
        ({"id": "r", "action": "delay_answer", "delay_ms": -1}, "'delay_ms'"),
        ({"id": "r", "action": "lose_answer", "lose": "drop"}, "'lose'"),
        ({"id": "r", "action": "cut_body", "body_fraction": "half"}, "'body_fraction'"),
        ({"id": "r", "action": "status", "path": "pay"}, "'path'"),
        ({"id": "r", "action": "status", "mehtod": "GET"}, "did you mean 'method'"),
        ({"id": "r", "action": "duplicate", "duplicate_after_answer": "yes"}, "'duplicate_after_answer'"),
        ({"id": "r", "action": "duplicate", "duplicate_after_answer": 1}, "'duplicate_after_answer'"),
        ({"id": "r", "action": "status", "duplicate_after_answer": True}, "'duplicate_after_answer'"),
    ],
)
def test_a_bad_rule_is_a_value_error_naming_the_field(data, field):
    with pytest.raises(ValueError) as info:
        HttpRule.from_json(data)
    message = str(info.value)
    assert field in message and "\n" not in message


def test_the_call_log_pages_by_seq_and_keeps_the_last_calls():
    log = CallLog("l", size=5)
    for i in range(8):
        log.add(
            method="GET",
            path=f"/{i}",
            query="",
            status=200,
            rule=None,
            action=None,
            mono_request=0.0,
            mono_answer=0.0,
            headers={},
            body_head="",
        )
    calls, nxt = log.since(0)
    assert [c.seq for c in calls] == [4, 5, 6, 7, 8] and nxt == 9  # the ring kept the last 5
    calls, nxt = log.since(6, limit=2)
    assert [c.seq for c in calls] == [6, 7] and nxt == 8
    assert log.since(9) == ([], 9)
    assert Call.from_json(json.loads(json.dumps(calls[0].to_json()))) == calls[0]


# --- a real upstream ---------------------------------------------------------------------------


class Upstream:
    """An HTTP/1.1 server on 127.0.0.1 (aiohttp, on its own thread) that counts what it did.

    ``effects[id]``: POST /pay/{id} or /slow/{id} handled with its whole body; ``incomplete``: a
    body that never arrived in full; ``seen``: (method, path, upstream peer port, monotonic time)
    per request; ``most_in_flight[id]``: the most /slow/{id} requests handled at once (each takes 0.3 s).
    """

    def __init__(self) -> None:
        self.effects: collections.Counter[str] = collections.Counter()
        self.in_flight: collections.Counter[str] = collections.Counter()
        self.most_in_flight: collections.Counter[str] = collections.Counter()
        self.incomplete = 0
        self.seen: list[tuple[str, str, int, float]] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def _note(self, request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        self.seen.append((request.method, request.path, peer[1], time.monotonic()))

    async def _pay(self, request: web.Request) -> web.Response:
        self._note(request)
        try:
            body = await request.read()
        except BaseException:
            self.incomplete += 1
            raise
        key = request.match_info["id"]
        self.effects[key] += 1
        return web.json_response({"id": key, "n": self.effects[key], "len": len(body)})

    async def _slow(self, request: web.Request) -> web.Response:
        self._note(request)
        await request.read()
        key = request.match_info["id"]
        self.in_flight[key] += 1
        self.most_in_flight[key] = max(self.most_in_flight[key], self.in_flight[key])
        try:
            await asyncio.sleep(0.3)  # a side effect being processed, its idempotency key not recorded yet
        finally:
            self.in_flight[key] -= 1
        self.effects[key] += 1
        return web.json_response({"id": key, "n": self.effects[key]})

    async def _echo(self, request: web.Request) -> web.Response:
        self._note(request)
        return web.Response(body=await request.read(), content_type="application/octet-stream")

    async def _hello(self, request: web.Request) -> web.Response:
        self._note(request)
        return web.Response(text=f"hello {request.query_string}")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self._note(request)
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(5):
            await resp.write(b"part%d;" % i)
        await resp.write_eof()
        return resp

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application(client_max_size=16 << 20)
        app.router.add_post("/pay/{id}", self._pay)
        app.router.add_post("/slow/{id}", self._slow)
        app.router.add_post("/echo", self._echo)
        app.router.add_get("/hello", self._hello)
        app.router.add_get("/stream", self._stream)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self.runner.addresses[0][1]
        ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def upstream():
    server = Upstream()
    yield server
    server.close()


@pytest.fixture(scope="module", autouse=True)
def _proxy_process(monkeypatch_module):
    monkeypatch_module.delenv("HTTPFAULTS_URL", raising=False)
    yield
    hf_client.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture
def faults() -> HttpFaults:
    return HttpFaults()  # the process the client starts (once), as the harness does


_names = iter(range(1, 10_000))


@pytest.fixture
def link(faults, upstream):
    """``(name, port)`` of a new link to the upstream; deleted after the test."""
    name = f"t{next(_names)}"
    listen = faults.create_link(name, f"127.0.0.1:{upstream.port}")
    host, port = listen.rsplit(":", 1)
    assert host == "127.0.0.1"
    yield name, int(port)
    faults.delete_link(name)


def _conn(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=5)


def _post(conn: http.client.HTTPConnection, path: str, body: bytes = b'{"amount": 5}', **headers: str):
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
    resp = conn.getresponse()
    return resp.status, resp.read()


def _wait_for(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _read_answers(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` answers from a raw socket: (status, headers, body)."""
    done: list[tuple[int, dict[str, str], bytes]] = []

    class Events:
        def on_message_begin(self):
            self.headers, self.body = {}, b""

        def on_header(self, name, value):
            self.headers[name.decode().lower()] = value.decode()

        def on_body(self, data):
            self.body += data

        def on_message_complete(self):
            done.append((parser.get_status_code(), self.headers, self.body))

    parser = httptools.HttpResponseParser(Events())
    while len(done) < count:
        data = sock.recv(65536)
        assert data, f"the connection closed after {len(done)} of {count} answers"
        parser.feed_data(data)
    return done


# --- pass-through ----------------------------------------------------------------------------------


def test_get_and_post_pass_through_on_one_kept_alive_connection(link, upstream):
    name, port = link
    conn = _conn(port)
    conn.request("GET", "/hello?x=1")
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"hello x=1")
    status, body = _post(conn, "/pay/pt")
    assert status == 200 and json.loads(body) == {"id": "pt", "n": 1, "len": 13}
    conn.request("POST", "/echo", body=iter([b"chunk-one;", b"chunk-two"]), encode_chunked=True)
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"chunk-one;chunk-two")
    conn.request("GET", "/stream")  # a chunked answer
    resp = conn.getresponse()
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.read() == b"part0;part1;part2;part3;part4;"
    conn.request("HEAD", "/hello")  # an answer with a Content-Length and no body
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b""
    status, _ = _post(conn, "/pay/pt")  # the connection is still in step after the HEAD
    assert status == 200
    conn.close()
    assert upstream.effects["pt"] == 2
    peers = {peer for _m, path, peer, _t in upstream.seen if path in ("/hello", "/pay/pt", "/echo", "/stream")}
    assert len(peers) == 1  # one upstream connection for the client's one connection


def test_pipelined_requests_are_answered_in_order(link, faults, upstream):
    name, port = link
    faults.add_rule(name, HttpRule(id="mid", action="status", status=429, method="GET"))
    hellos = sum(path == "/hello" for _m, path, _p, _t in upstream.seen)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /pay/pipe HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
            b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        answers = _read_answers(sock, 3)
    assert [a[0] for a in answers] == [200, 429, 200]
    assert json.loads(answers[0][2])["id"] == "pipe"
    assert answers[1][1]["retry-after"] == "1" and json.loads(answers[1][2])["rule"] == "mid"
    assert answers[2][2] == b"abc"
    assert upstream.effects["pipe"] == 1
    assert sum(path == "/hello" for _m, path, _p, _t in upstream.seen) == hellos  # the 429 was not forwarded


# --- faults ---------------------------------------------------------------------------------------------


def test_status_answers_without_forwarding_and_the_connection_stays_usable(link, faults, upstream):
    name, port = link
    faults.add_rule(name, HttpRule(id="s", action="status", status=503, path="/pay/*", first=1))
    conn = _conn(port)
    conn.request("POST", "/pay/st", body=b"x" * 3000)
    resp = conn.getresponse()
    assert resp.status == 503 and resp.getheader("Retry-After") == "1"
    assert json.loads(resp.read()) == {"error": "injected by saga-harness", "rule": "s"}
    assert upstream.effects["st"] == 0
    status, _ = _post(conn, "/pay/st")
    assert status == 200 and upstream.effects["st"] == 1


@pytest.mark.parametrize(
    ("lose", "error"), [("reset", ConnectionResetError), ("close", http.client.RemoteDisconnected)]
)
def test_lose_answer_lets_the_request_take_effect_and_the_caller_never_learns(link, faults, upstream, lose, error):
    name, port = link
    key = f"lose-{lose}"
    faults.add_rule(name, HttpRule(id="l", action="lose_answer", lose=lose, path=f"/pay/{key}"))
    conn = _conn(port)
    with pytest.raises(ConnectionResetError) as info:
        _post(conn, f"/pay/{key}")
    assert type(info.value) is error  # RST: reset by peer; FIN: closed without an answer
    assert _wait_for(lambda: upstream.effects[key] == 1)
    time.sleep(0.05)
    assert upstream.effects[key] == 1
    calls, _ = faults.calls(name)
    assert [(c.status, c.action) for c in calls] == [(None, "lose_answer")]


@pytest.mark.parametrize("after", [False, True], ids=["racing", "after_answer"])
def test_duplicate_has_two_effects_and_one_answer(link, faults, upstream, after):
    name, port = link
    key = f"dup-{after}"
    rule = HttpRule(id="d", action="duplicate", path=f"/pay/{key}", nth=(1,), duplicate_after_answer=after)
    faults.add_rule(name, rule)
    conn = _conn(port)
    status, body = _post(conn, f"/pay/{key}")
    # the original's answer; racing, the copy may have been handled first
    assert status == 200 and json.loads(body)["n"] in ((1,) if after else (1, 2))
    assert _wait_for(lambda: upstream.effects[key] == 2)
    status, body = _post(conn, f"/pay/{key}")  # the second answer was read and dropped, not handed to this one
    assert status == 200 and json.loads(body)["n"] == 3
    assert upstream.effects[key] == 3
    calls, _ = faults.calls(name)
    assert [(c.status, c.rule, c.action) for c in calls] == [(200, "d", "duplicate"), (200, None, None)]


def _link_state(name: str) -> dict:
    status, body = _api("GET", f"/links/{name}")
    assert status == 200
    return body  # type: ignore[return-value]


def _proxy_sockets_to(port: int) -> set[int]:
    """The local ports of the proxy process's open TCP sockets to ``port``."""
    proc = psutil.Process(hf_client._started.proc.pid)  # type: ignore[union-attr]
    return {c.laddr.port for c in proc.net_connections("tcp") if c.raddr and c.raddr.port == port}


@pytest.mark.parametrize(("after", "most"), [(False, 2), (True, 1)], ids=["racing", "after_answer"])
def test_a_duplicate_races_its_original_on_a_connection_of_its_own(link, faults, upstream, after, most):
    name, port = link
    key = f"race-{after}"
    rule = HttpRule(id="d", action="duplicate", path=f"/slow/{key}", nth=(1,), duplicate_after_answer=after)
    faults.add_rule(name, rule)
    conn = _conn(port)
    status, _ = _post(conn, f"/slow/{key}")
    assert status == 200
    assert _wait_for(lambda: upstream.effects[key] == 2)
    # The upstream's own view: racing, it handled the copy while the original was in flight.
    assert upstream.most_in_flight[key] == most
    status, body = _post(conn, f"/slow/{key}")  # the client's kept-alive connection goes on
    assert status == 200 and json.loads(body)["n"] == 3
    peers = [peer for _m, path, peer, _t in upstream.seen if path == f"/slow/{key}"]
    assert len(peers) == 3
    own = peers[2]  # the client's connection's upstream connection
    assert peers.count(own) == (3 if after else 2)  # racing, the copy came on another one
    copies = _link_state(name)["copies"]
    if after:
        assert copies == {"sent": 0, "answered": 0, "dropped": 0, "open": 0}
    else:
        (copy_peer,) = set(peers) - {own}
        assert _wait_for(lambda: _link_state(name)["copies"]["open"] == 0)
        assert _link_state(name)["copies"] == {"sent": 1, "answered": 1, "dropped": 0, "open": 0}
        # the copy's connection is closed: the proxy holds no socket for it, the upstream none open from it
        assert _wait_for(lambda: copy_peer not in _proxy_sockets_to(upstream.port))
        assert own in _proxy_sockets_to(upstream.port)
        assert _wait_for(
            lambda: (
                not any(
                    c.laddr.port == upstream.port
                    and c.raddr
                    and c.raddr.port == copy_peer
                    and c.status == "ESTABLISHED"
                    for c in psutil.Process().net_connections("tcp")
                )
            )
        )
    calls, _ = faults.calls(name)
    assert [(c.status, c.rule, c.action) for c in calls] == [(200, "d", "duplicate"), (200, None, None)]
    conn.close()


def test_a_duplicated_head_request_and_pipelining_after_it(link, faults, upstream):
    name, port = link
    faults.add_rule(name, HttpRule(id="h", action="duplicate", method="HEAD", path="/hello"))
    hellos = sum(path == "/hello" for _m, path, _p, _t in upstream.seen)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /hello?after HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /pay/after-head HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        )
        answers = _read_answers_head_first(sock)
    assert [a[0] for a in answers] == [200, 200, 200]
    assert answers[0][2] == b"" and answers[1][2] == b"hello after"
    assert json.loads(answers[2][2])["n"] == 1
    assert _wait_for(lambda: sum(path == "/hello" for _m, path, _p, _t in upstream.seen) == hellos + 3)
    assert _wait_for(lambda: _link_state(name)["copies"] == {"sent": 1, "answered": 1, "dropped": 0, "open": 0})


def _read_answers_head_first(sock: socket.socket) -> list[tuple[int, dict[str, str], bytes]]:
    """The answers to a HEAD request, then to two more, from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed before the HEAD's answer"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    done = [(status, {}, b"")]
    done += _read_answers(_Prefixed(sock, rest), 2)  # type: ignore[arg-type]
    return done


class _Prefixed:
    """A socket whose first ``recv`` returns ``prefix`` (if any)."""

    def __init__(self, sock: socket.socket, prefix: bytes) -> None:
        self.sock, self.prefix = sock, prefix

    def recv(self, size: int) -> bytes:
        if self.prefix:
            data, self.prefix = self.prefix, b""
            return data
        return self.sock.recv(size)


def test_a_copy_whose_connection_cannot_open_is_dropped_and_the_original_goes_through(faults):
    listener, seen = _raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    with listener:
        port = int(faults.create_link("nocopy", f"127.0.0.1:{listener.getsockname()[1]}").rsplit(":", 1)[1])
        try:
            faults.add_rule("nocopy", HttpRule(id="d", action="duplicate"))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                assert _wait_for(lambda: seen["conn"] is not None)  # the client's upstream connection
                listener.close()  # from now on the upstream refuses connections
                sock.sendall(b"POST /pay/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
                assert _read_answers(sock, 1)[0][:1] == (200,)
            assert seen["data"].count(b"POST /pay/x ") == 1  # type: ignore[union-attr]
            assert _wait_for(lambda: _link_state("nocopy")["copies"]["dropped"] == 1)
            assert _link_state("nocopy")["copies"] == {"sent": 0, "answered": 0, "dropped": 1, "open": 0}
            calls, _ = faults.calls("nocopy")
            assert [(c.status, c.rule, c.action) for c in calls] == [(200, "d", "duplicate")]
        finally:
            faults.delete_link("nocopy")


def test_nth_hits_only_the_second_matching_request(link, faults, upstream):
    name, port = link
    faults.add_rule(name, HttpRule(id="n2", action="status", status=500, method="POST", path="/pay/nth", nth=(2,)))
    conn = _conn(port)
    conn.request("GET", "/hello")  # does not match: not counted
    conn.getresponse().read()
    statuses = [_post(conn, "/pay/nth")[0] for _ in range(3)]
    assert statuses == [200, 500, 200]
    assert upstream.effects["nth"] == 2


def test_first_two_requests_fail(link, faults, upstream):
    name, port = link
    faults.add_rule(name, HttpRule(id="f2", action="status", status=503, path="/pay/first", first=2))
    statuses = []
    for _ in range(3):  # a new connection each time: counts are per rule, not per connection
        conn = _conn(port)
        statuses.append(_post(conn, "/pay/first")[0])
        conn.close()
    assert statuses == [503, 503, 200]
    assert upstream.effects["first"] == 1


def test_delay_answer_and_delay_request(link, faults, upstream):
    name, port = link
    faults.add_rule(name, HttpRule(id="da", action="delay_answer", delay_ms=300, path="/pay/da"))
    faults.add_rule(name, HttpRule(id="dr", action="delay_request", delay_ms=300, path="/pay/dr"))
    conn = _conn(port)
    t0 = time.monotonic()
    assert _post(conn, "/pay/da")[0] == 200
    assert time.monotonic() - t0 >= 0.3
    arrived = [t for _m, path, _p, t in upstream.seen if path == "/pay/da"]
    assert arrived[-1] - t0 < 0.25  # forwarded at once, the answer was held
    t0 = time.monotonic()
    assert _post(conn, "/pay/dr")[0] == 200
    arrived = [t for _m, path, _p, t in upstream.seen if path == "/pay/dr"]
    assert arrived[-1] - t0 >= 0.3  # the upstream saw the request late
    assert upstream.effects["da"] == upstream.effects["dr"] == 1


def test_cut_body_leaves_the_upstream_with_an_incomplete_body(link, faults, upstream):
    name, port = link
    faults.add_rule(name, HttpRule(id="c", action="cut_body", body_fraction=0.5, path="/pay/cut"))
    before = upstream.incomplete
    conn = _conn(port)
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
        _post(conn, "/pay/cut", body=b"y" * 1000)
    assert _wait_for(lambda: upstream.incomplete == before + 1)
    assert upstream.effects["cut"] == 0
    assert any(path == "/pay/cut" for _m, path, _p, _t in upstream.seen)  # it got the head
    calls, _ = faults.calls(name)
    assert [(c.status, c.rule, c.action) for c in calls] == [(None, "c", "cut_body")]


def test_the_call_log_records_each_request(link, faults, upstream):
    name, port = link
    faults.add_rule(name, HttpRule(id="s", action="status", status=503, path="/pay/log", nth=(2,)))
    conn = _conn(port)
    t0 = time.monotonic()
    headers = {"Idempotency-Key": "k-1", "traceparent": "00-abc-def-01", "X-Other": "no", "CE-Type": "a.b"}
    assert _post(conn, "/pay/log", body=b'{"order": "o-1"}', **headers)[0] == 200
    assert _post(conn, "/pay/log", **{"Idempotency-Key": "k-2"})[0] == 503
    conn.request("GET", "/hello?q=1")
    conn.getresponse().read()
    calls, nxt = faults.calls(name)
    assert [(c.method, c.path, c.query, c.status, c.rule, c.action) for c in calls] == [
        ("POST", "/pay/log", "", 200, None, None),
        ("POST", "/pay/log", "", 503, "s", "status"),
        ("GET", "/hello", "q=1", 200, None, None),
    ]
    assert calls[0].headers == {"idempotency-key": "k-1", "traceparent": "00-abc-def-01", "ce-type": "a.b"}
    assert calls[0].body_head == '{"order": "o-1"}'
    assert all(t0 <= c.mono_request <= c.mono_answer <= time.monotonic() for c in calls)
    assert [c.seq for c in calls] == [1, 2, 3] and nxt == 4 and calls[0].link == name
    _post(conn, "/pay/log")
    later, nxt2 = faults.calls(name, since=nxt)
    assert [c.seq for c in later] == [4] and nxt2 == 5
    assert upstream.effects["log"] == 2


def test_an_upstream_that_refuses_gets_the_client_a_502(faults):
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        dead = spare.getsockname()[1]  # bound, never listening: connections are refused
        listen = faults.create_link("refused", f"127.0.0.1:{dead}")
        try:
            for pause in (0.0, 0.2):  # the request before, then after, the proxy learns the upstream refused
                conn = _conn(int(listen.rsplit(":", 1)[1]))
                conn.connect()
                time.sleep(pause)
                status, body = _post(conn, "/pay/x")
                assert status == 502 and json.loads(body)["link"] == "refused"
                conn.close()
            calls, _ = faults.calls("refused")
            assert [c.status for c in calls] == [502, 502]
        finally:
            faults.delete_link("refused")


def _raw_upstream(answer: bytes) -> tuple[socket.socket, dict[str, object]]:
    """A one-connection upstream that answers ``answer`` to the first request; ``seen["end"]``: "eof" or "reset"."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: dict[str, object] = {"data": b"", "end": None, "conn": None}

    def serve() -> None:
        conn, _ = listener.accept()
        seen["conn"] = conn
        answered = False
        try:
            while data := conn.recv(65536):
                seen["data"] += data  # type: ignore[operator]
                if not answered and b"\r\n\r\n" in seen["data"]:  # type: ignore[operator]
                    conn.sendall(answer)
                    answered = True
            seen["end"] = "eof"
        except OSError:
            seen["end"] = "reset"

    threading.Thread(target=serve, daemon=True).start()
    return listener, seen


def test_a_close_on_either_side_closes_the_other(faults):
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    listener, seen = _raw_upstream(answer)
    with listener:
        port = int(faults.create_link("closing", f"127.0.0.1:{listener.getsockname()[1]}").rsplit(":", 1)[1])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # the client closes
                sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _read_answers(sock, 1)[0][2] == b"ok"
            assert _wait_for(lambda: seen["end"] == "eof")
        finally:
            faults.delete_link("closing")
    listener, seen = _raw_upstream(answer)
    with listener:
        port = int(faults.create_link("closing", f"127.0.0.1:{listener.getsockname()[1]}").rsplit(":", 1)[1])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # the upstream closes
                sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _read_answers(sock, 1)[0][2] == b"ok"
                seen["conn"].shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
                assert sock.recv(10) == b""  # EOF: the proxy closed the client's connection too
        finally:
            faults.delete_link("closing")


def test_large_bodies_stream_both_ways(link, upstream):
    _name, port = link
    body = os.urandom(3 << 20)
    conn = _conn(port)
    conn.request("POST", "/echo", body=body)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == body
    conn.request("POST", "/echo", body=iter([body[: 1 << 20], body[1 << 20 :]]), encode_chunked=True)
    assert conn.getresponse().read() == body


# --- the control API ------------------------------------------------------------------------------------


def _api(method: str, path: str, body: object = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(hf_client.server_url() + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_api_answers_errors_as_json(link, faults):
    name, _port = link
    assert _api("GET", "/version") == (200, {"name": "saga-harness-httpfaults", "version": 1})
    assert any(entry["name"] == name for entry in _api("GET", "/links")[1])
    for method, path in [
        ("GET", "/links/nope/rules"),
        ("GET", "/links/nope/calls"),
        ("DELETE", "/links/nope"),
        ("POST", "/links/nope/rules"),
    ]:
        status, body = _api(method, path, {"id": "r", "action": "status"} if method == "POST" else None)
        assert status == 404 and "nope" in body["error"], (method, path, body)
    status, body = _api("POST", f"/links/{name}/rules", {"id": "r", "action": "status", "first": -1})
    assert status == 400 and "'first'" in body["error"]
    assert _api("POST", f"/links/{name}/rules", {"id": "r", "action": "status"})[0] == 201
    assert _api("GET", f"/links/{name}/rules")[1] == [HttpRule(id="r", action="status").to_json()]
    assert _api("POST", f"/links/{name}/rules", {"id": "r", "action": "status"})[0] == 409
    assert _api("DELETE", f"/links/{name}/rules/r") == (204, None)
    assert _api("DELETE", f"/links/{name}/rules/r")[0] == 404
    status, body = _api("POST", "/links", {"name": name, "upstream": "127.0.0.1:9"})
    assert status == 409 and name in body["error"]
    assert _api("GET", f"/links/{name}/calls?since=x")[0] == 400
    with pytest.raises(ScenarioError, match="Create the link first"):
        faults.add_rule("nope", HttpRule(id="r", action="status"))
    faults.add_rule(name, HttpRule(id="twice", action="status"))
    with pytest.raises(ScenarioError, match="Remove the rule first"):
        faults.add_rule(name, HttpRule(id="twice", action="status"))
    faults.remove_rule(name, "twice")
    with pytest.raises(ScenarioError, match="answered 404"):
        faults.remove_rule(name, "twice")
    faults.delete_link("nope")  # no error: already gone


def test_a_non_loopback_upstream_is_refused(faults):
    status, body = _api("POST", "/links", {"name": "far", "upstream": "10.1.2.3:80"})
    assert status == 400 and "loopback" in body["error"]
    status, body = _api("POST", "/links", {"name": "far", "upstream": "127.0.0.1:80", "listen": "0.0.0.0:0"})
    assert status == 400 and "loopback" in body["error"]
    with pytest.raises(ScenarioError, match="loopback"):
        faults.create_link("far", "example.com:80")
    assert not any(entry["name"] == "far" for entry in _api("GET", "/links")[1])


def test_create_link_replaces_a_link_of_that_name(faults, upstream):
    first = faults.create_link("again", "127.0.0.1:9")
    faults.add_rule("again", HttpRule(id="s", action="status"))
    second = faults.create_link("again", f"127.0.0.1:{upstream.port}")
    try:
        conn = _conn(int(second.rsplit(":", 1)[1]))
        assert _post(conn, "/pay/again")[0] == 200  # the new link, without the old one's rule
        assert upstream.effects["again"] == 1
        assert first.startswith("127.0.0.1:")
    finally:
        faults.delete_link("again")


# --- the process ------------------------------------------------------------------------------------------


def _httpfaults_children() -> list[psutil.Process]:
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "saga_harness.chaos.httpfaults" in " ".join(child.cmdline()) and child.status() != "zombie":
                out.append(child)
        except psutil.Error:
            pass
    return out


def test_close_stops_the_process_cleanly_and_leaves_no_orphan(faults):
    started = hf_client._started
    assert started is not None and started.alive() and faults.url == started.url()
    assert hf_client.server_url() == started.url()  # started once, reused
    hf_client.close()
    assert started.proc.returncode == 0  # SIGTERM: a clean stop
    assert hf_client._started is None
    assert _httpfaults_children() == []
    HttpFaults().create_link("after", "127.0.0.1:9")  # a later use starts it again
    assert hf_client._started is not None and hf_client._started.alive()


def test_the_process_exits_when_its_parent_is_gone():
    script = (
        "from saga_harness.chaos.spawn import start_module_server as s\n"
        "st = s('saga_harness.chaos.httpfaults', 'the HTTP fault proxy', 15)\n"
        "print(st.proc.pid, flush=True)\n"  # and exit without stopping it
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True)
    pid = int(out.stdout.strip())
    assert _wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", 5.0)
    assert os.getpid() != pid


def test_an_answer_delimited_by_the_upstreams_close_is_passed_on(faults):
    listener, seen = _raw_upstream(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
    with listener:
        port = int(faults.create_link("eof", f"127.0.0.1:{listener.getsockname()[1]}").rsplit(":", 1)[1])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _wait_for(lambda: seen["conn"] is not None and seen["data"])
                time.sleep(0.05)
                seen["conn"].shutdown(socket.SHUT_RDWR)  # the end of the answer
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nuntil the end")
            calls, _ = faults.calls("eof")
            assert [c.status for c in calls] == [200]
        finally:
            faults.delete_link("eof")
