"""Shrinking: a failing chaos run reduced to a minimal one that still fails the same way.

A failing run with forty random faults says little about which one mattered. Like Hypothesis shrinking
a failing example, the shrinker re-runs the scenario with less — by delta debugging (Zeller's ddmin)
over its concrete fault windows, then with fewer sagas, then with narrower windows — and keeps each
reduction that still *fails the same way*: at least one violated finding of the original run comes back
(same checker, step and cause; :func:`saga_harness.counterexample.finding_key`). Runs are real runs, so a
flaky failure may not come back: each candidate is tried once, and the budget (``max_runs``) bounds the
search. The result is an explicit scenario (no random draw): ``shrunk.yaml``, replayable as any
scenario file (``saga-harness chaos run shrunk.yaml --seed S``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from saga_harness.chaos.scenario import DELIVERY_FAULTS, HTTP_FAULTS, PROCESS_FAULTS, Fault, Scenario, Workload
from saga_harness.chaos.schedule import FaultWindow, on_link

# (faults, sagas) -> the violated finding keys of a run with them
Trial = Callable[[list[Fault], int], set[str]]

_ACTIONS = {action: kind for kind, action in HTTP_FAULTS.items()}


def fault_of(w: FaultWindow) -> Fault:
    """The explicit fault a drawn window is (the same kind, target, times and parameters)."""
    p = w.params
    base: dict[str, Any] = {"kind": w.kind, "at": w.start_s, "duration": round(w.end_s - w.start_s, 3)}
    if w.kind in HTTP_FAULTS:
        base.update(
            link=w.target,
            method=p.get("method", "*"),
            path=p.get("path", "*"),
            nth=list(p.get("nth") or []),
            first=p.get("first"),
            probability=p.get("probability", 1.0),
            status=p.get("status", 503),
            delay_s=p.get("delay_ms", 0) / 1000,
            lose=p.get("lose", "reset"),
            body_fraction=p.get("body_fraction", 0.5),
            after_answer=bool(p.get("duplicate_after_answer", False)),
        )
        if p.get("until_healed"):
            base["duration"] = 0.0
    elif on_link(w.kind):
        base.update(
            link=w.target,
            stream=p.get("stream", "downstream"),
            toxicity=p.get("toxicity", 1.0),
            attributes=dict(p.get("attributes") or {}),
        )
    elif w.kind in PROCESS_FAULTS:
        base["process"] = w.target
    elif w.kind in DELIVERY_FAULTS:
        component, _, queue = w.target.partition(":")
        base.update(
            target=component,
            queue=queue or "*",
            copies=p.get("copies", 1),
            delay_s=p.get("delay_s", 0.0),
            probability=p.get("probability", 1.0),
        )
        if p.get("until_healed"):
            base["duration"] = 0.0
    return Fault(**base)


@dataclass
class Shrunk:
    """What shrinking found: the smallest failing faults and sagas, and what it cost."""

    faults: list[Fault]
    sagas: int
    target: set[str]  # the finding keys a reduction had to keep (one of them)
    runs: int = 0
    tried: list[dict[str, Any]] = field(default_factory=list)  # each trial: faults, sagas, failed

    def scenario(self, original: Scenario) -> Scenario:
        """The minimal scenario: ``original`` with only these faults, no random draw, these sagas."""
        workload = Workload(**{**original.workload.model_dump(), "sagas": self.sagas})
        return original.model_copy(
            update={
                "name": f"{original.name}-shrunk",
                "description": f"{original.description.strip()} (shrunk: {len(self.faults)} of the faults)",
                "faults": self.faults,
                "random": None,
                "workload": workload,
            }
        )


def shrink(
    faults: Sequence[Fault], sagas: int, target: set[str], trial: Trial, max_runs: int = 24, min_sagas: int = 2
) -> Shrunk:
    """Reduce ``faults`` and ``sagas`` while ``trial`` still returns one of ``target``'s findings."""
    result = Shrunk(list(faults), sagas, set(target))

    def fails(candidate: list[Fault], n: int) -> bool:
        if result.runs >= max_runs:
            return False
        result.runs += 1
        found = trial(candidate, n)
        failed = bool(found & result.target)
        result.tried.append({"faults": len(candidate), "sagas": n, "failed": failed, "found": sorted(found)})
        return failed

    result.faults = ddmin(result.faults, lambda c: fails(c, result.sagas))
    while result.sagas // 2 >= min_sagas and fails(result.faults, result.sagas // 2):
        result.sagas //= 2
    for i, f in enumerate(list(result.faults)):  # narrower windows: half as long, while it still fails
        while f.duration >= 1.0:
            narrower = f.model_copy(update={"duration": round(f.duration / 2, 3)})
            candidate = [*result.faults[:i], narrower, *result.faults[i + 1 :]]
            if not fails(candidate, result.sagas):
                break
            result.faults, f = candidate, narrower
    return result


def ddmin(items: list[Any], fails: Callable[[list[Any]], bool]) -> list[Any]:
    """Zeller's delta debugging: a 1-minimal sublist of ``items`` for which ``fails`` holds (``items``
    itself is assumed to fail; a sublist already tested is not tested again — each test is a real run)."""
    # The search runs over positions, so a sublist tested once (a real run) is known by its positions.
    seen: dict[tuple[int, ...], bool] = {}

    def failing(positions: list[int]) -> bool:
        key = tuple(positions)
        if key not in seen:
            seen[key] = fails([items[i] for i in positions])
        return seen[key]

    kept = list(range(len(items)))
    n = 2
    while len(kept) >= 2:
        chunk = max(1, len(kept) // n)
        subsets = [kept[i : i + chunk] for i in range(0, len(kept), chunk)]
        reduced = False
        for subset in subsets:  # a subset alone fails
            if failing(subset):
                kept, n, reduced = subset, 2, True
                break
        if not reduced:
            for i in range(len(subsets)):  # its complement fails
                complement = [x for j, sub in enumerate(subsets) if j != i for x in sub]
                if failing(complement):
                    kept, n, reduced = complement, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(kept):
                break
            n = min(len(kept), 2 * n)
    if len(kept) == 1 and failing([]):
        return []
    return [items[i] for i in kept]


def write_scenario(scenario: Scenario, path: Path, seed: int) -> Path:
    """``scenario`` as a YAML file (explicit faults; replay with ``--seed``)."""
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    data.setdefault("name", scenario.name)
    data.setdefault("description", scenario.description)
    header = f"# shrunk by saga-harness; replay: saga-harness chaos run {path.name} --seed {seed}\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, width=120, allow_unicode=True))
    return path


def windows_of(described: Sequence[dict[str, Any]]) -> list[FaultWindow]:
    """Fault windows back from their descriptions (a counterexample's ``faults``)."""
    out = []
    for d in described:
        rest = {k: v for k, v in d.items() if k not in ("id", "kind", "target", "start_s", "end_s")}
        out.append(FaultWindow(str(d["id"]), str(d["kind"]), str(d["target"]), d["start_s"], d["end_s"], rest))
    return out


def shrink_run(
    run_dir: Path,
    *,
    max_runs: int = 24,
    on_trial: Callable[[int, list[Fault], int, bool], None] = lambda i, faults, sagas, failed: None,
) -> tuple[Shrunk, Path]:
    """Shrink the failing chaos run in ``run_dir`` (its ``counterexample.json``): the trials run in
    ``run_dir/shrink/``, the minimal scenario is written to ``run_dir/shrunk.yaml``."""
    from saga_harness.chaos.run import execute_scenario
    from saga_harness.counterexample import load, violated_keys

    cx = load(run_dir)
    original = Scenario.model_validate(cx.scenario or {})
    faults = [fault_of(w) for w in windows_of(cx.faults)]
    sagas = int(cx.workload.get("sagas") or original.workload.sagas)
    config = Path(cx.config) if cx.config else None
    count = 0

    def trial(candidate: list[Fault], n: int) -> set[str]:
        nonlocal count
        count += 1
        scenario = Shrunk(candidate, n, set()).scenario(original)
        result = execute_scenario(
            scenario,
            seed=cx.seed,
            sagas=n,
            bugs=cx.bugs,
            out=run_dir / "shrink" / f"try-{count:02d}",
            sut=cx.sut,
            config=config,
            database_url=cx.database_url,
            env=cx.env,
            command=f"shrink {run_dir.name} #{count}",
        )
        found = set(violated_keys(result.verdicts.findings))
        on_trial(count, candidate, n, bool(found & set(cx.findings)))
        return found

    shrunk = shrink(faults, sagas, set(cx.findings), trial, max_runs=max_runs)
    path = write_scenario(shrunk.scenario(original), run_dir / "shrunk.yaml", cx.seed)
    return shrunk, path
