"""The proxies of a server, with Toxiproxy 2.x's rules for creating, updating, populating and resetting.

Every method runs on the event loop; the API serializes the ones that change state.
"""

from __future__ import annotations

import asyncio

from saga_harness.chaos.server.addresses import AddressPolicy, resolved
from saga_harness.chaos.server.codec import decode_body, decode_fields, json_kind
from saga_harness.chaos.server.errors import (
    MISSING_FIELD,
    PROXY_ALREADY_EXISTS,
    PROXY_NOT_FOUND,
    TOXIC_NOT_FOUND,
    ApiError,
)
from saga_harness.chaos.server.proxy import Proxy
from saga_harness.chaos.server.toxics import Toxic, parse_new_toxic, parse_toxic_update

_PROXY_FIELDS = {"name": "string", "listen": "string", "upstream": "string", "enabled": "bool"}


class ProxyCollection:
    """Proxies by name, confined to the addresses ``policy`` allows."""

    def __init__(self, loop: asyncio.AbstractEventLoop, policy: AddressPolicy) -> None:
        self.loop = loop
        self.policy = policy
        self.proxies: dict[str, Proxy] = {}

    def get(self, name: str) -> Proxy:
        """The proxy called ``name`` (404 if none)."""
        proxy = self.proxies.get(name)
        if proxy is None:
            raise PROXY_NOT_FOUND
        return proxy

    def get_toxic(self, proxy_name: str, toxic_name: str) -> tuple[Proxy, Toxic]:
        """The proxy and its toxic (404 for either)."""
        proxy = self.get(proxy_name)
        toxic = proxy.find_toxic(toxic_name)
        if toxic is None:
            raise TOXIC_NOT_FOUND
        return proxy, toxic

    def _check(self, listen: str, upstream: str) -> None:
        self.policy.check("listen", listen)
        self.policy.check("upstream", upstream)

    # --- proxies -------------------------------------------------------------------------
    async def create(self, body: bytes) -> Proxy:
        """``POST /proxies``: a new proxy, listening unless ``enabled`` is false."""
        fields = decode_fields(decode_body(body), _PROXY_FIELDS, "Proxy", "toxiproxy.Proxy")
        name, listen, upstream = fields.get("name", ""), fields.get("listen", ""), fields.get("upstream", "")
        if not name:
            raise MISSING_FIELD.joined("name")
        if not upstream:
            raise MISSING_FIELD.joined("upstream")
        if name in self.proxies:
            raise PROXY_ALREADY_EXISTS
        self._check(listen, upstream)
        proxy = Proxy(self.loop, name, listen, upstream)
        if fields.get("enabled", True):
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def update(self, name: str, body: bytes) -> Proxy:
        """``POST/PATCH /proxies/{name}``: new listen or upstream restart it; ``enabled`` starts or stops it."""
        proxy = self.get(name)
        fields = decode_fields(decode_body(body), _PROXY_FIELDS, "Proxy", "toxiproxy.Proxy")
        listen = fields.get("listen", proxy.listen)
        upstream = fields.get("upstream", proxy.upstream)
        enabled = fields.get("enabled", proxy.enabled)
        self._check(listen, upstream)
        if proxy.listen != resolved(listen) or proxy.upstream != upstream:
            proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        if enabled and not proxy.enabled:
            await proxy.start()
        elif not enabled:
            proxy.stop()
        return proxy

    def remove(self, name: str) -> None:
        """``DELETE /proxies/{name}``: stop it, close its connections, forget it."""
        self.get(name).stop()
        del self.proxies[name]

    async def populate(self, body: bytes) -> tuple[list[Proxy] | None, ApiError | None]:
        """``POST /populate``: create or replace each proxy; not atomic, as in Toxiproxy.

        Returns the proxies done so far and the error that stopped it, if any. A proxy
        identical (listen and upstream) to an existing one keeps the existing one and its
        toxics; a different one replaces it.
        """
        try:
            value = decode_body(body)
            if not isinstance(value, list):
                raise ApiError(
                    f"bad request body: json: cannot unmarshal {json_kind(value)} into Go value of type "
                    f"[]struct {{ toxiproxy.Proxy; Enabled *bool }}",
                    400,
                )
            entries = [decode_fields(v, _PROXY_FIELDS, "Proxy", "toxiproxy.Proxy") for v in value]
            for i, entry in enumerate(entries, 1):
                if not entry.get("name"):
                    raise MISSING_FIELD.joined(f"name at proxy {i}")
                if not entry.get("upstream"):
                    raise MISSING_FIELD.joined(f"upstream at proxy {i}")
            # Our guard checks every entry before creating any: an unsafe list changes nothing.
            for entry in entries:
                self._check(entry.get("listen", ""), entry["upstream"])
        except ApiError as err:
            return None, err
        done: list[Proxy] = []
        for entry in entries:
            proxy = Proxy(self.loop, entry["name"], entry.get("listen", ""), entry["upstream"])
            try:
                done.append(await self._add_or_replace(proxy, entry.get("enabled", True)))
            except ApiError as err:
                return done, err
        return done, None

    async def _add_or_replace(self, proxy: Proxy, enabled: bool) -> Proxy:
        existing = self.proxies.get(proxy.name)
        if existing is not None:
            if existing.listen == resolved(proxy.listen) and existing.upstream == proxy.upstream:
                return existing
            existing.stop()
        if enabled:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    async def reset(self) -> None:
        """``POST /reset``: every proxy enabled again, every toxic removed; the proxies stay."""
        for proxy in list(self.proxies.values()):
            await proxy.start()
            await proxy.remove_all_toxics()

    def close(self) -> None:
        """Stop every proxy (the server is shutting down)."""
        for proxy in self.proxies.values():
            proxy.stop()

    # --- toxics --------------------------------------------------------------------------
    def add_toxic(self, proxy_name: str, body: bytes) -> Toxic:
        """``POST /proxies/{p}/toxics``: names are unique across both directions."""
        proxy = self.get(proxy_name)
        toxic = parse_new_toxic(body, lambda name: proxy.find_toxic(name) is not None)
        proxy.add_toxic(toxic)
        return toxic

    async def update_toxic(self, proxy_name: str, toxic_name: str, body: bytes) -> Toxic:
        """``POST/PATCH /proxies/{p}/toxics/{t}``: only ``attributes`` (merged) and ``toxicity`` change."""
        proxy, toxic = self.get_toxic(proxy_name, toxic_name)
        attributes, toxicity = parse_toxic_update(toxic, body)
        await proxy.update_toxic(toxic, attributes, toxicity)
        return toxic

    async def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        """``DELETE /proxies/{p}/toxics/{t}``."""
        proxy, toxic = self.get_toxic(proxy_name, toxic_name)
        await proxy.remove_toxic(toxic)
