"""Progress of a run, as typed events: emitted by the lifecycle and the drivers, rendered by
the front ends (the CLI's live view or plain lines, the pytest plugin, calibration).

Emitters call a :data:`Listener` with small frozen events; a renderer folds them
into a :class:`ProgressState` (pure: no clock, no I/O) and draws that. One
hierarchy, many renderers — the engine never formats text for a screen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

PHASES = ("starting", "workload", "load", "healing", "converging", "settling", "snapshot", "judging", "done")


@dataclass(frozen=True)
class ProgressEvent:
    """Base: ``elapsed_s`` is the time since the run began (the emitter's monotonic clock)."""

    elapsed_s: float


@dataclass(frozen=True)
class PhaseStarted(ProgressEvent):
    """The run entered ``phase`` (one of :data:`PHASES`, or a driver's own)."""

    phase: str


@dataclass(frozen=True)
class SagaCounts(ProgressEvent):
    """Sagas so far: planned (0 under load: open-ended), started, finished, requests without an answer."""

    planned: int
    started: int
    finished: int
    failed_requests: int = 0
    events: int = 0  # CloudEvents captured so far
    by_outcome: Mapping[str, int] = field(default_factory=dict)

    @property
    def in_flight(self) -> int:
        return max(0, self.started - self.finished)


@dataclass(frozen=True)
class FaultCounts(ProgressEvent):
    """Fault windows: the ones active now (``"kill payment"``), how many have ended, how many in all."""

    active: tuple[str, ...]
    done: int
    total: int


@dataclass(frozen=True)
class LoadCounts(ProgressEvent):
    """Locust: seconds of load so far out of ``duration_s``, with ``users`` simulated clients."""

    load_elapsed_s: float
    duration_s: float
    users: int


@dataclass(frozen=True)
class RunFinished(ProgressEvent):
    """The run is judged: ``ok`` is the verdict, ``run_dir`` where everything is."""

    run_dir: str
    ok: bool


Listener = Callable[[ProgressEvent], None]


def ignore(_event: ProgressEvent) -> None:
    """A listener that does nothing (the default)."""


@dataclass(frozen=True)
class ProgressState:
    """Everything a display shows, folded from the events so far (:meth:`apply`)."""

    elapsed_s: float = 0.0
    phase: str = "starting"
    sagas: SagaCounts | None = None
    faults: FaultCounts | None = None
    load: LoadCounts | None = None
    finished: RunFinished | None = None

    def apply(self, event: ProgressEvent) -> ProgressState:
        """The state after ``event``."""
        state = replace(self, elapsed_s=max(self.elapsed_s, event.elapsed_s))
        if isinstance(event, PhaseStarted):
            return replace(state, phase=event.phase)
        if isinstance(event, SagaCounts):
            return replace(state, sagas=event)
        if isinstance(event, FaultCounts):
            return replace(state, faults=event)
        if isinstance(event, LoadCounts):
            return replace(state, load=event)
        if isinstance(event, RunFinished):
            return replace(state, finished=event, phase="done")
        return state

    def line(self) -> str:
        """One plain line (for logs and CI): phase, sagas started / finished / in flight, faults, elapsed."""
        parts = [f"[{self.elapsed_s:6.1f}s] {self.phase}"]
        if self.sagas is not None:
            s = self.sagas
            planned = f"/{s.planned}" if s.planned else ""
            parts.append(f"sagas {s.started}{planned} started, {s.finished} finished, {s.in_flight} in flight")
            if s.failed_requests:
                parts.append(f"{s.failed_requests} requests unanswered")
            parts.append(f"{s.events} events")
        if self.load is not None:
            parts.append(f"load {self.load.load_elapsed_s:.0f}/{self.load.duration_s:.0f}s, {self.load.users} users")
        if self.faults is not None and self.faults.total:
            active = ", ".join(self.faults.active) or "none"
            parts.append(f"faults {self.faults.done}/{self.faults.total} done, active: {active}")
        return " · ".join(parts)
