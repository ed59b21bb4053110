"""Free TCP ports on loopback, picked by the kernel.

Ports for all components are picked at once, with every socket still bound
while the next is picked, so the kernel never hands out the same port twice.
The ports are free when returned; another process could still take one before
the component binds it, which then fails its start with a clear log.
"""

from __future__ import annotations

import socket

__all__ = ["free_port", "free_ports"]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports that are free on ``host`` right now."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
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
