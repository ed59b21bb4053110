"""Safety guard: faults and load only ever target loopback (or an explicit allow-list)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from saga_harness.errors import UnsafeTargetError

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(target: str) -> str:
    """The host of a URL or a ``host:port``."""
    if "://" in target:
        return urlsplit(target).hostname or ""
    host, _, _port = target.rpartition(":")
    return host or target


def check_targets(targets: Iterable[tuple[str, str]], allowed_hosts: Iterable[str] = ()) -> None:
    """Refuse (UnsafeTargetError) any ``(what, url_or_hostport)`` not on loopback or allowed."""
    allowed = set(allowed_hosts)
    for what, target in targets:
        host = host_of(target)
        if not (is_loopback(host) or host in allowed):
            raise UnsafeTargetError(
                f"{what} targets {target!r}, which is not a loopback address; saga-harness only sends faults and "
                f"load to 127.0.0.0/8, ::1 or localhost unless the host is listed in `allowed_hosts` of the SUT "
                f"config. Nothing was started."
            )
