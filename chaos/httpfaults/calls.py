"""The call log of a link: one :class:`Call` per request the proxy parsed, in a bounded ring.

Pure data, no I/O, shared by the proxy (which writes it) and the client (which reads it
back from JSON). A call is logged once its outcome is known — its answer written to the
client, lost, cut, or its connection gone — so ``seq`` is its position in the log and
paging with ``since`` never misses a call that was still in flight; ``mono_request``
orders calls by arrival. ``mono_*`` are ``time.monotonic()`` readings: CLOCK_MONOTONIC
is system-wide on Linux, so the harness compares them with its own clock.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CALL_HEADERS", "Call", "CallLog"]

# The request headers a call keeps (lower case): idempotency and tracing evidence, CloudEvent binary mode.
CALL_HEADERS = ("idempotency-key", "traceparent", "x-request-id", "ce-id", "ce-type", "ce-source", "ce-subject")
BODY_HEAD_BYTES = 512


@dataclass(frozen=True)
class Call:
    """One request through a link and what the client got (``status`` None: no answer)."""

    seq: int
    link: str
    method: str
    path: str
    query: str
    status: int | None
    rule: str | None
    action: str | None
    mono_request: float
    mono_answer: float | None
    headers: dict[str, str]
    body_head: str

    def to_json(self) -> dict[str, Any]:
        """The call as a JSON object."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Call:
        """The call in ``data`` (as :meth:`to_json` wrote it)."""
        return cls(
            seq=int(data["seq"]),
            link=str(data["link"]),
            method=str(data["method"]),
            path=str(data["path"]),
            query=str(data.get("query", "")),
            status=None if data.get("status") is None else int(data["status"]),
            rule=data.get("rule"),
            action=data.get("action"),
            mono_request=float(data["mono_request"]),
            mono_answer=None if data.get("mono_answer") is None else float(data["mono_answer"]),
            headers=dict(data.get("headers") or {}),
            body_head=str(data.get("body_head", "")),
        )


class CallLog:
    """The last ``size`` calls of a link; ``seq`` counts from 1 and never repeats.

    The ring holds plain tuples of strings and numbers, which the garbage collector stops
    tracking: 200,000 logged calls cost no full-collection pauses on the proxy's loop.
    :class:`Call` objects are made when the log is read.
    """

    def __init__(self, link: str, size: int = 200_000) -> None:
        self.link = link
        self._ring: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=size)
        self.next_seq = 1

    def add(
        self,
        method: str,
        path: str,
        query: str,
        status: int | None,
        rule: str | None,
        action: str | None,
        mono_request: float,
        mono_answer: float | None,
        headers: dict[str, str],
        body_head: str,
    ) -> int:
        """Log a call; returns its ``seq``."""
        seq = self.next_seq
        self.next_seq = seq + 1
        self._ring.append(
            (seq, method, path, query, status, rule, action, mono_request, mono_answer, headers, body_head)
        )
        return seq

    def since(self, seq: int = 0, limit: int | None = None) -> tuple[list[Call], int]:
        """The calls with ``seq >= seq`` still in the ring (at most ``limit``), and the ``seq`` to ask for next."""
        if not self._ring:
            return [], self.next_seq
        skip = max(0, seq - self._ring[0][0])
        stop = None if limit is None else skip + max(1, limit)
        link = self.link
        calls = [Call(t[0], link, *t[1:]) for t in itertools.islice(self._ring, skip, stop)]
        return calls, (calls[-1].seq + 1 if calls else self.next_seq)

    def __len__(self) -> int:
        return len(self._ring)
