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
from saga_harness.chaos.nemesis.http import HttpLinkFaults
from saga_harness.chaos.nemesis.link import LinkFaults
from saga_harness.chaos.nemesis.process import ProcessFaults
from saga_harness.chaos.scenario import DELIVERY_FAULTS, HTTP_FAULTS, LINK_FAULTS, PROCESS_FAULTS
from saga_harness.chaos.schedule import FaultWindow
from saga_harness.chaos.wiring import Proxies
from saga_harness.errors import SutError
from saga_harness.history import FaultChange, HistoryWriter, Phase
from saga_harness.progress import FaultCounts
from saga_harness.sut import DeliveryHooks, ProcessControl, SystemUnderTest

log = logging.getLogger(__name__)
# What a fault's target does when another fault has paused or killed it.
_UNREACHABLE = (aiohttp.ClientError, TimeoutError, OSError, SutError)


class Nemesis:
    def __init__(
        self,
        windows: list[FaultWindow],
        history: HistoryWriter,
        *,
        links: LinkFaults | None,
        processes: ProcessFaults | None,
        deliveries: DeliveryFaults | None,
        http: HttpLinkFaults | None = None,
    ) -> None:
        self.windows = windows
        self.history = history
        self.links = links
        self.http = http
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
        proxies: Proxies | None = None,
    ) -> Nemesis:
        """A nemesis acting on ``sut``: its processes, its delivery hooks, and ``proxies`` on its links."""
        proxies = proxies or Proxies()
        return cls(
            windows,
            history,
            links=LinkFaults(proxies.tcp),
            processes=ProcessFaults(sut) if isinstance(sut, ProcessControl) else None,
            deliveries=DeliveryFaults(sut, http) if isinstance(sut, DeliveryHooks) else None,
            http=HttpLinkFaults(proxies.http_client, proxies.http) if proxies.http else None,
        )

    def counts(self, elapsed_s: float) -> FaultCounts:
        """The fault windows so far, as a progress event."""
        active = tuple(f"{w.kind} {w.target}" for w in self.active.values())
        return FaultCounts(elapsed_s, active=active, done=self.done, total=len(self.windows))

    def _impl(self, w: FaultWindow) -> Any:
        impl: Any = None
        if w.kind in LINK_FAULTS:
            impl = self.links
        elif w.kind in HTTP_FAULTS:
            impl = self.http
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
        # an HTTP fault keyed on calls alone lasts until the faults are healed (no end of its own)
        ends = [(w.end_s, 1, w) for w in self.windows if not w.params.get("until_healed")]
        events = sorted([(w.start_s, 0, w) for w in self.windows] + ends, key=lambda e: (e[0], e[1]))
        for at, is_end, w in events:
            delay = t0 + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if is_end:
                await self.heal(w)
            elif w.id not in self.active:  # those due at 0 may be in place already (apply_initial)
                await self.try_apply(w)

    async def apply_initial(self) -> None:
        """Start the windows due at 0 now, before the workload's first request: a fault keyed on the
        first call must be in place when that call is made."""
        for w in sorted(self.windows, key=lambda w: w.id):
            if w.start_s <= 0 and w.id not in self.active:
                await self.try_apply(w)

    async def try_apply(self, w: FaultWindow) -> bool:
        """Start one fault window now, unless its target cannot be reached — paused or killed by another
        fault of the schedule (a soak draws such overlaps): then the window is recorded as not applied
        (a ``fault-not-applied`` phase with the error) and the schedule goes on."""
        try:
            await self.apply(w)
            return True
        except _UNREACHABLE as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            log.warning("fault %s (%s %s) not applied: %s", w.id, w.kind, w.target, error)
            self.history.append(Phase("fault-not-applied", {**w.describe(), "error": error}), process="nemesis")
            return False

    async def apply(self, w: FaultWindow) -> None:
        """Start one fault window now."""
        await self._impl(w).apply(w)
        self.active[w.id] = w
        self.history.append(FaultChange("start", w.describe()), process="nemesis")

    async def heal(self, w: FaultWindow) -> bool:
        """End one fault window now (nothing if it is not active). A window whose target cannot be
        reached — paused or killed by another fault — stays active, recorded as deferred
        (``fault-heal-deferred``), and is healed with the rest once the process faults are (:meth:`heal_all`);
        False then."""
        if w.id not in self.active:
            return True
        try:
            await self._impl(w).heal(w)
        except _UNREACHABLE as exc:
            detail = {**w.describe(), "error": f"{type(exc).__name__}: {exc}".rstrip(": ")}
            self.history.append(Phase("fault-heal-deferred", detail), process="nemesis")
            return False
        except BaseException:
            self._stopped(w)
            raise
        self._stopped(w)
        return True

    def _stopped(self, w: FaultWindow) -> None:
        self.active.pop(w.id, None)
        self.done += 1
        self.history.append(FaultChange("stop", w.describe()), process="nemesis")

    async def heal_all(self, keep_call_keyed: bool = False) -> None:
        """Heal every active window (``keep_call_keyed``: except HTTP faults keyed on calls alone, which
        last while the run converges): the process faults first (a paused or killed component must be
        back before its delivery rules can be cleared), then the rest, then once more what could not be."""
        for attempt in range(3):
            windows = sorted(self.active.values(), key=lambda w: w.kind not in PROCESS_FAULTS)
            pending = [w for w in windows if not (keep_call_keyed and w.params.get("until_healed"))]
            if not pending:
                return
            if attempt:
                await asyncio.sleep(1.0)  # a restarted process takes a moment to answer
            for w in pending:
                try:
                    healed = await self.heal(w)
                except Exception:  # keep healing the rest
                    log.exception("could not heal %s", w.id)
                    continue
                if not healed and attempt == 2:
                    log.warning(
                        "fault %s (%s %s) could not be healed: its target does not answer", w.id, w.kind, w.target
                    )
                    self._stopped(w)

    async def record_calls(self) -> int:
        """Write the calls the HTTP fault proxy saw on the run's links into the history; how many."""
        return await self.http.record_calls(self.history) if self.http is not None else 0
