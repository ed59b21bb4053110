"""The Toxiproxy client the harness uses (toxiproxy-python), bound to the server in use:

1. ``TOXIPROXY_URL`` if set (a server someone else runs);
2. else a ``toxiproxy-server`` found on PATH, started for this process;
3. else the embedded server (``python -m saga_harness.chaos.server``), started for this process.

A server started here is stopped when the process exits (or by :func:`close`); the
embedded one also stops by itself if this process dies without cleaning up.
toxiproxy-python keeps the API's host and port as class attributes of
``APIConsumer``: there is one server per process, and :func:`client` rebinds it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from saga_harness.chaos.spawn import Started as _Started
from saga_harness.chaos.spawn import start_module_server
from saga_harness.chaos.spawn import stop as _stop
from saga_harness.errors import ScenarioError
from saga_harness.ports import free_port

__all__ = ["client", "close", "server_description", "server_url"]

_START_TIMEOUT = 15.0


_started: _Started | None = None
_atexit_registered = False
_lock = threading.Lock()  # runs on several threads (a parallel calibration) share one server


def _bind(host: str, port: int) -> Any:
    from toxiproxy import Toxiproxy  # the client (and requests) only once a link fault needs a server

    toxi = Toxiproxy()
    toxi.update_api_consumer(host, port)  # class-level state in toxiproxy-python
    return toxi


def _wait(toxi: Any, url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if toxi.running():
                return
        except Exception:  # not listening yet
            pass
        time.sleep(0.05)
    raise ScenarioError(f"no Toxiproxy server answers at {url}; check TOXIPROXY_URL or the server's log")


def _start_binary(binary: str) -> _Started:
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [binary, "-host", "127.0.0.1", "-port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,  # a Ctrl-C meant for the harness must not kill it before cleanup
    )
    return _Started(proc, "127.0.0.1", port, binary, log)


def _start_embedded() -> _Started:
    return start_module_server("saga_harness.chaos.server", "the embedded Toxiproxy server", _START_TIMEOUT)


def server_url() -> str:
    """The URL of the Toxiproxy server in use, starting one if needed."""
    global _started, _atexit_registered
    url = os.environ.get("TOXIPROXY_URL")
    if url:
        return url if "://" in url else f"http://{url}"
    with _lock:
        if _started is None or not _started.alive():
            binary = shutil.which("toxiproxy-server")
            _started = _start_binary(binary) if binary else _start_embedded()
            if not _atexit_registered:
                atexit.register(close)
                _atexit_registered = True
        return _started.url()


def server_description() -> str:
    """Which server is in use, for logs and benchmark results."""
    if os.environ.get("TOXIPROXY_URL"):
        return f"TOXIPROXY_URL={os.environ['TOXIPROXY_URL']}"
    if _started is None:
        return "none started yet"
    return f"{_started.what} at {_started.url()}"


def client() -> Any:
    """A toxiproxy-python ``Toxiproxy`` client for the server in use (see the module docstring)."""
    url = server_url()
    parts = urlsplit(url)
    toxi = _bind(parts.hostname or "127.0.0.1", parts.port or 8474)
    _wait(toxi, url)
    return toxi


def close() -> None:
    """Stop the server this process started, if any (proxies and connections go with it)."""
    global _started
    with _lock:
        started, _started = _started, None
    if started is not None:
        _stop(started)
