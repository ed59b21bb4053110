"""An embedded Toxiproxy-compatible server: Toxiproxy 2.x's HTTP API and toxics, in Python.

Used when no ``toxiproxy-server`` binary is around, so the same client code
(toxiproxy-python) and scenarios run against either. Proxies only listen on and
connect to loopback unless hosts are explicitly allowed.

- :func:`serve` runs one in the foreground (``python -m saga_harness.chaos.server``,
  ``saga-harness toxiproxy serve``);
- :class:`EmbeddedServer` runs one on a thread of this process (tests).

Modules: ``api`` (HTTP), ``collection`` (proxies and their rules), ``proxy`` (the TCP
proxy), ``toxics`` (the toxics), ``codec`` (Go-like JSON reading), ``addresses``
(address syntax and the loopback guard), ``runtime`` (running it).
"""

from __future__ import annotations

from saga_harness.chaos.server.api import VERSION
from saga_harness.chaos.server.runtime import EmbeddedServer, serve

__all__ = ["VERSION", "EmbeddedServer", "serve"]
