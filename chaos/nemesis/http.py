"""HTTP faults on links: each fault window is a rule on the HTTP fault proxy of its link
(:mod:`saga_harness.chaos.httpfaults`), switched on and off by the nemesis; the calls the proxy saw,
with the fault each got, are written into the history at the end (:class:`~saga_harness.history.HttpCall`)."""

from __future__ import annotations

import asyncio
from typing import Any

from saga_harness.chaos.schedule import FaultWindow
from saga_harness.history import HistoryWriter, HttpCall


def rule_of(w: FaultWindow) -> Any:
    """The HTTP fault proxy's rule for window ``w`` (its id is the window's)."""
    from saga_harness.chaos.httpfaults.rules import HttpRule

    p = w.params
    return HttpRule(
        id=w.id,
        action=p["action"],
        method=p.get("method", "*"),
        path=p.get("path", "*"),
        nth=tuple(p.get("nth") or ()),
        first=p.get("first"),
        probability=p.get("probability", 1.0),
        seed=int(p.get("seed", 0)),
        status=int(p.get("status", 503)),
        delay_ms=int(p.get("delay_ms", 0)),
        lose=p.get("lose", "reset"),
        body_fraction=float(p.get("body_fraction", 0.5)),
        duplicate_after_answer=bool(p.get("duplicate_after_answer", False)) and p["action"] == "duplicate",
    )


class HttpLinkFaults:
    """The nemesis's hand on the HTTP fault proxy: ``links`` maps a SUT's link to the proxy's name for it."""

    def __init__(self, client: Any, links: dict[str, str]) -> None:
        self.client = client
        self.links = links
        self._since = dict.fromkeys(links, 0)

    async def apply(self, w: FaultWindow) -> None:
        await asyncio.to_thread(self.client.add_rule, self.links[w.target], rule_of(w))

    async def heal(self, w: FaultWindow) -> None:
        await asyncio.to_thread(self.client.remove_rule, self.links[w.target], w.id)

    def skip_seen(self) -> None:
        """From now on, record only the calls made after this moment."""
        for link, pname in self.links.items():
            self._since[link] = self.client.calls(pname, self._since[link])[1]

    async def record_calls(self, history: HistoryWriter) -> int:
        """Append the calls seen since the last time to ``history``; how many."""
        n = 0
        for link, pname in sorted(self.links.items()):
            calls, self._since[link] = await asyncio.to_thread(self.client.calls, pname, self._since[link])
            for c in calls:
                history.append(
                    HttpCall(
                        link,
                        c.seq,
                        c.method,
                        c.path,
                        c.query,
                        c.status,
                        c.rule,
                        c.action,
                        c.mono_request,
                        c.mono_answer,
                        dict(c.headers),
                        c.body_head,
                    ),
                    process="httpfaults",
                )
            n += len(calls)
        return n
