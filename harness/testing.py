"""Hand-built histories, for testing checkers (ours and yours) without a SUT.

    b = HistoryBuilder()
    s = b.saga("s1", trigger="ok")            # invoke + ok for a new saga
    b.event("com.shop.order.created", saga_id="s1", total_cents=100)
    b.status("s1", "COMPLETED", "completed")
    b.snapshot("order", {"orders": [...]})
    verdicts = run_checks(b.entries, model)

A system without events is built the same way: ``b.step("checkout", "s1", body="Checkout
successful")`` (a start step's request and its answer, text or JSON), ``b.read("orders",
{"s1": {"paid": True}})`` (a per-saga read), ``b.status("s1", "PAID", failed_step=None)``
(a status with recorded fields), and ``with b.faulted("kill", "payment"): …`` (a fault window).

How the observation ended, for the verdicts that depend on it: ``b.wait(15)`` then
``b.phase("deadline-passed")`` (the harness stopped polling: an unfinished saga quiet
for longer than ``[model.convergence] quiet_s`` is stuck), ``b.settled(drained=False,
events_last_s=480)`` (the evidence was still arriving), ``b.machine(loop_lag_p99_ms=900)``
(a starved second).

Every line is built from its record class (:mod:`saga_harness.history.records`),
exactly as :class:`~saga_harness.history.HistoryWriter` writes it, with ``ref``
set to ``"built:<n>"`` so violations can cite it. :meth:`HistoryBuilder.write`
stores the history in a run directory, for tests of what reads one.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from saga_harness.checkers import Verdicts, run_checks
from saga_harness.history.log import shard_path
from saga_harness.history.records import (
    CapturedEvent,
    Completion,
    FaultChange,
    Invoke,
    MachineLoad,
    Meta,
    Phase,
    Record,
    Snapshot,
    StatusSeen,
    to_line,
)
from saga_harness.model import SagaModel

REF_PREFIX = "built"
MISSING: Any = object()


class HistoryBuilder:
    """Builds a history line by line; each call advances a fake clock by 10 ms."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.entries: list[dict[str, Any]] = []
        self._clock = start
        self._ids = itertools.count(1)

    def add(self, record: Record, process: str = "test") -> dict[str, Any]:
        """Append any record, as written by ``process``; returns its line."""
        self._clock += 0.01
        line = to_line(record, mono=self._clock, wall=self._clock, process=process)
        line["ref"] = f"{REF_PREFIX}:{len(self.entries) + 1}"
        self.entries.append(line)
        return line

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass before the next line."""
        self._clock += seconds

    def meta(self, run_id: str = "built", **fields: Any) -> dict[str, Any]:
        """Who the run is (a :class:`~saga_harness.history.Meta`; ``fields`` as its fields)."""
        return self.add(Meta(run_id, **fields), process="runner")

    def saga(
        self,
        saga_id: str,
        trigger: str = "ok",
        key: str | None = None,
        status: int = 202,
        request: dict[str, Any] | None = None,
        step: str | None = None,
    ) -> str:
        """A client starting saga ``saga_id`` (invoke, then ok)."""
        self.answer(key or f"key-{saga_id}", saga_id, status, trigger, request, step=step)
        return saga_id

    def answer(
        self,
        key: str,
        saga_id: str | None,
        status: int = 202,
        trigger: str = "ok",
        request: dict[str, Any] | None = None,
        *,
        step: str | None = None,
        body: Any = MISSING,
    ) -> dict[str, Any]:
        """One request with ``key`` and its answer (``ok`` below 300, else ``fail``): a start or a
        resubmission. ``step``: the start step it belongs to; ``body``: the answer (JSON or text;
        default ``{"saga_id": saga_id}``). Returns the answer's line."""
        op = next(self._ids)
        self.add(Invoke("start_saga", op, key, trigger, request or {"trigger": trigger}, step), process="client")
        outcome: Literal["ok", "fail"] = "ok" if status < 300 else "fail"
        value = {"saga_id": saga_id} if body is MISSING else body
        kind = "application/json" if not isinstance(value, str) else "text/plain"
        return self.add(
            Completion(outcome, "start_saga", op, key, trigger, status, value, saga_id, step=step, content_type=kind),
            process="client",
        )

    def step(
        self,
        name: str,
        saga_id: str | None,
        body: Any = "",
        status: int = 200,
        key: str | None = None,
        trigger: str = "ok",
    ) -> dict[str, Any]:
        """A request of start step ``name`` for saga ``saga_id`` and its answer (``body``: text or
        JSON); the key defaults to the saga's, as :meth:`saga` gives it. Returns the answer's line."""
        return self.answer(key or f"key-{saga_id}", saga_id, status, trigger, step=name, body=body)

    def lost(
        self,
        key: str,
        trigger: str = "ok",
        error: str = "timed out",
        *,
        step: str | None = None,
        saga_id: str | None = None,
    ) -> None:
        """A request with ``key`` that got no answer (``info``: it may or may not have taken effect)."""
        op = next(self._ids)
        self.add(Invoke("start_saga", op, key, trigger, {"trigger": trigger}, step), process="client")
        self.add(
            Completion("info", "start_saga", op, key, trigger, error=error, saga_id=saga_id, step=step),
            process="client",
        )

    def event(
        self,
        type_: str,
        saga_id: str,
        event_id: str | None = None,
        source: str = "/test",
        time: str | None = None,
        **data: Any,
    ) -> dict[str, Any]:
        """A captured CloudEvent whose data carries ``saga_id`` and ``data``."""
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": event_id or f"ev-{next(self._ids)}",
            "source": source,
            "type": type_,
            "data": {"saga_id": saga_id, **data},
        }
        if time is not None:
            event["time"] = time
        return self.add(CapturedEvent(event), process="sink")

    def status(
        self, saga_id: str, state: Any, outcome: str | None = None, *, source: str = "status", **fields: Any
    ) -> dict[str, Any]:
        """The harness read saga ``saga_id``'s state (``outcome`` once it is terminal); ``fields``:
        the status fields recorded with it (failed_step, reason, compensations_done, …); ``source``:
        ``status`` (a read), ``event`` (announced by an event) or ``answer`` (said by a step's answer)."""
        process = "sink" if source == "event" else "client"
        return self.add(StatusSeen(saga_id, state, outcome, fields, source), process=process)

    def snapshot(self, service: str, data: Any, baseline: bool = False) -> None:
        """A service's state (``baseline``: read before the workload)."""
        self.add(Snapshot(service, data, baseline), process="runner")

    def read(self, name: str, bodies: dict[str, Any], status: int | dict[str, int] = 200) -> dict[str, Any]:
        """Per-saga read ``name``: saga id -> the body it answered (``status``: one for all, or per saga),
        stored as the runner stores it, ``Snapshot(name, [{"saga_id", "status", "body"}, …])``."""
        data = [
            {"saga_id": sid, "status": status.get(sid, 200) if isinstance(status, dict) else status, "body": body}
            for sid, body in bodies.items()
        ]
        return self.add(Snapshot(name, data), process="runner")

    def fault(self, phase: Literal["start", "stop"], fault: dict[str, Any]) -> None:
        """A fault window starts or stops (``fault`` as ``FaultWindow.describe()`` gives it)."""
        self.add(FaultChange(phase, fault), process="nemesis")

    @contextmanager
    def faulted(self, kind: str = "kill", target: str = "payment", **params: Any) -> Iterator[dict[str, Any]]:
        """A fault window around what the block builds: its start, the block, its stop."""
        fault = {"id": f"f{next(self._ids)}", "kind": kind, "target": target, **params}
        self.fault("start", fault)
        try:
            yield fault
        finally:
            self.fault("stop", fault)

    def phase(self, name: str, **detail: Any) -> None:
        """A run marker: workload-start, workload-end, converged …"""
        self.add(Phase(name, detail), process="runner")

    def settled(
        self,
        drained: bool = True,
        *,
        cap_reached: bool | None = None,
        events_last_s: float = 0.0,
        waited_s: float = 1.0,
        pending: dict[str, int] | None = None,
        **detail: Any,
    ) -> None:
        """How the evidence settled before the snapshot (the ``evidence-settled`` phase): ``drained``,
        or the wait's cap reached (by default when not drained) with ``events_last_s`` still arriving."""
        self.phase(
            "evidence-settled",
            drained=drained,
            cap_reached=(not drained) if cap_reached is None else cap_reached,
            events_last_s=events_last_s,
            waited_s=waited_s,
            pending=pending or {},
            **detail,
        )

    def machine(
        self,
        *,
        interval_s: float = 1.0,
        loop_lag_p99_ms: float = 1.0,
        loop_lag_max_ms: float | None = None,
        cpu_busy_pct: float | None = 30.0,
        sut_cpu_pct: float | None = 40.0,
        load1: float | None = 0.5,
        cores: int | None = 2,
    ) -> dict[str, Any]:
        """One of the harness's starvation samples (a :class:`~saga_harness.history.MachineLoad`, about
        one a second): its event loop's lag, the machine's CPU busy (100: every core), the SUT's CPU
        (100: one core). The clock advances by ``interval_s`` (the sample ends it)."""
        self._clock += interval_s - 0.01  # add() advances it by the other 10 ms
        lag_max = loop_lag_p99_ms if loop_lag_max_ms is None else loop_lag_max_ms
        record = MachineLoad(interval_s, loop_lag_p99_ms, lag_max, cpu_busy_pct, sut_cpu_pct, load1, None, cores)
        return self.add(record, process="monitor")

    def check(self, model: SagaModel, names: list[str] | None = None) -> Verdicts:
        """Every checker (or the ones named) over this history."""
        return run_checks(self.entries, model, names)

    def write(self, run_dir: str | Path) -> Path:
        """Store the history as ``run_dir/history.jsonl`` (a reader cites its lines ``history.jsonl:<n>``)."""
        path = shard_path(run_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for line in self.entries:
                f.write(json.dumps({k: v for k, v in line.items() if k != "ref"}, default=str) + "\n")
        return path
