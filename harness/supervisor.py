"""The one place where the harness starts long-running processes.

A :class:`Supervisor` starts a set of :class:`ProcessSpec` processes, each in
its own process group (so a kill reaches the grandchildren too), sends each
one's stdout and stderr to ``run_dir/logs/<name>.log``, and waits until every
health URL answers HTTP 200.

Nothing it starts may outlive the harness, however the harness ends:

* normal return or an exception: the context manager and ``atexit`` call
  :meth:`Supervisor.stop`;
* SIGINT, SIGTERM, SIGHUP: a handler stops every supervisor, then chains to the
  handler it replaced (so Ctrl-C still raises ``KeyboardInterrupt``, and a
  default SIGTERM still ends the process with SIGTERM);
* SIGKILL of the harness: each child asks the kernel for SIGKILL when its parent
  dies (``PR_SET_PDEATHSIG``), and a tiny watchdog process, which holds the
  read end of a pipe from the harness, sees end-of-file and kills the whole
  process groups (grandchildren have no death signal of their own).

Signal handlers are installed only when the first supervisor starts on the main
thread; elsewhere the other two layers still apply.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import http.client
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import psutil
from saga_harness import preload
from saga_harness.errors import SutError
from saga_harness.preload import Preloaded

__all__ = [
    "ProcessSpec",
    "busy_loops",
    "ProcessStatus",
    "Supervisor",
    "check_health",
    "install_exit_hooks",
    "spawn_detached",
    "started_pids",
    "stop_all",
]

DEFAULT_STOP_TIMEOUT_S = 5.0
_LOG_TAIL_LINES = 15
_HEALTH_PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class ProcessSpec:
    """How to start one process and how to know it is ready.

    ``env`` is laid over the harness's own environment (children need PATH,
    the virtualenv, ...). ``health_url`` must answer one of ``health_status``
    (HTTP 200) once the process is ready — or, as ``tcp://HOST:PORT``, accept a
    connection; without one, a process is ready as soon as it has started.
    ``preload``: see :mod:`saga_harness.preload`.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    cwd: str | os.PathLike[str] | None = None
    health_url: str | None = None
    ready_timeout_s: float = 30.0
    health_status: tuple[int, ...] = (200,)
    # `python -m X` of this interpreter is forked from the preloaded server (saga_harness.preload);
    # False for a program that must import in its own order (gevent's monkey-patching, say).
    preload: bool = True

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"process name {self.name!r} must be a plain file name")
        if isinstance(self.argv, str) or not self.argv:
            raise ValueError(f"process {self.name!r}: argv must be a non-empty list of strings")
        # Frozen copies: a caller mutating its list later must not change a running spec.
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))
        object.__setattr__(self, "env", {str(k): str(v) for k, v in self.env.items()})


@dataclass(frozen=True)
class ProcessStatus:
    """A process as seen right now: ``healthy`` comes from a live probe."""

    name: str
    pid: int | None
    alive: bool
    healthy: bool
    paused: bool
    returncode: int | None


def _listens(pid: int, url: str) -> bool:
    """Whether ``pid`` or one of its descendants listens on ``url``'s port (True when that cannot be told)."""
    port = urlsplit(url).port
    if port is None:
        return True
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return True  # gone: the exit status tells the rest
    for p in tree:
        try:
            conns = p.net_connections(kind="tcp")
        except psutil.AccessDenied:
            return True
        except psutil.Error:
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns):
            return True
    return False


def check_health(url: str, timeout: float = _HEALTH_PROBE_TIMEOUT_S, accept: tuple[int, ...] = (200,)) -> bool:
    """Does ``url`` answer a GET with one of ``accept`` (``tcp://``: accept a connection) within ``timeout`` seconds?"""
    return _probe(url, timeout, accept)[0]


def _probe(url: str, timeout: float, accept: tuple[int, ...] = (200,)) -> tuple[bool, str]:
    parts = urlsplit(url)
    if parts.scheme == "tcp":
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=timeout):
                return True, "connection accepted"
        except OSError as exc:
            return False, f"{type(exc).__name__}: {exc}"
    # http.client rather than urllib: urllib honours *_proxy variables, and a
    # loopback health check must never go through a proxy.
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status in accept, f"HTTP {resp.status}"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    finally:
        conn.close()


def _readiness(spec: ProcessSpec) -> str:
    url = spec.health_url or ""
    if url.startswith("tcp://"):
        return f"a connection accepted at {url.removeprefix('tcp://')}"
    statuses = " or ".join(str(s) for s in spec.health_status)
    return f"HTTP {statuses} from {url}"


# --- children die with their parent -------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


# Looked up once in the parent: the child, between fork and exec, should do as
# little as possible (no imports, no dlopen).
_PRCTL = _load_prctl()


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    prctl = _PRCTL
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != parent_pid:
            # The parent died between fork and prctl: the death signal was missed.
            os._exit(1)

    return preexec


class _Spawner:
    """Runs every fork on one thread that lives as long as the process.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not
    the process; a restart issued from a short-lived worker thread would
    otherwise see its process killed as soon as that thread ends.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="saga-harness-spawner", daemon=True)
                self._thread.start()
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((fn, fut))
        return fut.result()

    def _run(self) -> None:
        while True:
            fn, fut = self._jobs.get()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the caller, who re-raises it
                fut.set_exception(exc)


_SPAWNER = _Spawner()


# The watchdog outlives a SIGKILLed harness just long enough to kill the process
# groups it was told about. It reads "add PGID" / "del PGID" lines; end-of-file
# means the supervisor closed the pipe or its process died. Run with -I -S: no
# site, no harness import, so it starts in milliseconds.
_WATCHDOG_SOURCE = r"""
import os, signal, sys, time
for s in (signal.SIGINT, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
groups = set()
for line in sys.stdin:
    op, _, arg = line.strip().partition(" ")
    if op == "add":
        groups.add(int(arg))
    elif op == "del":
        groups.discard(int(arg))

def live(pgids):
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/" + entry + "/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z" and int(fields[2]) in pgids:
            found.add(int(fields[2]))
    return found

def send(pgids, sig):
    for pg in pgids:
        try:
            os.killpg(pg, sig)
        except OSError:
            pass

send(groups, signal.SIGTERM)
send(groups, signal.SIGCONT)
deadline = time.monotonic() + float(sys.argv[1])
while groups and time.monotonic() < deadline:
    groups = live(groups)
    time.sleep(0.05)
send(groups, signal.SIGKILL)
"""


def _live_groups(pgids: Iterable[int]) -> set[int]:
    """The process groups among ``pgids`` that still have a non-zombie member.

    ``killpg(pg, 0)`` is not enough: where PID 1 does not reap orphans (many
    containers), a dead grandchild stays a zombie in its group forever.
    """
    wanted = set(pgids)
    if not wanted:
        return set()
    if not os.path.isdir("/proc"):
        found = set()
        for pg in wanted:
            try:
                os.killpg(pg, 0)
                found.add(pg)
            except ProcessLookupError:
                pass
            except PermissionError:
                found.add(pg)
        return found
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pgrp = int(fields[2])
        if pgrp in wanted and fields[0] != b"Z":
            found.add(pgrp)
    return found


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- every supervisor is stopped when the harness ends ------------------------------

_live_supervisors: set[Supervisor] = set()
_registry_lock = threading.RLock()
_atexit_registered = False
_signals_installed = False


def _stop_all() -> None:
    with _registry_lock:
        sups = list(_live_supervisors)
    for sup in sups:
        try:
            sup.stop()
        except Exception:  # one broken supervisor must not keep the others running
            pass
    with contextlib.suppress(Exception):
        preload.shutdown()  # the fork server, once every process it forked is stopped


def _chaining_handler(signum: int, previous: Any) -> Callable[[int, FrameType | None], None]:
    def handler(sig: int, frame: FrameType | None) -> None:
        _stop_all()
        if callable(previous):
            previous(sig, frame)  # default SIGINT handler: raises KeyboardInterrupt
            return
        # The default action was to die by this signal: do exactly that.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    handler._saga_harness = True  # type: ignore[attr-defined]
    return handler


def _install_exit_hooks() -> None:
    global _atexit_registered, _signals_installed
    with _registry_lock:
        if not _atexit_registered:
            _atexit_registered = True
            atexit.register(_stop_all)
        # signal.signal works only on the main thread: a supervisor first
        # started elsewhere leaves the handlers to a later one.
        if _signals_installed or threading.current_thread() is not threading.main_thread():
            return
        _signals_installed = True
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous = signal.getsignal(sig)
            # SIG_IGN: whoever started us wants this signal ignored (nohup), so
            # the harness keeps running and must keep its processes. None: a
            # handler set outside Python, which we could not chain to.
            if previous is signal.SIG_IGN or previous is None:
                continue
            if getattr(previous, "_saga_harness", False):
                continue
            signal.signal(sig, _chaining_handler(sig, previous))


def install_exit_hooks() -> None:
    """Stop every supervisor of this process when it exits or gets SIGINT, SIGTERM or SIGHUP.

    The first supervisor started on the main thread does this itself; call it on the main
    thread first when supervisors will start on other threads (parallel runs), or Ctrl-C
    would reach the main thread without stopping their processes.
    """
    _install_exit_hooks()


def stop_all() -> None:
    """Stop every running supervisor of this process (the processes of runs being abandoned)."""
    _stop_all()


def started_pids() -> list[int]:
    """The pids of the live processes every running supervisor of this process started (the
    leaders; their children are theirs to count): whose CPU share a run measures."""
    with _registry_lock:
        sups = list(_live_supervisors)
    return [pid for sup in sups for pid in sup.pids()]


# --- the supervisor -----------------------------------------------------------------


class _Proc:
    def __init__(self, spec: ProcessSpec, popen: subprocess.Popen[bytes] | Preloaded, log_path: Path) -> None:
        self.spec = spec
        self.popen = popen
        self.log_path = log_path
        self.paused = False

    @property
    def pgid(self) -> int:
        return self.popen.pid  # start_new_session: the child leads its own group

    def alive(self) -> bool:
        return self.popen.poll() is None


class Supervisor:
    """Starts, watches and stops the harness's processes.

    Use it as a context manager (``with Supervisor(run_dir) as sup:``) or call
    :meth:`stop` yourself; either way every process is also stopped at exit.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.log_dir = self.run_dir / "logs"
        self._procs: dict[str, _Proc] = {}
        self._lock = threading.RLock()
        self._stopping = False
        self._watchdog: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- starting ------------------------------------------------------------------

    def start(self, specs: Iterable[ProcessSpec]) -> None:
        """Start ``specs`` concurrently and wait until each one is healthy.

        Raises :class:`SutError` naming the first process that exits early or
        stays unhealthy past its ``ready_timeout_s``; the processes of this
        call are then stopped (those started earlier keep running).
        """
        specs = list(specs)
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"process name(s) given twice: {', '.join(dupes)}")
        with self._lock:
            running = [n for n in names if n in self._procs and self._procs[n].alive()]
            if running:
                raise ValueError(f"already running: {', '.join(running)}; use restart()")
            self._stopping = False
        _install_exit_hooks()
        with _registry_lock:
            _live_supervisors.add(self)
        started: list[_Proc] = []
        try:
            for spec in specs:
                started.append(self._spawn(spec))
            self._wait_healthy(started)
        except BaseException:
            self._terminate(started, DEFAULT_STOP_TIMEOUT_S)
            raise

    def restart(self, name: str, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """Stop ``name`` if it runs (SIGTERM, then SIGKILL after ``timeout``),
        start it again with the same spec, and wait until it is healthy."""
        proc = self._get(name)
        self._terminate([proc], timeout)
        with self._lock:
            self._stopping = False
        self._wait_healthy([self._spawn(proc.spec)])

    def _spawn(self, spec: ProcessSpec) -> _Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        parent_pid = os.getpid()

        def fork() -> subprocess.Popen[bytes]:
            with open(log_path, "ab") as log:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                log.write(f"--- saga-harness: starting {spec.name} at {stamp}\n".encode())
                log.flush()
                return subprocess.Popen(
                    spec.argv,
                    env=env,
                    cwd=spec.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(parent_pid),
                )

        def preloaded() -> Preloaded:
            with open(log_path, "ab") as log:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                log.write(f"--- saga-harness: starting {spec.name} at {stamp} (preloaded)\n".encode())
            return preload.start(spec.argv, env, spec.cwd, log_path)

        self._ensure_watchdog()
        # `python -m X` of this interpreter: forked from the preloaded server (saga_harness.preload).
        quick = spec.preload and preload.enabled() and preload.python_module(spec.argv) is not None
        try:
            popen = _SPAWNER.call(preloaded if quick else fork)
        except OSError as exc:
            raise SutError(
                f"could not start process {spec.name!r}: {exc}. Command: {shlex.join(spec.argv)}"
                f"{f' (cwd {spec.cwd})' if spec.cwd else ''}. Check that the program exists "
                "and is executable."
            ) from None
        proc = _Proc(spec, popen, log_path)
        self._tell_watchdog(f"add {proc.pgid}")
        with self._lock:
            self._procs[spec.name] = proc
            stopping = self._stopping
        if stopping:
            # stop() ran (e.g. from a signal handler) while this fork was under way.
            self._terminate([proc], 0)
            raise SutError(f"process {spec.name!r} was started while the supervisor stopped")
        return proc

    def _wait_healthy(self, procs: list[_Proc]) -> None:
        begun = time.monotonic()
        pending = list(procs)
        last: dict[str, str] = {}
        pause = 0.02
        while pending:
            for proc in list(pending):
                rc = proc.popen.poll()
                if rc is not None:
                    raise SutError(self._exited_message(proc, rc))
                url = proc.spec.health_url
                if url is None:
                    pending.remove(proc)
                    continue
                ok, last[proc.spec.name] = _probe(url, _HEALTH_PROBE_TIMEOUT_S, proc.spec.health_status)
                if ok and not _listens(proc.popen.pid, url):
                    # Someone else answers on that port (ours lost the race to bind it and
                    # is about to exit): not healthy, whatever the answer says.
                    ok, last[proc.spec.name] = False, f"an answer from a process other than pid {proc.popen.pid}"
                if ok:
                    pending.remove(proc)
                elif time.monotonic() - begun > proc.spec.ready_timeout_s:
                    raise SutError(self._timeout_message(proc, last[proc.spec.name]))
            if pending:
                time.sleep(pause)
                pause = min(pause * 1.5, 0.2)

    # -- messages ------------------------------------------------------------------

    def _exited_message(self, proc: _Proc, rc: int) -> str:
        spec = proc.spec
        waited = f" (waited for {_readiness(spec)})" if spec.health_url else ""
        return (
            f"process {spec.name!r} (pid {proc.popen.pid}) exited with {_describe_rc(rc)} "
            f"before it became healthy{waited}. Command: {shlex.join(spec.argv)}. "
            f"Full log: {proc.log_path}.{_tail_text(proc.log_path)}"
        )

    def _timeout_message(self, proc: _Proc, last: str) -> str:
        spec = proc.spec
        return (
            f"process {spec.name!r} (pid {proc.popen.pid}) is running but did not give "
            f"{_readiness(spec)} within {spec.ready_timeout_s:g} s (last attempt: "
            f"{last}). Check that it listens on that port and that the health route returns "
            f"that, or allow it more time with ready_timeout_s. Command: "
            f"{shlex.join(spec.argv)}. Full log: {proc.log_path}.{_tail_text(proc.log_path)}"
        )

    # -- faults --------------------------------------------------------------------

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group of ``name`` (no restart, no wait)."""
        proc = self._get(name)
        _signal_group(proc.pgid, sig)
        if sig == signal.SIGSTOP:
            proc.paused = True
        elif sig == signal.SIGCONT:
            proc.paused = False

    def pause(self, name: str) -> None:
        """Freeze ``name`` and its children (SIGSTOP to the group)."""
        self.kill(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """Unfreeze ``name`` and its children (SIGCONT to the group)."""
        self.kill(name, signal.SIGCONT)

    # -- looking -------------------------------------------------------------------

    def names(self) -> list[str]:
        """The processes started so far, in start order."""
        with self._lock:
            return list(self._procs)

    def pids(self) -> list[int]:
        """The pids of its live processes (the leaders of their process groups)."""
        with self._lock:
            return [p.popen.pid for p in self._procs.values() if p.popen.returncode is None]

    def pid(self, name: str) -> int:
        """The current pid of ``name`` (it changes on restart)."""
        return self._get(name).popen.pid

    def spec(self, name: str) -> ProcessSpec:
        """The spec ``name`` was started with."""
        return self._get(name).spec

    def log_path(self, name: str) -> Path:
        """Where the output of ``name`` goes."""
        return self.log_dir / f"{name}.log"

    def status(self) -> dict[str, ProcessStatus]:
        """Every process's pid, liveness and (probed now) health."""
        with self._lock:
            procs = list(self._procs.values())

        def one(proc: _Proc) -> ProcessStatus:
            alive = proc.alive()
            # A paused process accepts connections but never answers: do not
            # wait for the probe to time out to learn what we already know.
            healthy = alive and not proc.paused
            if healthy and proc.spec.health_url:
                healthy = check_health(proc.spec.health_url, accept=proc.spec.health_status)
            return ProcessStatus(
                name=proc.spec.name,
                pid=proc.popen.pid,
                alive=alive,
                healthy=healthy,
                paused=proc.paused and alive,
                returncode=proc.popen.returncode,
            )

        if len(procs) <= 1:
            results = [one(p) for p in procs]
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(procs))) as pool:
                results = list(pool.map(one, procs))
        return {r.name: r for r in results}

    # -- stopping ------------------------------------------------------------------

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """SIGTERM every process group, wait up to ``timeout`` s, SIGKILL the rest.

        Idempotent, and safe from signal handlers and ``atexit``.
        """
        with self._lock:
            self._stopping = True
            procs = list(self._procs.values())
        self._terminate(procs, timeout)
        self._close_watchdog()
        with _registry_lock:
            _live_supervisors.discard(self)

    def _terminate(self, procs: list[_Proc], timeout: float) -> None:
        if not procs:
            return
        for proc in procs:
            proc.popen.poll()  # reap a leader that already died
            _signal_group(proc.pgid, signal.SIGTERM)
            # A paused group cannot act on SIGTERM until it runs again.
            _signal_group(proc.pgid, signal.SIGCONT)
            proc.paused = False
        deadline = time.monotonic() + timeout
        remaining = {p.pgid for p in procs}
        while True:
            for proc in procs:
                proc.popen.poll()
            remaining = _live_groups(remaining)
            if not remaining or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        for pgid in remaining:
            _signal_group(pgid, signal.SIGKILL)
        for proc in procs:
            try:
                proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:  # unkillable (D state); nothing more to do
                continue
            self._tell_watchdog(f"del {proc.pgid}")

    def _get(self, name: str) -> _Proc:
        with self._lock:
            try:
                return self._procs[name]
            except KeyError:
                known = ", ".join(self._procs) or "none"
                raise KeyError(f"no process named {name!r} (known: {known})") from None

    # -- watchdog ------------------------------------------------------------------

    def _ensure_watchdog(self) -> None:
        with self._lock:
            if self._watchdog is not None and self._watchdog.poll() is None:
                return
            grace = str(DEFAULT_STOP_TIMEOUT_S)
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG_SOURCE, grace],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Its own session: a Ctrl-C at the terminal must not kill it
                # before it has done its job.
                start_new_session=True,
            )

    def _tell_watchdog(self, line: str) -> None:
        with self._lock:
            wd = self._watchdog
            if wd is None or wd.stdin is None:
                return
            try:
                wd.stdin.write(f"{line}\n".encode())
                wd.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # watchdog gone; pdeathsig and stop() still cover the children

    def _close_watchdog(self) -> None:
        with self._lock:
            wd, self._watchdog = self._watchdog, None
        if wd is None:
            return
        try:
            if wd.stdin is not None:
                wd.stdin.close()
        except OSError:
            pass
        try:
            wd.wait(timeout=DEFAULT_STOP_TIMEOUT_S + 2)
        except subprocess.TimeoutExpired:
            wd.kill()


def _describe_rc(rc: int) -> str:
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"status {rc}"


def _tail_text(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    tail = _tail(path, lines)
    if not tail:
        return " The log is empty."
    quoted = "\n".join(f"    | {line}" for line in tail)
    return f" Last {len(tail)} log lines:\n{quoted}"


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    return [line for line in text if line.strip()][-lines:]


# A busy loop: CPU contention for a run, as on a shared CI runner. Run with -I -S (no site, no
# harness import) so it starts at once and does nothing but spin.
_BUSY_SOURCE = "while True:\n    pass\n"


@contextlib.contextmanager
def busy_loops(count: int, run_dir: str | os.PathLike[str], cores: Sequence[int] | None = None) -> Iterator[Supervisor]:
    """``count`` processes spinning at 100 % CPU while the block runs — the busy machine a run must
    give the same verdict on. The i-th is pinned to core ``cores[i % len(cores)]`` (default: core
    ``i`` of the cores this process may use) with ``os.sched_setaffinity``, from here, before the
    block starts. They are started by a :class:`Supervisor` of their own (logs in ``run_dir/logs``)
    and stopped on every way out of the block, and by its exit hooks and watchdog if the harness dies."""
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pinned = list(cores) if cores is not None else usable
    specs = [ProcessSpec(name=f"busy-{i}", argv=[sys.executable, "-I", "-S", "-c", _BUSY_SOURCE]) for i in range(count)]
    with Supervisor(run_dir) as sup:
        sup.start(specs)
        if pinned and hasattr(os, "sched_setaffinity"):
            for i, spec in enumerate(specs):
                os.sched_setaffinity(sup.pid(spec.name), {pinned[i % len(pinned)]})
        yield sup


def spawn_detached(
    argv: Sequence[str],
    *,
    log_path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start a process meant to outlive this one (the ``sut up --detach`` daemon).

    The only exception to "nothing outlives the harness", kept here so that
    every process start stays in this module. New session, no death signal,
    output appended to ``log_path``.
    """
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
