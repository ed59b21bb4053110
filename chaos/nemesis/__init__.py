"""The nemesis: applies a fault schedule on time, records every fault's start and
stop in the history, and heals whatever is active — on success, error or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from saga_harness.chaos.nemesis.delivery import DeliveryFaults
from saga_harness.chaos.nemesis.link import LinkFaults
from saga_harness.chaos.nemesis.process import ProcessFaults
from saga_harness.chaos.scenario import DELIVERY_FAULTS, LINK_FAULTS, PROCESS_FAULTS
from saga_harness.chaos.schedule import FaultWindow

log = logging.getLogger(__name__)


class Nemesis:
    def __init__(
        self,
        windows: list[FaultWindow],
        record: Callable[..., None],
        *,
        links: LinkFaults | None,
        processes: ProcessFaults,
        deliveries: DeliveryFaults | None,
    ) -> None:
        self.windows = windows
        self.record = record
        self.links = links
        self.processes = processes
        self.deliveries = deliveries
        self.active: dict[str, FaultWindow] = {}
        self.done = 0

    @classmethod
    def for_sut(
        cls,
        windows: list[FaultWindow],
        record: Callable[..., None],
        sut: Any,
        http: Any,
        proxies: dict[str, Any] | None = None,
    ) -> Nemesis:
        """A nemesis acting on ``sut``: its processes, its delivery hooks, and ``proxies`` on its links."""
        return cls(
            windows,
            record,
            links=LinkFaults(proxies or {}),
            processes=ProcessFaults(sut),
            deliveries=DeliveryFaults(sut, http),
        )

    def _impl(self, w: FaultWindow) -> Any:
        if w.kind in LINK_FAULTS:
            return self.links
        if w.kind in PROCESS_FAULTS:
            return self.processes
        if w.kind in DELIVERY_FAULTS:
            return self.deliveries
        raise ValueError(w.kind)

    async def run(self) -> None:
        """Apply every window on schedule (relative to now); return when all have ended."""
        t0 = time.monotonic()
        events = sorted(
            [(w.start_s, 0, w) for w in self.windows] + [(w.end_s, 1, w) for w in self.windows],
            key=lambda e: (e[0], e[1]),
        )
        for at, is_end, w in events:
            delay = t0 + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if is_end:
                await self._heal(w)
            else:
                await self._apply(w)

    async def _apply(self, w: FaultWindow) -> None:
        await self._impl(w).apply(w)
        self.active[w.id] = w
        self.record("fault", process="nemesis", phase="start", fault=w.describe())

    async def _heal(self, w: FaultWindow) -> None:
        if w.id not in self.active:
            return
        try:
            await self._impl(w).heal(w)
        finally:
            self.active.pop(w.id, None)
            self.done += 1
            self.record("fault", process="nemesis", phase="stop", fault=w.describe())

    async def heal_all(self) -> None:
        for w in list(self.active.values()):
            try:
                await self._heal(w)
            except Exception:  # keep healing the rest
                log.exception("could not heal %s", w.id)
