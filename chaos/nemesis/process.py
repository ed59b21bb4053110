"""Process faults: SIGKILL (restarted when the window ends), SIGSTOP/SIGCONT, restart."""

from __future__ import annotations

import asyncio
import signal

from saga_harness.chaos.schedule import FaultWindow
from saga_harness.sut import ProcessControl


class ProcessFaults:
    def __init__(self, sut: ProcessControl) -> None:
        self.sut = sut

    async def apply(self, w: FaultWindow) -> None:
        if w.kind == "kill":
            self.sut.kill(w.target, signal.SIGKILL)
        elif w.kind == "pause":
            self.sut.kill(w.target, signal.SIGSTOP)
        elif w.kind == "restart":
            await asyncio.to_thread(self.sut.restart, w.target)

    async def heal(self, w: FaultWindow) -> None:
        if w.kind == "kill":
            await asyncio.to_thread(self.sut.restart, w.target)
        elif w.kind == "pause":
            self.sut.kill(w.target, signal.SIGCONT)
