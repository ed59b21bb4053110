"""The nemesis: applies a fault schedule on time, records every fault's start and
stop in the history, and heals whatever is active — on success, error or Ctrl-C.

It acts through the abilities the SUT declares: its processes
(:class:`~saga_harness.sut.ProcessControl`), its delivery hooks
(:class:`~saga_harness.sut.DeliveryHooks`) and the Toxiproxy proxies on its links.
A run states what it needs before it starts (:func:`saga_harness.chaos.schedule.needs`,
:func:`saga_harness.sut.require`), so a missing ability here is a bug, not a user's mistake.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
from saga_harness.chaos.nemesis.delivery import DeliveryFaults
from saga_harness.chaos.nemesis.link import LinkFaults
from saga_harness.chaos.nemesis.process import ProcessFaults
from saga_harness.chaos.scenario import DELIVERY_FAULTS, LINK_FAULTS, PROCESS_FAULTS
from saga_harness.chaos.schedule import FaultWindow
from saga_harness.history import FaultChange, HistoryWriter
from saga_harness.progress import FaultCounts
from saga_harness.sut import DeliveryHooks, ProcessControl, SystemUnderTest

log = logging.getLogger(__name__)


class Nemesis:
    def __init__(
        self,
        windows: list[FaultWindow],
        history: HistoryWriter,
        *,
        links: LinkFaults | None,
        processes: ProcessFaults | None,
        deliveries: DeliveryFaults | None,
    ) -> None:
        self.windows = windows
        self.history = history
        self.links = links
        self.processes = processes
        self.deliveries = deliveries
        self.active: dict[str, FaultWindow] = {}
        self.done = 0

    @classmethod
    def for_sut(
        cls,
        windows: list[FaultWindow],
        history: HistoryWriter,
        sut: SystemUnderTest,
        http: aiohttp.ClientSession,
        proxies: dict[str, Any] | None = None,
    ) -> Nemesis:
        """A nemesis acting on ``sut``: its processes, its delivery hooks, and ``proxies`` on its links."""
        return cls(
            windows,
            history,
            links=LinkFaults(proxies or {}),
            processes=ProcessFaults(sut) if isinstance(sut, ProcessControl) else None,
            deliveries=DeliveryFaults(sut, http) if isinstance(sut, DeliveryHooks) else None,
        )

    def counts(self, elapsed_s: float) -> FaultCounts:
        """The fault windows so far, as a progress event."""
        active = tuple(f"{w.kind} {w.target}" for w in self.active.values())
        return FaultCounts(elapsed_s, active=active, done=self.done, total=len(self.windows))

    def _impl(self, w: FaultWindow) -> Any:
        impl: Any = None
        if w.kind in LINK_FAULTS:
            impl = self.links
        elif w.kind in PROCESS_FAULTS:
            impl = self.processes
        elif w.kind in DELIVERY_FAULTS:
            impl = self.deliveries
        if impl is None:
            raise RuntimeError(
                f"fault {w.id} ({w.kind} {w.target}): the SUT cannot do it; require() should have said so"
            )
        return impl

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
                await self.heal(w)
            else:
                await self.apply(w)

    async def apply(self, w: FaultWindow) -> None:
        """Start one fault window now."""
        await self._impl(w).apply(w)
        self.active[w.id] = w
        self.history.append(FaultChange("start", w.describe()), process="nemesis")

    async def heal(self, w: FaultWindow) -> None:
        """End one fault window now (nothing if it is not active)."""
        if w.id not in self.active:
            return
        try:
            await self._impl(w).heal(w)
        finally:
            self.active.pop(w.id, None)
            self.done += 1
            self.history.append(FaultChange("stop", w.describe()), process="nemesis")

    async def heal_all(self) -> None:
        for w in list(self.active.values()):
            try:
                await self.heal(w)
            except Exception:  # keep healing the rest
                log.exception("could not heal %s", w.id)
