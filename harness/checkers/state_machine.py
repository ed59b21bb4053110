"""State machine: each saga's states follow the declared edges; nothing leaves a terminal state.

Every violation is proved by states that were seen (present evidence): none is held back."""

from __future__ import annotations

from typing import Any

from saga_harness.checkers import register
from saga_harness.checkers._snapshot import records
from saga_harness.checkers.verdict import Examined, Verdict, Violation, verdict
from saga_harness.history import History
from saga_harness.model import SagaModel, state_key
from saga_harness.pointer import resolve

NAME = "state_machine"


@register(NAME)
def check(history: History, model: SagaModel) -> Verdict:
    out: list[Violation] = []
    sm = model.states
    # States compare as their TOML keys (state_key): a boolean state true is the key "true".
    initial = {state_key(s) for s in sm.initial}
    edges = {a: {state_key(b) for b in nexts} for a, nexts in sm.transitions.items()}
    snap: dict[str, list[Any]] = {}
    snap_ref = None
    if model.state_history is not None:
        by_saga, snap_ref = records(history, model.state_history)
        for sid, items in by_saga.items():
            raw = resolve(items[0], model.state_history.transitions, [])
            snap[sid] = [resolve(t, model.state_history.state, None) if isinstance(t, dict) else t for t in raw]
    walked = facts = 0
    for rec in history.sagas.values():
        if rec.saga_id in snap:
            states, refs = snap[rec.saga_id], (snap_ref or "",)
        else:
            states, refs = [s for _w, s, _o, _r in rec.statuses if s is not None], tuple(r for *_x, r in rec.statuses)
        keys = [state_key(s) for s in states]
        path = [s for i, s in enumerate(keys) if i == 0 or s != keys[i - 1]]
        if not path:
            continue
        walked += 1
        facts += len(states)
        if initial and rec.saga_id in snap and path[0] not in initial:
            out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    None,
                    f"starts in one of {sm.initial}",
                    f"started in {path[0]}",
                    refs[:3],
                    cause=f"sagas started in {path[0]}, not an initial state",
                )
            )
        for a, b in zip(path, path[1:], strict=False):
            if a in sm.terminal:
                out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        None,
                        f"nothing after the terminal state {a}",
                        f"{a} → {b}",
                        refs[:3],
                        cause=f"sagas left the terminal state {a} ({a} → {b})",
                    )
                )
                break
            if edges and b not in edges.get(a, ()):
                out.append(
                    Violation(
                        NAME,
                        rec.saga_id,
                        None,
                        f"{a} → one of {sm.transitions.get(a, [])}",
                        f"{a} → {b}",
                        refs[:3],
                        cause=f"undeclared transition {a} → {b}",
                    )
                )
        last = path[-1]
        if last in sm.terminal and rec.outcome is not None and sm.terminal[last] != rec.outcome:
            out.append(
                Violation(
                    NAME,
                    rec.saga_id,
                    None,
                    f"outcome {sm.terminal[last]} for terminal state {last}",
                    f"outcome {rec.outcome}",
                    (rec.outcome_ref or "",),
                    cause=f"terminal state {last} reported as outcome {rec.outcome}",
                )
            )
    return verdict(NAME, out, examined=Examined(walked, facts), sagas_walked=walked)
