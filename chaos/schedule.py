"""The fault schedule: pure, seeded data — the same seed gives the same windows."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from saga_harness.chaos.scenario import DELIVERY_FAULTS, HTTP_FAULTS, LINK_FAULTS, PROCESS_FAULTS, Fault, Scenario
from saga_harness.errors import ScenarioError
from saga_harness.sut import LinkRouting, Needs, ProcessControl, SystemUnderTest


@dataclass(frozen=True)
class FaultWindow:
    id: str
    kind: str
    target: str  # a link name, a process name, or "<component>:<queue>"
    start_s: float
    end_s: float
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "start_s": self.start_s,
            "end_s": self.end_s,
            **self.params,
        }


def on_link(kind: str) -> bool:
    """Whether a fault of ``kind`` sits on a link (a TCP toxic or an HTTP fault)."""
    return kind in LINK_FAULTS or kind in HTTP_FAULTS


def http_params(f: Fault) -> dict[str, Any]:
    """An HTTP fault's rule: which calls it hits and how (the HTTP fault proxy's terms)."""
    return {
        "action": HTTP_FAULTS[f.kind],
        "method": f.method,
        "path": f.path,
        "nth": list(f.nth),
        "first": f.first,
        "probability": f.probability,
        "status": f.status,
        "delay_ms": round(f.delay_s * 1000),
        "lose": f.lose,
        "body_fraction": f.body_fraction,
        "duplicate_after_answer": f.after_answer,
        # keyed on the call, not the clock: with no duration it lasts until the faults are healed
        "until_healed": f.duration == 0,
    }


def _window(i: int, f: Fault) -> FaultWindow:
    if f.kind in HTTP_FAULTS:
        target, params = str(f.link), http_params(f)
    elif f.kind in LINK_FAULTS:
        target = str(f.link)
        params: dict[str, Any] = {"stream": f.stream, "toxicity": f.toxicity, "attributes": dict(f.attributes)}
    elif f.kind in PROCESS_FAULTS:
        target, params = str(f.process), {}
    else:
        target = f"{f.target}:{f.queue}"
        params = {"copies": f.copies, "delay_s": f.delay_s, "probability": f.probability}
        if f.duration == 0 and f.kind != "redeliver":  # like an HTTP fault: no duration, the whole run
            params["until_healed"] = True
    return FaultWindow(f"f{i}-{f.kind}", f.kind, target, f.at, f.at + f.duration, params)


DEFAULT_ATTRIBUTES = {
    "latency": {"latency": 200, "jitter": 50},
    "bandwidth": {"rate": 10},
    "slow_close": {"delay": 500},
    "timeout": {"timeout": 1000},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 64, "size_variation": 16, "delay": 1000},
    "limit_data": {"bytes": 64},
    "cut": {},
}


def build(
    scenario: Scenario,
    seed: int,
    links: list[str] | None,
    processes: list[str],
    services: list[str] | None = None,
) -> list[FaultWindow]:
    """Every fault window of ``scenario`` for this ``seed``, checked against the SUT's names.

    ``links``: the links a proxy can sit on (None: the SUT routes none — :func:`needs` then says
    so); ``processes``: the processes random faults may draw from (the ones the harness owns);
    ``services``: every name a process or delivery fault may name (default: ``processes``).
    Whether the SUT can act on each window is :func:`needs`' to say, not this function's.
    """
    known = services if services is not None else processes
    windows = [_window(i, f) for i, f in enumerate(scenario.faults)]
    if scenario.random is not None:
        r = scenario.random
        rng = random.Random(seed)
        pool_links = r.links or links or []
        pool_procs = r.processes or processes
        for i in range(r.count):
            kind = rng.choice(r.kinds)
            start = round(rng.uniform(0, r.window), 3)
            dur = round(rng.uniform(0.5, r.max_duration), 3)
            if on_link(kind):
                if not pool_links:
                    raise ScenarioError(
                        f"scenario {scenario.name!r} draws {kind} faults on links, and this SUT has no link a "
                        f"proxy can sit on; list them under random.links or pick a scenario without link faults"
                    )
                target = rng.choice(pool_links)
                if kind in HTTP_FAULTS:  # keyed on the call, not the clock: the Nth call on the link, from the start
                    nth = rng.randint(1, 8)
                    params: dict[str, Any] = http_params(Fault(kind=kind, link=target, nth=[nth], delay_s=0.5))
                    start, dur = 0.0, 0.0
                else:
                    params = {
                        "stream": rng.choice(["upstream", "downstream"]),
                        "toxicity": 1.0,
                        "attributes": dict(DEFAULT_ATTRIBUTES[kind]),
                    }
            elif kind in PROCESS_FAULTS:
                if not pool_procs:
                    raise ScenarioError(
                        f"scenario {scenario.name!r} draws {kind} faults on processes, and the harness owns none "
                        f"of this SUT's; list them under random.processes or pick a scenario without process faults"
                    )
                target, params = rng.choice(pool_procs), {}
            else:
                target, params = f"{rng.choice(r.targets)}:*", {"copies": 1, "delay_s": 0.3, "probability": 0.5}
            windows.append(FaultWindow(f"r{i}-{kind}", kind, target, start, start + dur, params))
    for w in windows:
        if on_link(w.kind) and links is not None and w.target not in links:
            raise ScenarioError(
                f"scenario {scenario.name!r}: fault {w.id} names link {w.target!r}, which this SUT "
                f"does not have; links: {', '.join(sorted(links))}"
            )
        if w.kind in PROCESS_FAULTS and w.target not in known:
            raise ScenarioError(
                f"scenario {scenario.name!r}: fault {w.id} names process {w.target!r}; "
                f"processes: {', '.join(sorted(known))}"
            )
        if w.kind in DELIVERY_FAULTS and w.target.split(":")[0] not in known:
            raise ScenarioError(
                f"scenario {scenario.name!r}: fault {w.id} targets {w.target!r}; processes: {', '.join(sorted(known))}"
            )
    for w in windows:
        if w.kind in HTTP_FAULTS:  # which calls a probability picks follows the run's seed
            w.params["seed"] = seed
    return sorted(windows, key=lambda w: (w.start_s, w.id))


def for_sut(scenario: Scenario, seed: int, sut: SystemUnderTest) -> list[FaultWindow]:
    """:func:`build` with the names ``sut`` declares (nothing is started)."""
    links = [link.name for link in sut.links()] if isinstance(sut, LinkRouting) else None
    processes = sut.processes() if isinstance(sut, ProcessControl) else []
    return build(scenario, seed, links, processes, list(sut.services()))


def needs(windows: list[FaultWindow]) -> Needs:
    """What a SUT must be able to do for these windows (checked by :func:`saga_harness.sut.require`)."""
    return Needs(
        processes=frozenset(w.target for w in windows if w.kind in PROCESS_FAULTS),
        links=frozenset(w.target for w in windows if on_link(w.kind)),
        deliveries=frozenset(w.target.split(":")[0] for w in windows if w.kind in DELIVERY_FAULTS),
    )
