"""Putting proxies on a SUT's links before it starts: a Toxiproxy proxy for TCP faults, the HTTP fault
proxy (:mod:`saga_harness.chaos.httpfaults`) for request-level faults, both chained when a link has
both kinds (the SUT → Toxiproxy → the HTTP fault proxy → the callee)."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from saga_harness.chaos.guard import check_targets
from saga_harness.chaos.scenario import HTTP_FAULTS, LINK_FAULTS
from saga_harness.chaos.schedule import FaultWindow, on_link
from saga_harness.chaos.toxiproxy import client as toxiproxy_client
from saga_harness.errors import ScenarioError
from saga_harness.sut import LinkRouting, SystemUnderTest


def proxy_name(link: str, run: str = "") -> str:
    """The proxy's name on the Toxiproxy server: the link's, prefixed by the run's (runs may share a server)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", link.replace("->", "__to__"))
    return f"{run}__{name}" if run else name


def faulted_links(windows: Iterable[FaultWindow]) -> set[str]:
    """The links a fault schedule touches (TCP or HTTP faults)."""
    return {w.target for w in windows if on_link(w.kind)}


@dataclass
class Proxies:
    """The proxies a run put on its links: Toxiproxy's by link (toxiproxy-python ``Proxy``), and the HTTP
    fault proxy's link names by link (on :attr:`http_client`)."""

    tcp: dict[str, Any] = field(default_factory=dict)
    http: dict[str, str] = field(default_factory=dict)
    http_client: Any = None


def check_links(sut: SystemUnderTest, names: set[str]) -> None:
    """The safety guard for link faults: each faulted link's upstream is on loopback or allowed."""
    if names and isinstance(sut, LinkRouting):
        upstreams = [(f"link {link.name}", link.upstream) for link in sut.links() if link.name in names]
        check_targets(upstreams, sut.allowed_hosts())


def _known(sut: LinkRouting, names: set[str]) -> dict[str, Any]:
    by_name = {link.name: link for link in sut.links()}
    unknown = sorted(names - set(by_name))
    if unknown:
        raise ScenarioError(f"links {unknown} are not links of the SUT; links: {', '.join(sorted(by_name))}")
    return by_name


def proxy_links(
    sut: LinkRouting, client: Any, names: set[str], run: str = "", upstreams: dict[str, str] | None = None
) -> dict[str, Any]:
    """Create a Toxiproxy proxy per named link and route the SUT's link through it (call before
    ``sut.start()``); ``run`` prefixes the proxies' names; ``upstreams`` overrides where a link's proxy
    forwards (the HTTP fault proxy in front of the callee)."""
    by_name = _known(sut, names)
    proxies = {}
    for name in sorted(names):
        link = by_name[name]
        pname = proxy_name(name, run)
        existing = client.get_proxy(pname)
        if existing is not None:
            client.destroy(existing)
        upstream = (upstreams or {}).get(name, link.upstream)
        proxy = client.create(upstream=upstream, name=pname, listen="127.0.0.1:0")
        proxies[name] = proxy
        sut.route(name, f"http://{proxy.listen}")
    return proxies


def http_proxy_links(sut: LinkRouting, client: Any, names: set[str], run: str = "") -> dict[str, tuple[str, str]]:
    """Put the HTTP fault proxy on each named link and route the SUT's link through it (call before
    ``sut.start()``); by link, the proxy's name for it and the address it listens on."""
    by_name = _known(sut, names)
    made = {}
    for name in sorted(names):
        pname = proxy_name(name, run)
        listen = client.create_link(pname, by_name[name].upstream)
        made[name] = (pname, listen)
        sut.route(name, f"http://{listen}")
    return made


def remove_proxies(proxies: dict[str, Any] | Proxies) -> None:
    """Remove a run's proxies (whatever is already gone is fine)."""
    if isinstance(proxies, Proxies):
        if proxies.http_client is not None:
            for pname in proxies.http.values():
                proxies.http_client.delete_link(pname)
        proxies = proxies.tcp
    for proxy in proxies.values():
        try:
            proxy.destroy()
        except Exception:  # the server may already be gone; nothing left to clean
            pass


@contextlib.contextmanager
def proxied_links(
    sut: SystemUnderTest, windows: Iterable[FaultWindow], http_links: Iterable[str] = ()
) -> Iterator[Proxies]:
    """Proxies on every link a fault schedule touches (none: no proxy server needed), the HTTP fault
    proxy also on ``http_links`` (to record their calls); removed at exit. The run must have required
    link routing for them (:func:`saga_harness.chaos.schedule.needs`)."""
    windows = list(windows)
    tcp = {w.target for w in windows if w.kind in LINK_FAULTS}
    http = {w.target for w in windows if w.kind in HTTP_FAULTS} | set(http_links)
    proxies = Proxies()
    if not tcp and not http:
        yield proxies
        return
    if not isinstance(sut, LinkRouting):
        raise RuntimeError(f"{sut.name} routes no links; require() should have refused the run")
    run = uuid.uuid4().hex[:8]
    made: dict[str, tuple[str, str]] = {}
    try:
        if http:
            from saga_harness.chaos.httpfaults.client import HttpFaults

            proxies.http_client = HttpFaults()
            made = http_proxy_links(sut, proxies.http_client, http, run=run)
            proxies.http = {name: pname for name, (pname, _) in made.items()}
        if tcp:
            # chained: Toxiproxy in front, forwarding to the HTTP fault proxy where there is one
            fronts = {name: made[name][1] for name in tcp & http}
            proxies.tcp = proxy_links(sut, toxiproxy_client(), tcp, run=run, upstreams=fronts)
        yield proxies
    finally:
        remove_proxies(proxies)
