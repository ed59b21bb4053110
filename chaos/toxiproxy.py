"""The Toxiproxy client the harness uses (toxiproxy-python), bound to the server in use:
``TOXIPROXY_URL`` if set, else a ``toxiproxy-server`` found on PATH (started for the
session and stopped at exit)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import time
from typing import Any
from urllib.parse import urlsplit

from harness.errors import ScenarioError
from harness.ports import free_port

_server: subprocess.Popen | None = None


def _bind(host: str, port: int) -> Any:
    from toxiproxy import Toxiproxy

    client = Toxiproxy()
    client.update_api_consumer(host, port)  # class-level state in toxiproxy-python
    return client


def _wait(client: Any, url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if client.running():
                return
        except Exception:  # not listening yet
            pass
        time.sleep(0.1)
    raise ScenarioError(f"no Toxiproxy server answers at {url}; check TOXIPROXY_URL or the server's log")


def client() -> Any:
    """A toxiproxy-python client for the Toxiproxy server in use."""
    global _server
    url = os.environ.get("TOXIPROXY_URL")
    if url:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        c = _bind(parts.hostname or "127.0.0.1", parts.port or 8474)
        _wait(c, url)
        return c
    binary = shutil.which("toxiproxy-server")
    if binary is None:
        raise ScenarioError(
            "link faults need a Toxiproxy server: set TOXIPROXY_URL to a running one, or put toxiproxy-server on PATH"
        )
    if _server is None or _server.poll() is not None:
        port = free_port()
        _server = subprocess.Popen(
            [binary, "-host", "127.0.0.1", "-port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        atexit.register(_server.terminate)
        _server.port = port  # type: ignore[attr-defined]
    c = _bind("127.0.0.1", _server.port)  # type: ignore[attr-defined]
    _wait(c, f"http://127.0.0.1:{_server.port}")  # type: ignore[attr-defined]
    return c
