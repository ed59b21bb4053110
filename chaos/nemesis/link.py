"""Link faults through Toxiproxy (the real server or the embedded one), via toxiproxy-python."""

from __future__ import annotations

import asyncio
from typing import Any

from saga_harness.chaos.schedule import DEFAULT_ATTRIBUTES, FaultWindow


class LinkFaults:
    def __init__(self, proxies: dict[str, Any]) -> None:
        self.proxies = proxies  # link name -> toxiproxy.proxy.Proxy

    async def apply(self, w: FaultWindow) -> None:
        proxy = self.proxies[w.target]
        if w.kind == "cut":
            await asyncio.to_thread(proxy.disable)
            return
        # Toxiproxy's attributes are int64: 300.0 is refused with a 400.
        attributes = {
            k: int(v) for k, v in {**DEFAULT_ATTRIBUTES.get(w.kind, {}), **w.params.get("attributes", {})}.items()
        }
        await asyncio.to_thread(
            proxy.add_toxic,
            name=w.id,
            type=w.kind,
            stream=w.params.get("stream", "downstream"),
            toxicity=w.params.get("toxicity", 1.0),
            attributes=attributes,
        )

    async def heal(self, w: FaultWindow) -> None:
        proxy = self.proxies[w.target]
        if w.kind == "cut":
            await asyncio.to_thread(proxy.enable)
        else:
            await asyncio.to_thread(proxy.destroy_toxic, w.id)
