"""Exploration: a systematic search of a saga system's fault space, one fault at one call at a time.

Hand-written scenarios find a bug only when a fault happens to land at the right moment. Exploration
(after service-level fault injection, Filibuster, SoCC 2021) searches instead:

1. **Learn.** A clean run with every link behind the HTTP fault proxy records the calls the sagas make
   (``call`` records in the history): per link, method and *path pattern* (the path with its ids
   replaced by ``*``), in the order first seen, and how often one saga makes each. It is also the
   baseline: a system that fails with no fault at all is reported as such.
2. **Explore.** For each learned call × each fault kind — an error answered before the call takes
   effect (``http_error``), the answer lost after it took effect (``lose_answer``), the request sent
   twice (``duplicate_request``), and, where the SUT has delivery hooks, every push of a component
   delivered twice (``duplicate``) — a run with exactly that fault at the first such call, judged by
   every checker. ``http_error_always`` (asked for by name) fails every such call, retries included, so
   the step itself fails and the saga compensates. A cell is *hit* when the proxy gave the fault to a
   call (else the workload never made that call in that run: ``not hit``).
3. **Prune.** A saga that makes the same call several times (a pattern that repeats) is explored once
   per pattern and fault (its later occurrences are equivalent points: the same call, the same fault,
   the same behaviour expected); the unpruned count is reported beside the runs used. ``max_runs`` and
   ``time_s`` bound the search (the order: the calls as learned, faults in the order given).

Every cell that fails leaves its run directory with a counterexample (``saga-harness replay``). The
result, a call × fault matrix, is :class:`Exploration` (``explore.json``).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from saga_harness.adapters import load_sut
from saga_harness.chaos.run import execute_scenario
from saga_harness.chaos.scenario import HTTP_FAULTS, Fault, Scenario, Workload
from saga_harness.counterexample import violated_keys
from saga_harness.errors import ScenarioError
from saga_harness.history import read_history
from saga_harness.progress import Listener, ignore
from saga_harness.run import RunResult
from saga_harness.sut import DeliveryHooks

HTTP_KINDS = ("http_error", "lose_answer", "duplicate_request")
DELIVERY_KIND = "duplicate"
ALWAYS = "http_error_always"  # every such call fails, retries too: the step itself fails (compensation follows)
FAULT_CHOICES = (*HTTP_KINDS, "delay_answer", "cut_body", ALWAYS, DELIVERY_KIND)
DELIVERY_LINK = "deliveries"  # the pseudo-link of a component's pushes, in the matrix

# A path segment that is an id: digits, a UUID or a long hex string, or a token with digits in it.
_ID = re.compile(r"^(\d+|[0-9a-fA-F-]{8,}|[A-Za-z]+[_-][A-Za-z0-9_-]*\d[A-Za-z0-9_-]*)$")


def path_pattern(path: str) -> str:
    """``path`` with its id-like segments replaced by ``*`` (``/sagas/3f2a…/status`` → ``/sagas/*/status``)."""
    return "/".join("*" if seg and _ID.match(seg) else seg for seg in path.split("/"))


@dataclass(frozen=True)
class Call:
    """A call the sagas make: on ``link``, ``method`` ``pattern``; ``per_saga``: how often one saga does."""

    link: str
    method: str
    pattern: str
    seen: int
    per_saga: float

    @property
    def name(self) -> str:
        return f"{self.method} {self.pattern}"


@dataclass(frozen=True)
class Cell:
    """One point explored: a fault at a call, and what the run showed."""

    link: str
    call: str  # "METHOD pattern", or the component for delivery faults
    fault: str
    verdict: str  # ok | violated | inconclusive | error | not run
    hit: bool | None = None  # did the fault reach a call (None: not knowable, a delivery fault)
    findings: tuple[str, ...] = ()
    run_dir: str | None = None
    seconds: float = 0.0
    error: str | None = None


@dataclass
class Exploration:
    """The call × fault matrix of one exploration."""

    sut: str
    seed: int
    faults: list[str]
    sagas: int
    baseline: Cell | None = None
    calls: list[Call] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    unpruned: int = 0  # points before pruning: every occurrence of every call in a saga × every fault
    planned: int = 0  # points after pruning
    skipped: int = 0  # planned points not run (the budget: max_runs, time)
    seconds: float = 0.0

    @property
    def violated(self) -> list[Cell]:
        return [c for c in self.cells if c.verdict == "violated"]

    @property
    def runs(self) -> int:
        return len(self.cells) + (1 if self.baseline is not None else 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "sut": self.sut,
            "seed": self.seed,
            "faults": self.faults,
            "sagas": self.sagas,
            "runs": self.runs,
            "unpruned": self.unpruned,
            "planned": self.planned,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 1),
            "violated": len(self.violated),
            "baseline": asdict(self.baseline) if self.baseline else None,
            "calls": [asdict(c) for c in self.calls],
            "cells": [asdict(c) for c in self.cells],
        }

    def write(self, out: Path) -> Path:
        path = out / "explore.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


@dataclass(frozen=True)
class Target:
    """Which SUT to explore and how (the options every run shares)."""

    sut: str | None = None
    config: Path | None = None
    bugs: str | None = None
    database_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


def learn(history: Sequence[Mapping[str, Any]], sagas: int) -> list[Call]:
    """The calls the sagas of a learning run made, in the order first seen (``sagas``: how many it ran).

    Only the calls made while the sagas ran — from the ``workload-start`` phase to convergence — count:
    before it the harness sets up what the workload uses (users, stock) and reads the baseline, after it
    it reads the final snapshots. Faulting those would test the harness's own set-up, not the sagas."""
    begin, end = float("-inf"), float("inf")
    for line in history:
        if line.get("type") == "phase":
            if line.get("name") == "workload-start" and begin == float("-inf"):
                begin = float(line.get("mono") or 0.0)
            elif line.get("name") in ("converged", "deadline-passed"):
                end = float(line.get("mono") or 0.0)
    order: dict[tuple[str, str, str], int] = {}
    # The proxy's calls are written at the end of the run, link by link: their own clock orders them.
    calls = sorted(
        (x for x in history if x.get("type") == "call" and begin <= float(x.get("mono_request") or 0.0) <= end),
        key=lambda x: x.get("mono_request") or 0.0,
    )
    for line in calls:
        key = (str(line["link"]), str(line["method"]).upper(), path_pattern(str(line["path"])))
        order[key] = order.get(key, 0) + 1
    return [Call(link, method, pattern, n, round(n / max(1, sagas), 2)) for (link, method, pattern), n in order.items()]


def _scenario(
    name: str, sagas: int, faults: list[Fault], deadline_s: float, record: bool, mix: Mapping[str, float]
) -> Scenario:
    return Scenario(
        name=name,
        description="exploration: one fault at one call",
        workload=Workload(sagas=sagas, concurrency=max(1, min(sagas, 4)), mix=dict(mix)),
        faults=faults,
        record_calls=["*"] if record else [],
        deadline=deadline_s,
    )


def _cell(link: str, call: str, fault: str, result: RunResult, seconds: float, rule: str | None) -> Cell:
    verdicts = result.verdicts
    hit: bool | None = None
    if rule is not None:
        hit = any(x.get("type") == "call" and x.get("rule") == rule for x in read_history(result.run_dir))
    return Cell(
        link,
        call,
        fault,
        verdicts.status,
        hit,
        tuple(violated_keys(verdicts.findings)),
        str(result.run_dir),
        round(seconds, 1),
    )


def explore(
    target: Target,
    out: Path,
    *,
    faults: Sequence[str] = HTTP_KINDS,
    links: Sequence[str] = (),
    sagas: int = 6,
    mix: Mapping[str, float] | None = None,
    seed: int = 0,
    max_runs: int | None = None,
    time_s: float | None = None,
    deadline_s: float = 60.0,
    command: str = "",
    listener: Listener = ignore,
    on_cell: Callable[[Cell, int, int], None] = lambda cell, i, n: None,
) -> Exploration:
    """Learn the calls, then run one fault at one call for each point (see the module's docstring);
    every run's directory is under ``out``; the matrix is written to ``out/explore.json``. ``mix``: the
    triggers' weights (default: the SUT's own) — only the triggers that complete (``ok=1``) make every
    failure and compensation one that a fault caused."""
    unknown = [f for f in faults if f not in FAULT_CHOICES]
    if unknown:
        raise ScenarioError(f"explore: unknown fault kind(s) {unknown}; kinds: {', '.join(FAULT_CHOICES)}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    common: dict[str, Any] = {
        "sut": target.sut,
        "config": target.config,
        "bugs": target.bugs,
        "database_url": target.database_url,
        "env": dict(target.env),
        "command": command,
        "listener": listener,
    }

    t0 = time.monotonic()
    learning = execute_scenario(
        _scenario("explore-learn", sagas, [], deadline_s, True, mix or {}), seed=seed, out=out / "learn", **common
    )
    lines = list(read_history(learning.run_dir))
    calls = learn(lines, sagas)
    if links:
        calls = [c for c in calls if c.link in links]
    sut_name = learning.verdicts.run.sut if learning.verdicts.run is not None else (target.sut or "")
    result = Exploration(sut=sut_name or "", seed=seed, faults=list(faults), sagas=sagas, calls=calls)
    result.baseline = _cell("", "no fault", "none", learning, time.monotonic() - t0, None)

    points: list[tuple[str, str, str, Fault | None]] = []  # (link, call, fault kind, the fault)
    http_kinds = [f for f in faults if f in HTTP_FAULTS or f == ALWAYS]
    for call in calls:
        for kind in http_kinds:
            where = {"link": call.link, "method": call.method, "path": call.pattern}
            if kind == ALWAYS:
                fault = Fault(kind="http_error", **where)  # every matching call, the whole run
            else:
                fault = Fault(kind=kind, nth=[1], delay_s=2.0, **where)
            points.append((call.link, call.name, kind, fault))
    result.unpruned = sum(max(1, round(c.per_saga)) for c in calls) * len(http_kinds)
    if DELIVERY_KIND in faults:
        components = _delivery_components(target)
        for component in components:
            fault = Fault(kind=DELIVERY_KIND, target=component, copies=1)  # the whole run
            points.append((DELIVERY_LINK, component, DELIVERY_KIND, fault))
        result.unpruned += len(components)
    result.planned = len(points)

    for i, (link, call_name, kind, fault) in enumerate(points):
        over_runs = max_runs is not None and i >= max_runs
        over_time = time_s is not None and time.monotonic() - started >= time_s
        if over_runs or over_time:
            result.skipped = len(points) - i
            break
        assert fault is not None
        t0 = time.monotonic()
        name = f"explore-{i + 1:03d}-{kind.replace('_', '-')}"
        try:
            run = execute_scenario(
                _scenario(name, sagas, [fault], deadline_s, False, mix or {}), seed=seed, out=out / name, **common
            )
            rule = f"f0-{fault.kind}" if fault.kind in HTTP_FAULTS else None
            cell = _cell(link, call_name, kind, run, time.monotonic() - t0, rule)
        except ScenarioError as exc:
            cell = Cell(link, call_name, kind, "error", error=str(exc), seconds=round(time.monotonic() - t0, 1))
        result.cells.append(cell)
        on_cell(cell, i, len(points))
    result.seconds = time.monotonic() - started
    result.write(out)
    return result


def _delivery_components(target: Target) -> list[str]:
    """The components whose pushes the SUT can duplicate (its delivery hooks); nothing is started."""
    with tempfile.TemporaryDirectory() as tmp:
        sut = load_sut(Path(tmp) / "sut", sut=target.sut, config=target.config, database_url=target.database_url)
        return list(sut.delivery_components()) if isinstance(sut, DeliveryHooks) else []
