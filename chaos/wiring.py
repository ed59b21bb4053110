"""Putting Toxiproxy proxies on a SUT's links before it starts."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from saga_harness.errors import ScenarioError
from saga_harness.sut import SystemUnderTest


def proxy_name(link: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", link.replace("->", "__to__"))


def proxy_links(sut: SystemUnderTest, client: Any, names: set[str]) -> dict[str, Any]:
    """Create a proxy per named link and point the SUT's link at it (call before ``sut.start()``)."""
    by_name = {link.name: link for link in sut.links()}
    unknown = sorted(names - set(by_name))
    if unknown:
        raise ScenarioError(f"links {unknown} are not links of {sut.name}; links: {', '.join(sorted(by_name))}")
    proxies = {}
    addresses = getattr(sut, "addresses", None)
    if addresses is None:
        raise ScenarioError(f"{sut.name} cannot route its links through proxies (no `addresses`)")
    for name in sorted(names):
        link = by_name[name]
        pname = proxy_name(name)
        existing = client.get_proxy(pname)
        if existing is not None:
            client.destroy(existing)
        proxy = client.create(upstream=link.upstream, name=pname, listen="127.0.0.1:0")
        proxies[name] = proxy
        addresses[name] = f"http://{proxy.listen}"
    return proxies


def remove_proxies(client: Any, proxies: dict[str, Any]) -> None:
    for proxy in proxies.values():
        try:
            proxy.destroy()
        except Exception:  # the server may already be gone; nothing left to clean
            pass


@contextmanager
def proxied_links(sut: SystemUnderTest, windows: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Proxies on every link a fault schedule touches (none: no Toxiproxy needed); removed at exit."""
    from saga_harness.chaos.scenario import LINK_FAULTS

    names = {w.target for w in windows if w.kind in LINK_FAULTS}
    if not names:
        yield {}
        return
    from saga_harness.chaos.toxiproxy import client as toxiproxy_client

    client = toxiproxy_client()
    proxies: dict[str, Any] = {}
    try:
        proxies = proxy_links(sut, client, names)
        yield proxies
    finally:
        remove_proxies(client, proxies)
