"""Starting and stopping the harness's own servers as child processes (``python -m MODULE``).

The embedded Toxiproxy server and the HTTP fault proxy run in processes of their own,
so that their loops never compete with the harness's. Each is started the same way:
``--port 0`` and the URL read back from the child's first stdout line (no race for a
"free" port), ``--parent`` so that it exits if this process dies without cleaning up,
and a new session so that a Ctrl-C meant for the harness does not kill it before the
harness's own cleanup has used it.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit

from saga_harness.errors import ScenarioError

__all__ = ["Started", "log_tail", "start_module_server", "stop"]


@dataclass
class Started:
    """A server process this process started, and where its API listens."""

    proc: subprocess.Popen[bytes]
    host: str
    port: int
    what: str
    log: IO[bytes]

    def url(self) -> str:
        """The API's base URL."""
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None


def log_tail(log: IO[bytes]) -> str:
    """The end of a server's log (stderr), for an error message."""
    log.seek(0)
    text = log.read().decode(errors="replace").strip()
    return text[-2000:] or "(nothing)"


def start_module_server(module: str, what: str, timeout: float) -> Started:
    """Start ``python -m module --port 0 --parent PID`` and wait up to ``timeout`` s for its URL.

    ``what`` names the server in the error raised (:class:`ScenarioError`, with the
    server's log) if it does not print a URL in time.
    """
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", "--parent", str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,  # a Ctrl-C meant for the harness must not kill it before cleanup
    )
    assert proc.stdout is not None
    # Port 0 and the URL read back from the child: no race for a "free" port.
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n") and time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            byte = os.read(proc.stdout.fileno(), 1)
            if not byte:
                break
            line += byte
    proc.stdout.close()
    url = urlsplit(line.decode().strip())
    if url.port is None:
        _end(proc)
        tail = log_tail(log)  # read before stop() closes the log
        stop(Started(proc, "", 0, "embedded", log))
        raise ScenarioError(f"{what} (python -m {module}) did not start within {timeout:g} s; its log: {tail}")
    return Started(proc, url.hostname or "127.0.0.1", url.port, f"embedded (python -m {module})", log)


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop(started: Started) -> None:
    """Stop the process (SIGTERM, then SIGKILL after 5 s) and close its log."""
    _end(started.proc)
    started.log.close()
