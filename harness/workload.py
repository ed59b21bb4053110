"""What the clients will do, decided up front: pure, seeded data.

A workload is a list of :class:`PlannedSaga` — which trigger each saga uses,
its request body and idempotency key, and whether (and how) the client resends
it with the same key. The same seed gives the same plan, so a run can be
replayed; nothing here touches the network.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from saga_harness.errors import ConfigError
from saga_harness.startplan import Pool, draw_members, fill

RESUBMIT_KINDS = ("immediate", "concurrent", "delayed")


@dataclass(frozen=True)
class Trigger:
    """A request that demands an outcome (e.g. a declined card must end compensated).

    ``expected_outcome`` is the one outcome demanded (``any`` when several are accepted);
    ``expectation`` the full demand as the model's ``triggers`` take it (``outcome`` — one or
    a list —, ``under_faults``, ``fails_at``, ``reason``, ``error_type``), None when the
    outcome alone says it. ``uses`` draws pool members: name in the templates -> pool.
    """

    name: str
    request: Mapping[str, Any]
    expected_outcome: str
    burst: int = 1  # sagas started back to back whenever this trigger is drawn (to make them race)
    uses: Mapping[str, str] = field(default_factory=dict)
    expectation: Mapping[str, Any] | None = None

    def demand(self) -> str | dict[str, Any]:
        """What the model's ``triggers`` get for this trigger: the plain outcome, or the full expectation."""
        return dict(self.expectation) if self.expectation else self.expected_outcome


@dataclass(frozen=True)
class Resubmit:
    """Send the same request again with the same idempotency key."""

    kind: str  # immediate | concurrent | delayed
    delay_s: float = 0.0


@dataclass(frozen=True)
class PlannedSaga:
    """One saga to start: its trigger, key, request (placeholders the plan could not fill yet —
    pool members' captured values — stay for the client), resends, and the pool members it
    drew (``alias -> (pool, index)``). ``variables``: the built-ins its templates use."""

    index: int
    key: str
    trigger: str
    body: Mapping[str, Any]
    resubmits: tuple[Resubmit, ...] = ()
    members: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)


def parse_mix(text: str | Mapping[str, float] | None, triggers: Mapping[str, Trigger] | None) -> dict[str, float]:
    """``"ok=0.7,decline=0.3"`` → normalised weights; every name must be a declared trigger (``triggers``
    None: not checked here — the run that plans the workload checks them)."""
    if text is None or text == "":
        return {name: 1.0 / len(triggers) for name in triggers} if triggers else {}
    if isinstance(text, str):
        pairs: dict[str, float] = {}
        for part in (p.strip() for p in text.split(",") if p.strip()):
            name, sep, weight = part.partition("=")
            if not sep:
                raise ConfigError(f"--mix: {part!r} is not NAME=WEIGHT (e.g. ok=0.7,decline=0.3)")
            try:
                pairs[name.strip()] = float(weight)
            except ValueError:
                raise ConfigError(f"--mix: weight {weight!r} of {name!r} is not a number") from None
    else:
        pairs = dict(text)
    unknown = sorted(set(pairs) - set(triggers)) if triggers is not None else []
    if unknown:
        raise ConfigError(
            f"--mix names trigger(s) {unknown} that the SUT does not declare; declared triggers: "
            f"{', '.join(sorted(triggers or {}))}"
        )
    if any(w < 0 for w in pairs.values()) or sum(pairs.values()) <= 0:
        raise ConfigError(f"--mix: weights must be >= 0 and not all zero, got {pairs}")
    total = sum(pairs.values())
    return {name: w / total for name, w in pairs.items() if w > 0}


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """Fill ``{i}``-style placeholders in a request template; names not known yet stay as they are."""
    return copy.deepcopy(fill(value, variables, partial=True))


def plan(
    n: int,
    *,
    triggers: Mapping[str, Trigger],
    mix: Mapping[str, float],
    duplicates: float = 0.0,
    seed: int = 0,
    max_delay_s: float = 1.0,
    pools: Mapping[str, Pool] | None = None,
) -> list[PlannedSaga]:
    """Plan ``n`` sagas. A share ``duplicates`` of them is resent with the same key,
    cycling through the resubmission kinds (immediately, concurrently, after a delay).
    A trigger that ``uses`` pools draws a member of each (from the same seeded stream)."""
    if n < 0:
        raise ConfigError(f"--sagas must be >= 0, got {n}")
    if not 0.0 <= duplicates <= 1.0:
        raise ConfigError(f"--duplicates is a share of sagas between 0 and 1, got {duplicates}")
    if not mix:
        raise ConfigError("the workload needs at least one trigger with a positive weight")
    rng = random.Random(seed)
    names = sorted(mix)
    weights = [mix[name] for name in names]
    out: list[PlannedSaga] = []
    burst: list[str] = []
    for i in range(n):
        if not burst:
            drawn = rng.choices(names, weights)[0]
            burst = [drawn] * max(1, triggers[drawn].burst)
        name = burst.pop()
        key = f"saga-{seed}-{i}-{rng.getrandbits(48):012x}"
        variables = {"i": i, "seed": seed, "key": key, "seq100": 1 + i % 100, "rand100": rng.randint(1, 100)}
        resubmits: tuple[Resubmit, ...] = ()
        if rng.random() < duplicates:
            kind = RESUBMIT_KINDS[rng.randrange(len(RESUBMIT_KINDS))]
            delay = round(rng.uniform(0.05, max_delay_s), 3) if kind == "delayed" else 0.0
            resubmits = (Resubmit(kind, delay),)
        trigger = triggers[name]
        members = draw_members(trigger.uses, pools or {}, rng) if trigger.uses else {}
        body = render(dict(trigger.request), variables)
        out.append(PlannedSaga(i, key, name, body, resubmits, members, variables))
    return out
