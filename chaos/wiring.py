"""Putting Toxiproxy proxies on a SUT's links before it starts."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from saga_harness.chaos.guard import check_targets
from saga_harness.chaos.scenario import LINK_FAULTS
from saga_harness.chaos.schedule import FaultWindow
from saga_harness.chaos.toxiproxy import client as toxiproxy_client
from saga_harness.errors import ScenarioError
from saga_harness.sut import LinkRouting, SystemUnderTest


def proxy_name(link: str, run: str = "") -> str:
    """The proxy's name on the Toxiproxy server: the link's, prefixed by the run's (runs may share a server)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", link.replace("->", "__to__"))
    return f"{run}__{name}" if run else name


def faulted_links(windows: Iterable[FaultWindow]) -> set[str]:
    """The links a fault schedule touches."""
    return {w.target for w in windows if w.kind in LINK_FAULTS}


def check_links(sut: SystemUnderTest, names: set[str]) -> None:
    """The safety guard for link faults: each faulted link's upstream is on loopback or allowed."""
    if names and isinstance(sut, LinkRouting):
        upstreams = [(f"link {link.name}", link.upstream) for link in sut.links() if link.name in names]
        check_targets(upstreams, sut.allowed_hosts())


def proxy_links(sut: LinkRouting, client: Any, names: set[str], run: str = "") -> dict[str, Any]:
    """Create a proxy per named link and route the SUT's link through it (call before ``sut.start()``);
    ``run`` prefixes the proxies' names."""
    by_name = {link.name: link for link in sut.links()}
    unknown = sorted(names - set(by_name))
    if unknown:
        raise ScenarioError(f"links {unknown} are not links of the SUT; links: {', '.join(sorted(by_name))}")
    proxies = {}
    for name in sorted(names):
        link = by_name[name]
        pname = proxy_name(name, run)
        existing = client.get_proxy(pname)
        if existing is not None:
            client.destroy(existing)
        proxy = client.create(upstream=link.upstream, name=pname, listen="127.0.0.1:0")
        proxies[name] = proxy
        sut.route(name, f"http://{proxy.listen}")
    return proxies


def remove_proxies(proxies: dict[str, Any]) -> None:
    for proxy in proxies.values():
        try:
            proxy.destroy()
        except Exception:  # the server may already be gone; nothing left to clean
            pass


@contextlib.contextmanager
def proxied_links(sut: SystemUnderTest, windows: Iterable[FaultWindow]) -> Iterator[dict[str, Any]]:
    """Proxies on every link a fault schedule touches (none: no Toxiproxy needed); removed at exit.
    The run must have required link routing for them (:func:`saga_harness.chaos.schedule.needs`)."""
    names = faulted_links(windows)
    if not names:
        yield {}
        return
    if not isinstance(sut, LinkRouting):
        raise RuntimeError(f"{sut.name} routes no links; require() should have refused the run")
    client = toxiproxy_client()
    proxies: dict[str, Any] = {}
    try:
        proxies = proxy_links(sut, client, names, run=uuid.uuid4().hex[:8])
        yield proxies
    finally:
        remove_proxies(proxies)
