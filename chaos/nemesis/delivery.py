"""Delivery faults: duplicate, delay, drop and redeliver the SUT's pushes, through the
hooks a SUT exposes (the reference system's task queue and bus admin API)."""

from __future__ import annotations

import aiohttp
from saga_harness.chaos.schedule import FaultWindow
from saga_harness.sut import DeliveryHooks


class DeliveryFaults:
    def __init__(self, sut: DeliveryHooks, http: aiohttp.ClientSession) -> None:
        self.sut = sut
        self.http = http
        self.ids: dict[str, tuple[str, str]] = {}

    async def apply(self, w: FaultWindow) -> None:
        component, _, queue = w.target.partition(":")
        if w.kind == "redeliver":
            await self.sut.redeliver(self.http, component, queue or "*", since_s=60.0)
            return
        rule: dict[str, object] = {"target": queue or "*", "probability": w.params.get("probability", 1.0)}
        if w.kind == "duplicate":
            rule["duplicate"] = max(1, int(w.params.get("copies", 1)))
        elif w.kind == "delay":
            rule["delay_s"] = w.params.get("delay_s", 0.5) or 0.5
        elif w.kind == "drop":
            rule["drop"] = True
        self.ids[w.id] = (component, await self.sut.delivery_fault(self.http, component, rule))

    async def heal(self, w: FaultWindow) -> None:
        if w.id in self.ids:
            component, rule_id = self.ids.pop(w.id)
            await self.sut.clear_delivery_fault(self.http, component, rule_id)
