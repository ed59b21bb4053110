"""Toxiproxy 2.x's HTTP API, as clients see it: raw HTTP and the toxiproxy-python client.

Runs against TOXIPROXY_URL when set (a real Toxiproxy), else the embedded server.
"""

from __future__ import annotations

import os
import socket

import pytest
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

EXTERNAL = bool(os.environ.get("TOXIPROXY_URL"))
embedded_only = pytest.mark.skipif(EXTERNAL, reason="guard of the embedded server; a real Toxiproxy lacks it")

ATTRIBUTES = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 1, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "noop": {},
}


def assert_error(resp, status: int, message: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text == f'{{"error":"{message}","status":{status}}}\n'


def upstream(port: int = 9) -> str:
    return f"127.0.0.1:{port}"


# --- proxies ---------------------------------------------------------------------------------
def test_create_proxy_is_201_with_the_bound_port_and_every_field(api, echo_port):
    resp = api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": upstream(echo_port)})
    assert resp.status_code == 201
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert {"name", "listen", "upstream", "enabled", "toxics"} <= set(body)
    assert body["name"] == "p" and body["upstream"] == upstream(echo_port) and body["enabled"] is True
    assert body["toxics"] == []
    host, port = body["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    socket.create_connection((host, int(port)), timeout=2).close()  # it really listens
    assert api.get("/proxies/p").json() == body
    assert api.get("/proxies").json() == {"p": body}


def test_a_disabled_proxy_is_created_without_listening(api):
    resp = api.post("/proxies", json={"name": "off", "listen": "127.0.0.1:0", "upstream": upstream(), "enabled": False})
    assert resp.status_code == 201
    assert resp.json()["enabled"] is False
    assert resp.json()["listen"] == "127.0.0.1:0"  # not rewritten: nothing was bound


def test_duplicate_proxy_is_409(api):
    body = {"name": "p", "listen": "127.0.0.1:0", "upstream": upstream()}
    assert api.post("/proxies", json=body).status_code == 201
    assert_error(api.post("/proxies", json=body), 409, "proxy already exists")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}, "missing required field: name"),
        ({"name": "p", "listen": "127.0.0.1:0"}, "missing required field: upstream"),
        ({"name": "", "upstream": "127.0.0.1:9"}, "missing required field: name"),
    ],
)
def test_missing_fields_are_400(api, body, message):
    assert_error(api.post("/proxies", json=body), 400, message)


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"name": 5, "upstream": "127.0.0.1:9"}', b"[]"])
def test_bad_bodies_are_400_bad_request_body(api, content):
    resp = api.post("/proxies", content=content)
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.json()["error"].startswith("bad request body: ")
    assert resp.json()["status"] == 400


def test_unknown_proxy_is_404_on_every_method(api):
    for method in ("GET", "POST", "PATCH", "DELETE"):
        body = {} if method in ("POST", "PATCH") else None
        assert_error(api.request(method, "/proxies/nope", json=body), 404, "proxy not found")
    assert_error(api.get("/proxies/nope/toxics"), 404, "proxy not found")
    assert_error(api.post("/proxies/nope/toxics", json={"type": "latency"}), 404, "proxy not found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/proxies"),
        ("PUT", "/proxies"),
        ("GET", "/reset"),
        ("GET", "/populate"),
        ("POST", "/version"),
        ("PUT", "/proxies/p"),
        ("DELETE", "/proxies/p/toxics"),
        ("PUT", "/proxies/p/toxics/t"),
    ],
)
def test_known_paths_with_the_wrong_method_are_405_with_an_empty_body(api, method, path):
    resp = api.request(method, path)
    assert resp.status_code == 405
    assert resp.content == b""


def test_unknown_paths_are_404(api):
    resp = api.get("/nope")
    assert resp.status_code == 404
    assert resp.text == "404 page not found\n"


def test_version(api):
    resp = api.get("/version")
    assert resp.status_code == 200
    assert resp.json()["version"]


def test_update_and_patch_a_proxy(api, echo_port, tcp):
    created = api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": upstream(echo_port)})
    listen = created.json()["listen"]
    port = int(listen.rsplit(":", 1)[1])
    resp = api.post("/proxies/p", json={"enabled": False})
    assert resp.status_code == 200 and resp.json()["enabled"] is False
    with pytest.raises(ConnectionRefusedError):
        tcp.connect(port)
    resp = api.patch("/proxies/p", json={"enabled": True})
    assert resp.status_code == 200 and resp.json()["enabled"] is True
    assert resp.json()["listen"] == listen  # the same port again
    with tcp.connect(port) as sock:
        tcp.round_trip(sock)


def test_delete_proxy_is_204_and_closes_its_listener(api, make_proxy, tcp):
    port = make_proxy(9)
    resp = api.delete("/proxies/p")
    assert resp.status_code == 204 and resp.content == b""
    assert api.get("/proxies").json() == {}
    with pytest.raises(ConnectionRefusedError):
        tcp.connect(port)


# --- toxics ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(ATTRIBUTES))
def test_toxic_defaults(api, make_proxy, kind):
    make_proxy(9)
    attributes = {"average_size": 1} if kind == "slicer" else {}  # average_size 0 is refused (crashes Toxiproxy)
    resp = api.post("/proxies/p/toxics", json={"type": kind, "attributes": attributes})
    assert resp.status_code == 200  # not 201
    assert resp.json() == {
        "attributes": ATTRIBUTES[kind],
        "name": f"{kind}_downstream",
        "type": kind,
        "stream": "downstream",
        "toxicity": 1,
    }
    assert api.get(f"/proxies/p/toxics/{kind}_downstream").json() == resp.json()
    assert api.get("/proxies/p/toxics").json() == [resp.json()]
    assert api.get("/proxies/p").json()["toxics"] == [resp.json()]


def test_toxic_names_are_unique_across_both_directions(api, make_proxy):
    make_proxy(9)
    body = {"name": "t", "type": "latency", "stream": "upstream"}
    assert api.post("/proxies/p/toxics", json=body).status_code == 200
    assert_error(api.post("/proxies/p/toxics", json={**body, "stream": "downstream"}), 409, "toxic already exists")
    up = api.post("/proxies/p/toxics", json={"type": "latency", "stream": "upstream"}).json()
    assert up["name"] == "latency_upstream" and up["stream"] == "upstream"
    # Upstream toxics are listed first, then downstream, each in the order added.
    api.post("/proxies/p/toxics", json={"type": "noop"})
    names = [t["name"] for t in api.get("/proxies/p/toxics").json()]
    assert names == ["t", "latency_upstream", "noop_downstream"]


def test_invalid_toxics_are_400(api, make_proxy):
    make_proxy(9)
    stream_error = "stream was invalid, can be either upstream or downstream"
    assert_error(api.post("/proxies/p/toxics", json={"type": "latency", "stream": "sideways"}), 400, stream_error)
    assert_error(api.post("/proxies/p/toxics", json={"type": "earthquake"}), 400, "invalid toxic type")
    assert_error(api.post("/proxies/p/toxics", json={}), 400, "invalid toxic type")
    resp = api.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": "slow"}})
    assert resp.status_code == 400 and resp.json()["error"].startswith("bad request body: ")
    resp = api.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 1.5}})
    assert resp.status_code == 400
    assert api.get("/proxies/p/toxics").json() == []


@embedded_only
def test_slicer_average_size_zero_is_refused_instead_of_crashing(api, make_proxy):
    make_proxy(9)
    resp = api.post("/proxies/p/toxics", json={"type": "slicer", "attributes": {"average_size": 0}})
    assert resp.status_code == 400 and "average_size" in resp.json()["error"]
    api.post("/proxies/p/toxics", json={"type": "slicer", "attributes": {"average_size": 8}})
    resp = api.patch("/proxies/p/toxics/slicer_downstream", json={"attributes": {"average_size": 0}})
    assert resp.status_code == 400
    assert api.get("/proxies/p/toxics/slicer_downstream").json()["attributes"]["average_size"] == 8


def test_toxic_update_merges_attributes_and_changes_only_them_and_toxicity(api, make_proxy):
    make_proxy(9)
    api.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 100, "jitter": 10}})
    resp = api.post(
        "/proxies/p/toxics/latency_downstream",
        json={"attributes": {"jitter": 5}, "toxicity": 0.5, "name": "renamed", "stream": "upstream", "type": "noop"},
    )
    assert resp.status_code == 200
    assert resp.json() == {
        "attributes": {"latency": 100, "jitter": 5},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 0.5,
    }
    resp = api.patch("/proxies/p/toxics/latency_downstream", json={"attributes": {"latency": 7}})
    assert resp.json()["attributes"] == {"latency": 7, "jitter": 5} and resp.json()["toxicity"] == 0.5


def test_unknown_toxic_is_404_and_delete_is_204(api, make_proxy):
    make_proxy(9)
    for method in ("GET", "POST", "PATCH", "DELETE"):
        body = {} if method in ("POST", "PATCH") else None
        assert_error(api.request(method, "/proxies/p/toxics/nope", json=body), 404, "toxic not found")
    api.post("/proxies/p/toxics", json={"type": "noop"})
    resp = api.delete("/proxies/p/toxics/noop_downstream")
    assert resp.status_code == 204 and resp.content == b""
    assert api.get("/proxies/p/toxics").json() == []


def test_reset_enables_every_proxy_and_removes_every_toxic(api, make_proxy):
    make_proxy(9, "a")
    make_proxy(9, "b")
    api.post("/proxies/a/toxics", json={"type": "latency", "attributes": {"latency": 10}})
    api.post("/proxies/b", json={"enabled": False})
    resp = api.post("/reset")
    assert resp.status_code == 204 and resp.content == b""
    proxies = api.get("/proxies").json()
    assert sorted(proxies) == ["a", "b"]
    assert all(p["enabled"] and p["toxics"] == [] for p in proxies.values())


# --- populate --------------------------------------------------------------------------------
def test_populate_creates_keeps_identical_and_replaces_different(api):
    taken = socket.create_server(("127.0.0.1", 0))
    free = socket.create_server(("127.0.0.1", 0))
    free_port = free.getsockname()[1]
    free.close()
    try:
        first = [
            {"name": "a", "listen": f"127.0.0.1:{free_port}", "upstream": upstream(1)},
            {"name": "b", "listen": "127.0.0.1:0", "upstream": upstream(2), "enabled": False},
        ]
        resp = api.post("/populate", json=first)
        assert resp.status_code == 201
        assert resp.headers["content-type"] == "application/json"
        assert [p["name"] for p in resp.json()["proxies"]] == ["a", "b"]
        assert resp.json()["proxies"][1]["enabled"] is False
        api.post("/proxies/a/toxics", json={"type": "noop"})

        # a: identical, kept with its toxic; b: another upstream, replaced.
        second = [first[0], {"name": "b", "listen": "127.0.0.1:0", "upstream": upstream(3)}]
        resp = api.post("/populate", json=second)
        assert resp.status_code == 201
        a, b = resp.json()["proxies"]
        assert a["toxics"] and b["upstream"] == upstream(3) and b["enabled"] is True

        # Not atomic: c is created before d fails to bind.
        third = [
            {"name": "c", "listen": "127.0.0.1:0", "upstream": upstream(4)},
            {"name": "d", "listen": f"127.0.0.1:{taken.getsockname()[1]}", "upstream": upstream(5)},
        ]
        resp = api.post("/populate", json=third)
        assert resp.status_code == 500
        assert resp.headers["content-type"] == "application/json"
        assert resp.json()["status"] == 500 and "address already in use" in resp.json()["error"]
        assert [p["name"] for p in resp.json()["proxies"]] == ["c"]
        assert sorted(api.get("/proxies").json()) == ["a", "b", "c"]
    finally:
        taken.close()


def test_populate_checks_required_fields_before_creating_anything(api):
    body = [{"name": "ok", "listen": "127.0.0.1:0", "upstream": upstream()}, {"name": "bad", "listen": "127.0.0.1:0"}]
    resp = api.post("/populate", json=body)
    assert resp.status_code == 400
    assert resp.json() == {"error": "missing required field: upstream at proxy 2", "status": 400, "proxies": None}
    assert api.get("/proxies").json() == {}


def test_populate_with_nothing(api):
    resp = api.post("/populate", json=[])
    assert resp.status_code == 201 and resp.json() == {"proxies": None}
    resp = api.post("/populate", content=b"{")
    assert resp.status_code == 400 and resp.json()["error"].startswith("bad request body")


# --- the loopback guard ------------------------------------------------------------------------
@embedded_only
@pytest.mark.parametrize(
    "body",
    [
        {"name": "p", "listen": "10.1.2.3:0", "upstream": "127.0.0.1:9"},
        {"name": "p", "listen": "0.0.0.0:0", "upstream": "127.0.0.1:9"},
        {"name": "p", "listen": ":0", "upstream": "127.0.0.1:9"},
        {"name": "p", "listen": "127.0.0.1:0", "upstream": "example.com:80"},
        {"name": "p", "listen": "127.0.0.1:0", "upstream": "192.168.1.1:5432"},
    ],
)
def test_non_loopback_addresses_are_refused_with_a_clear_400(api, body):
    resp = api.post("/proxies", json=body)
    assert resp.status_code == 400
    assert "not a loopback address" in resp.json()["error"] and "--allow-host" in resp.json()["error"]
    assert api.get("/proxies").json() == {}
    assert api.post("/populate", json=[body]).status_code == 400
    assert api.get("/proxies").json() == {}


@embedded_only
def test_loopback_forms_are_accepted_and_updates_are_guarded_too(api):
    for i, (listen, up) in enumerate([("localhost:0", "localhost:9"), ("127.0.0.2:0", "127.9.9.9:9")]):
        resp = api.post("/proxies", json={"name": f"p{i}", "listen": listen, "upstream": up})
        assert resp.status_code == 201, resp.text
    assert api.get("/proxies/p0").json()["listen"].startswith("127.0.0.1:")
    resp = api.post("/proxies/p0", json={"upstream": "8.8.8.8:53"})
    assert resp.status_code == 400 and "not a loopback address" in resp.json()["error"]
    assert api.get("/proxies/p0").json()["upstream"] == "localhost:9"


@embedded_only
def test_the_allow_list_admits_a_named_host():
    import httpx
    from saga_harness.chaos.server import EmbeddedServer

    with EmbeddedServer(allowed_hosts=["db.example"]) as server:
        resp = httpx.post(
            f"{server.url}/proxies",
            json={"name": "p", "listen": "127.0.0.1:0", "upstream": "db.example:5432"},
        )
        assert resp.status_code == 201
        resp = httpx.post(f"{server.url}/proxies", json={"name": "q", "listen": "127.0.0.1:0", "upstream": "x.y:1"})
        assert resp.status_code == 400


@embedded_only
def test_browsers_are_refused(api):
    resp = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert resp.status_code == 403


# --- the toxiproxy-python client ---------------------------------------------------------------
def test_the_python_client_round_trip(toxi, echo_port, tcp):
    assert toxi.running()
    assert b"version" in toxi.version()
    proxy = toxi.create(upstream=upstream(echo_port), name="py")
    assert proxy.enabled is True and not proxy.listen.endswith(":0")
    with pytest.raises(ProxyExists):
        toxi.create(upstream=upstream(echo_port), name="py")
    assert set(toxi.proxies()) == {"py"}
    assert toxi.get_proxy("py").listen == proxy.listen

    proxy.add_toxic(type="latency", attributes={"latency": 5})
    proxy.add_toxic(type="limit_data", stream="upstream", name="cap", toxicity=0.5, attributes={"bytes": 10})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "cap"}
    assert toxics["cap"].stream == "upstream" and toxics["cap"].toxicity == 0.5
    assert toxics["cap"].attributes == {"bytes": 10}
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="earthquake")
    with pytest.raises(ProxyExists):  # 409 for a toxic too
        proxy.add_toxic(type="latency")
    proxy.destroy_toxic("cap")
    with pytest.raises(NotFound):
        proxy.destroy_toxic("cap")
    assert set(proxy.toxics()) == {"latency_downstream"}

    port = int(proxy.listen.rsplit(":", 1)[1])
    with proxy.down():
        with pytest.raises(ConnectionRefusedError):
            tcp.connect(port)
    with tcp.connect(port) as sock:
        tcp.round_trip(sock)

    assert toxi.reset()
    assert proxy.toxics() == {}
    populated = toxi.populate([{"name": "py", "upstream": upstream(echo_port), "listen": proxy.listen}])
    assert populated == []  # identical: kept
    toxi.destroy_all()
    assert toxi.proxies() == {}
