"""HTTP fault rules: which requests of a link a fault picks, and what it does to them.

Pure data and counting, no I/O: the proxy calls :meth:`RuleSet.pick` once per request,
on its event loop, when the request's head is parsed. A rule picks requests by call,
not by clock (Shopify/toxiproxy#50, "fail the first N requests"): the 2nd matching
request, the first 3, or each one with a seeded probability, so a run replays
exactly from its seed and its request sequence.
"""

from __future__ import annotations

import difflib
import fnmatch
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["ACTIONS", "LOSE_MODES", "HttpRule", "RuleSet"]

ACTIONS = ("status", "lose_answer", "duplicate", "delay_request", "delay_answer", "cut_body")
LOSE_MODES = ("reset", "close")
_METHOD = re.compile(r"[A-Za-z][A-Za-z_-]*")


def _fail(name: str, value: object, want: str) -> ValueError:
    return ValueError(f"HttpRule field {name!r}: {value!r} is not {want}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class HttpRule:
    """One fault on a link's requests (see the module docstring).

    A request is picked by ``nth`` if set (1-based positions among the requests this
    rule matched since it was set), else by ``first`` (the first N), else with
    ``probability`` from ``random.Random(f"{seed}:{id}")`` (1.0: every matching request).
    Construction validates every field and raises :class:`ValueError` naming it.

    ``duplicate`` sends a copy of the request at the same time as the original, on a fresh
    upstream connection of its own (a retry racing the original: the callee handles both
    at once); the client gets the original's answer. With ``duplicate_after_answer`` the
    copy goes once the original's answer is complete, on the same connection (a retry
    after the answer was lost).
    """

    id: str
    action: str
    method: str = "*"
    path: str = "*"
    nth: tuple[int, ...] = ()
    first: int | None = None
    probability: float = 1.0
    seed: int = 0
    status: int = 503
    delay_ms: int = 0
    lose: str = "reset"
    body_fraction: float = 0.5
    duplicate_after_answer: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id or "/" in self.id:
            raise _fail("id", self.id, "a non-empty string without '/'")
        if self.action not in ACTIONS:
            hint = difflib.get_close_matches(str(self.action), ACTIONS, n=1)
            also = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise _fail("action", self.action, f"one of {', '.join(ACTIONS)}{also}")
        if not isinstance(self.method, str) or not (self.method == "*" or _METHOD.fullmatch(self.method)):
            raise _fail("method", self.method, "an HTTP method such as 'POST', or '*'")
        object.__setattr__(self, "method", self.method.upper())
        if not isinstance(self.path, str) or not self.path or self.path[0] not in "/*?[":
            raise _fail("path", self.path, "a glob on the request path such as '/payments/*/capture', or '*'")
        if isinstance(self.nth, str | bytes) or not isinstance(self.nth, tuple | list):
            raise _fail("nth", self.nth, "a list of positive integers")
        nth = tuple(self.nth)
        if not all(_is_int(n) and n >= 1 for n in nth):
            raise _fail("nth", list(nth), "a list of positive integers (1 is the first matching request)")
        object.__setattr__(self, "nth", nth)
        if self.first is not None and not (_is_int(self.first) and self.first >= 1):
            raise _fail("first", self.first, "a positive integer or null")
        if not (_is_number(self.probability) and 0.0 <= self.probability <= 1.0):
            raise _fail("probability", self.probability, "a number from 0 to 1")
        object.__setattr__(self, "probability", float(self.probability))
        if not _is_int(self.seed):
            raise _fail("seed", self.seed, "an integer")
        if not (_is_int(self.status) and 200 <= self.status <= 599):
            raise _fail("status", self.status, "a final HTTP status code from 200 to 599")
        if not (_is_int(self.delay_ms) and 0 <= self.delay_ms <= 3_600_000):
            raise _fail("delay_ms", self.delay_ms, "an integer number of milliseconds from 0 to 3600000")
        if self.lose not in LOSE_MODES:
            raise _fail("lose", self.lose, "'reset' (RST) or 'close' (FIN)")
        if not (_is_number(self.body_fraction) and 0.0 <= self.body_fraction <= 1.0):
            raise _fail("body_fraction", self.body_fraction, "a number from 0 to 1")
        object.__setattr__(self, "body_fraction", float(self.body_fraction))
        if not isinstance(self.duplicate_after_answer, bool):
            raise _fail("duplicate_after_answer", self.duplicate_after_answer, "true or false")
        if self.duplicate_after_answer and self.action != "duplicate":
            raise _fail("duplicate_after_answer", True, f"meaningful with action {self.action!r} (only 'duplicate')")

    def to_json(self) -> dict[str, Any]:
        """The rule as a JSON object (every field; ``nth`` as a list)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["nth"] = list(self.nth)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HttpRule:
        """The rule in ``data``; :class:`ValueError` with a one-line message naming the bad field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"an HttpRule is a JSON object, not {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                hint = difflib.get_close_matches(str(key), known, n=1)
                also = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ValueError(f"HttpRule has no field {key!r}{also}; its fields: {', '.join(known)}")
        for required in ("id", "action"):
            if required not in data:
                raise ValueError(f"HttpRule field {required!r} is missing")
        values = dict(data)
        if isinstance(values.get("nth"), list):
            values["nth"] = tuple(values["nth"])
        return cls(**values)

    def matches(self, method: str, path: str) -> bool:
        """True if a request with ``method`` (upper case) and ``path`` (no query) is one this rule is about."""
        return (self.method == "*" or self.method == method) and (
            self.path == "*" or fnmatch.fnmatchcase(path, self.path)
        )


@dataclass
class _Slot:
    rule: HttpRule
    seen: int = 0
    rng: random.Random | None = field(default=None, repr=False)
    nth: frozenset[int] = frozenset()

    def selects(self) -> bool:
        """Count one more matching request; True if the rule picks it."""
        self.seen += 1
        rule = self.rule
        if rule.nth:
            return self.seen in self.nth
        if rule.first is not None:
            return self.seen <= rule.first
        if rule.probability >= 1.0:
            return True
        assert self.rng is not None
        return self.rng.random() < rule.probability


class RuleSet:
    """The rules of one link, in the order they were set.

    Not thread-safe: the proxy uses it on its event loop only.
    """

    def __init__(self) -> None:
        self._slots: list[_Slot] = []

    def add(self, rule: HttpRule) -> None:
        """Set ``rule`` after the others; its counts start at zero. ValueError if its id is taken."""
        if any(slot.rule.id == rule.id for slot in self._slots):
            raise ValueError(f"a rule with id {rule.id!r} is already set on this link; remove it first")
        rng = None if (rule.nth or rule.first is not None) else random.Random(f"{rule.seed}:{rule.id}")
        self._slots.append(_Slot(rule, rng=rng, nth=frozenset(rule.nth)))

    def remove(self, rule_id: str) -> bool:
        """Remove the rule ``rule_id``; False if there was none."""
        for i, slot in enumerate(self._slots):
            if slot.rule.id == rule_id:
                del self._slots[i]
                return True
        return False

    def rules(self) -> list[HttpRule]:
        """The rules, in order."""
        return [slot.rule for slot in self._slots]

    def __len__(self) -> int:
        return len(self._slots)

    def pick(self, method: str, path: str) -> HttpRule | None:
        """The first rule (in order) that picks this request, or None.

        Every rule the request matches counts it (and draws its random number), picked
        or not, so each rule's choices depend only on the requests it matched.
        """
        if not self._slots:
            return None
        method = method.upper()
        picked = None
        for slot in self._slots:
            if slot.rule.matches(method, path) and slot.selects() and picked is None:
                picked = slot.rule
        return picked
