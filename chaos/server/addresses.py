"""Listen and upstream addresses: Go's ``host:port`` syntax, resolution, and the loopback guard.

The embedded server only listens on and proxies to loopback (127.0.0.0/8, ::1,
localhost) unless a host is on its explicit allow-list; anything else is refused
with a 400 that says why and what to do.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from saga_harness.chaos.guard import is_loopback
from saga_harness.chaos.server.errors import ApiError, server_error


def split_host_port(address: str, op: str = "listen") -> tuple[str, int]:
    """``host`` and ``port`` of ``address`` as Go's ``net.SplitHostPort`` reads them ("[::1]:80" too)."""
    host, sep, port = address.rpartition(":")
    if not sep:
        raise server_error(f"{op} tcp: address {address}: missing port in address")
    if host.startswith("["):
        if not host.endswith("]"):
            raise server_error(f"{op} tcp: address {address}: missing ']' in address")
        host = host[1:-1]
    elif ":" in host:
        raise server_error(f"{op} tcp: address {address}: too many colons in address")
    if not port.isdigit() or int(port) > 65535:
        raise server_error(f"{op} tcp: address {address}: invalid port")
    return host, int(port)


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with IPv6 hosts in brackets, as Go writes addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve_host(host: str) -> str:
    """The IP a listener on ``host`` binds: localhost is 127.0.0.1 (Go prefers IPv4), "" stays ""."""
    if host == "" or host.lower() in ("localhost", "localhost.localdomain"):
        return "127.0.0.1" if host else ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise server_error(f"listen tcp: lookup {host}: {exc.strerror or 'no such host'}") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])


def resolved(address: str) -> str:
    """``address`` with its host resolved, as Toxiproxy compares listen addresses."""
    host, port = split_host_port(address)
    return join_host_port(resolve_host(host), port)


class AddressPolicy:
    """Which hosts proxies may listen on and connect to: loopback, plus ``allowed_hosts``."""

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        self.allowed = {h.strip("[]").lower() for h in allowed_hosts}

    def allows(self, host: str) -> bool:
        """True if ``host`` is loopback or explicitly allowed."""
        host = host.strip("[]")
        return bool(host) and (is_loopback(host) or host.lower() in self.allowed)

    def check(self, what: str, address: str) -> None:
        """Refuse (400) a listen or upstream ``address`` whose host is neither loopback nor allowed."""
        host, _sep, _port = address.rpartition(":")
        host = host.strip("[]") if _sep else address
        if self.allows(host):
            return
        shown = host or "all interfaces"
        hint = "127.0.0.1:0" if what == "listen" else "127.0.0.1:<port>"
        raise ApiError(
            f"{what} address {address!r} ({shown}) is not a loopback address; this embedded Toxiproxy only "
            f"listens on and proxies to 127.0.0.0/8, ::1 or localhost unless the host is allowed "
            f"(saga-harness toxiproxy serve --allow-host HOST); use {hint}. Nothing was changed.",
            400,
        )
