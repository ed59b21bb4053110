"""HTTP faults on a link: request-level faults keyed on the call, not the clock.

A link (caller → callee, HTTP/1.1 on loopback) is routed through a proxy that parses
each request and can answer it with a status without forwarding it, forward it and
lose its answer, send it twice, delay it or its answer, or cut its body — for the Nth
matching request, the first N, or with a seeded probability. What users may import::

    from saga_harness.chaos.httpfaults import HttpFaults, HttpRule

    faults = HttpFaults()                                    # the proxy process, started once
    listen = faults.create_link("orders->payments", "127.0.0.1:8002")
    faults.add_rule("orders->payments", HttpRule(id="r1", action="lose_answer", path="/payments/*", nth=(2,)))
    calls, next_seq = faults.calls("orders->payments")

The proxies run in their own process (``python -m saga_harness.chaos.httpfaults``);
names are imported on first use, so that process starts without the client.
"""

from typing import TYPE_CHECKING

from saga_harness.lazy import exports

_WHERE = {
    "ACTIONS": "saga_harness.chaos.httpfaults.rules",
    "Call": "saga_harness.chaos.httpfaults.calls",
    "HttpFaults": "saga_harness.chaos.httpfaults.client",
    "HttpRule": "saga_harness.chaos.httpfaults.rules",
    "RuleSet": "saga_harness.chaos.httpfaults.rules",
    "close": "saga_harness.chaos.httpfaults.client",
    "server_url": "saga_harness.chaos.httpfaults.client",
}

__all__ = [
    "ACTIONS",
    "Call",
    "HttpFaults",
    "HttpRule",
    "RuleSet",
    "close",
    "server_url",
]

__getattr__, __dir__ = exports(__name__, _WHERE)

if TYPE_CHECKING:  # what type checkers and editors see; at run time, exports() imports on first use
    from saga_harness.chaos.httpfaults.calls import Call
    from saga_harness.chaos.httpfaults.client import HttpFaults, close, server_url
    from saga_harness.chaos.httpfaults.rules import ACTIONS, HttpRule, RuleSet
