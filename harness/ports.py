"""Free TCP ports on loopback for the processes the harness starts.

Ports are picked below the kernel's ephemeral range: every ``bind(port 0)``
(a Toxiproxy listener, a sink) and every outgoing connection's local port
comes from that range, so a port picked here cannot be taken by one of those
between the moment it is picked and the moment its component binds it.
Candidates are tried in random order and all held bound until the last is
found, so one call never returns the same port twice. Another process could
still take a port before the component binds it; its start then fails with a
clear log.
"""

from __future__ import annotations

import random
import socket

__all__ = ["free_port", "free_ports"]

LOWEST = 20_000  # above the well-known services on this kind of machine (PostgreSQL, Redis, AMQP, NATS, …)


def _ephemeral_low(default: int = 32_768) -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports that are free on ``host`` right now (outside the ephemeral range)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    high = _ephemeral_low()
    span = range(LOWEST, high)
    candidates = random.SystemRandom().sample(span, k=min(len(span), 8 * count + 200)) if len(span) > 2 * count else []
    sockets: list[socket.socket] = []
    try:
        for port in candidates:
            if len(sockets) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        while len(sockets) < count:  # no room below the ephemeral range: let the kernel choose
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One TCP port that is free on ``host`` right now."""
    return free_ports(1, host)[0]
