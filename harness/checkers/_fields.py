"""Reading the status fields the harness recorded (``StatusSeen.fields``), whatever their shape.

Systems say the same things differently: ``compensations_done`` may be a list of
names, of objects with a name, a comma-separated text or an object keyed by name;
``attempts`` an object name -> count or a list of objects. These helpers read
them leniently, so a checker can ask plain questions.
"""

from __future__ import annotations

from typing import Any

from saga_harness.model import Step

NAME_KEYS = ("name", "step", "compensation", "id")


def _name_of(item: Any) -> str | None:
    if isinstance(item, dict):
        for key in NAME_KEYS:
            if item.get(key) is not None:
                return str(item[key])
        return None
    return None if item is None else str(item)


def names(value: Any) -> list[str]:
    """The names a field lists, repeats kept (a list, a comma-separated text, an object's keys)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list):
        return [n for n in (_name_of(i) for i in value) if n is not None]
    return [str(value)]


def attempts(value: Any) -> dict[str, int]:
    """Attempts per name (``{"refund": 3}`` or ``[{"name": "refund", "attempts": 3}]``)."""
    out: dict[str, int] = {}
    if isinstance(value, dict):
        items = [(k, v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(_name_of(i), i.get("attempts")) for i in value if isinstance(i, dict)]
    else:
        return out
    for name, count in items:
        if name is not None and isinstance(count, int) and not isinstance(count, bool):
            out[str(name)] = count
    return out


def _norm(name: str) -> str:
    return name.casefold().replace("-", "_").replace(" ", "_")


def is_step(name: Any, step: Step) -> bool:
    """Does the system's ``name`` mean ``step`` (its name or its compensation's; case, ``-``, ``_``
    and spaces aside)?"""
    if name is None:
        return False
    wanted = {_norm(step.name), *((_norm(step.compensation),) if step.compensation else ())}
    return _norm(str(name)) in wanted


def lists(value: Any, step: Step) -> int:
    """How many times a field lists ``step`` (or its compensation)."""
    return sum(1 for n in names(value) if is_step(n, step))


def attempts_of(value: Any, step: Step) -> int | None:
    """The attempts the system shows for ``step``'s compensation (or the step), if any."""
    for name, count in attempts(value).items():
        if is_step(name, step):
            return count
    return None
