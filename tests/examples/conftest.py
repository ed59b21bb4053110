"""Real processes for the worked examples: started from fixtures/, stopped at the end, none left behind.

The systems under fixtures/ are not installed packages: each runs from its
folder (``cd fixtures && python -m minishop orders``), so the only way they are
found is the child's working directory. Every child is its own session and
process group (a stop reaches whatever it started) and carries a token in its
environment, so the end of the session can prove by a scan of /proc that no
process of these tests outlived them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PYTHON = sys.executable
TOKEN_VAR = "SAGA_EXAMPLES_TEST_TOKEN"
TOKEN = uuid.uuid4().hex
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a started system process: ours minus anything that would switch bugs on, plus ``extra``."""
    switches = ("MINISHOP_", "HOTELBUS_", "TRIPBOOK_", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(switches)}
    env.update(extra)
    env[TOKEN_VAR] = TOKEN
    env["PYTHONUNBUFFERED"] = "1"
    return env


def leftovers() -> list[int]:
    """Pids of live processes that carry this session's token (zombies carry no environment)."""
    needle = f"{TOKEN_VAR}={TOKEN}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Proc:
    """One started process and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path
    argv: list[str]
    env: Mapping[str, str]

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """The processes one system (or one test) started; stopped together, each as a whole process group."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, Proc] = {}

    def start(self, name: str, argv: list[str], env: Mapping[str, str], port: int) -> Proc:
        """Start ``argv`` in fixtures/ in a new session; does not wait for it (see :meth:`wait_ready`)."""
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv, cwd=FIXTURES, env=child_env(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc = Proc(name, popen, port, log, list(argv), dict(env))
        self.procs[name] = proc
        return proc

    def wait_ready(self, names: list[str] | None = None, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until these processes' ports accept (all by default); one that exits first fails with its log."""
        deadline = time.monotonic() + timeout
        waiting = {name: self.procs[name] for name in (names or list(self.procs))}
        while waiting:
            for name, proc in list(waiting.items()):
                rc = proc.popen.poll()
                if rc is not None:
                    raise RuntimeError(f"{name} exited with {rc} before it listened:\n{proc.tail()}")
                if _accepts(proc.port):
                    del waiting[name]
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"not listening after {timeout} s: {sorted(waiting)}")
            time.sleep(0.05)

    def stop(self, name: str) -> None:
        """Stop one process group (see :meth:`stop_all`)."""
        self._stop([self.procs[name]])

    def restart(self, name: str) -> None:
        """Start a stopped process again, as it was started (same port, same database), and wait for it."""
        proc = self.procs[name]
        if proc.popen.poll() is None:
            raise RuntimeError(f"{name} is still running")
        self.start(name, proc.argv, proc.env, proc.port)
        self.wait_ready([name])

    def stop_all(self) -> None:
        """Stop every process group, side by side: SIGTERM, then SIGKILL what lingers; none may be left."""
        self._stop(list(self.procs.values()))

    def _stop(self, procs: list[Proc]) -> None:
        # start_new_session: each child leads its own process group, whose id is its pid.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, sig)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for proc in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(max(0.0, deadline - time.monotonic()))
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while any(_group_alive(p.popen.pid) for p in procs) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not any(_group_alive(p.popen.pid) for p in procs):
                return
        alive = [f"{p.name} (group {p.popen.pid})" for p in procs if _group_alive(p.popen.pid)]
        raise AssertionError(f"still alive after SIGKILL: {', '.join(alive)}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A group whose members are all zombies still "exists"; they are reaped by
    # their parents (the leader by popen.wait, the rest by init).
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@pytest.fixture(scope="session", autouse=True)
def no_orphans() -> Iterator[None]:
    """After every test of this folder: no process that these tests started is still running."""
    yield
    deadline = time.monotonic() + 5
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = leftovers()
    assert not left, f"processes started by tests/examples still running: {left}"


class Launcher:
    """What the test modules need to start systems (test modules of this folder cannot import each other)."""

    python = PYTHON
    fixtures = FIXTURES

    @staticmethod
    def processes(log_dir: Path) -> Processes:
        """A new, empty set of processes logging into ``log_dir``."""
        return Processes(log_dir)

    @staticmethod
    def run_to_exit(argv: list[str], env: Mapping[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a system command that is expected to exit by itself (e.g. refuse to start), in fixtures/."""
        return subprocess.run(
            argv,
            cwd=FIXTURES,
            env=child_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )


@pytest.fixture(scope="session")
def launcher() -> Launcher:
    """Starts the worked examples' processes (see :class:`Processes`)."""
    return Launcher()
