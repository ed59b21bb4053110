"""Python processes started from a preloaded fork server: the import cost paid once, not per process.

A system under test written in Python pays its imports at every start: 1.7 CPU-seconds for one of the
reference system's services (FastAPI, SQLAlchemy, aiohttp, uvicorn), about 19 for its eleven
processes, and a chaos run restarts some of them again. When a process's command is
``<the harness's own python> -m MODULE ARGS``, the supervisor starts it instead by forking a server
process that has already imported the libraries in :data:`PRELOAD` (``multiprocessing``'s
forkserver). The child then behaves as ``python -m MODULE ARGS`` would: its own session and process
group, the environment, working directory, ``sys.path[0]`` and ``sys.argv`` of that command, its
output in the log, and it dies with the fork server, which dies with the harness.

Only third-party libraries are preloaded, never the system's own modules: those read their settings
from the environment, which is each child's own. ``SAGA_HARNESS_PRELOAD=0`` turns it off (every
process then starts with a plain ``exec``), and it is off where ``fork`` is not available.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

# Imported once by the fork server (a missing one is skipped): what the reference system and Python
# web services in general spend their start-up importing.
PRELOAD = (
    "asyncio",
    "json",
    "logging",
    "sqlite3",
    "uvloop",
    "httptools",
    "pydantic",
    "starlette.applications",
    "fastapi",
    "sqlalchemy",
    "sqlalchemy.orm",
    "aiohttp",
    "uvicorn",
    "uvicorn.main",
    "cloudevents.pydantic",
    "jsonschema",
)

_lock = threading.Lock()
_context: multiprocessing.context.BaseContext | None = None


def enabled() -> bool:
    """Are Python processes started from the fork server? (Linux, and not turned off.)"""
    return (
        os.environ.get("SAGA_HARNESS_PRELOAD", "1") != "0"
        and sys.platform.startswith("linux")
        and "forkserver" in multiprocessing.get_all_start_methods()
    )


def python_module(argv: Sequence[str]) -> tuple[str, tuple[str, ...]] | None:
    """``(MODULE, ARGS)`` when ``argv`` is ``<this interpreter> -m MODULE ARGS``, else None."""
    if len(argv) < 3 or argv[1] != "-m" or not argv[2] or argv[2].startswith("-"):
        return None
    try:
        same = os.path.samefile(argv[0], sys.executable)
    except OSError:
        return None
    return (argv[2], tuple(argv[3:])) if same else None


class Preloaded:
    """A child of the fork server, with the part of :class:`subprocess.Popen`'s interface the
    supervisor uses (``pid``, ``poll``, ``wait``, ``returncode``)."""

    def __init__(self, process: multiprocessing.process.BaseProcess, argv: Sequence[str]) -> None:
        self._process = process
        self.args = list(argv)
        self.pid: int = process.pid or 0

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code


def start(argv: Sequence[str], env: Mapping[str, str], cwd: str | None, log_path: os.PathLike[str] | str) -> Preloaded:
    """Start ``argv`` (``python -m MODULE ARGS``, see :func:`python_module`) from the fork server; returns
    once the child leads its own process group, so a signal to the group reaches it."""
    found = python_module(argv)
    if found is None:
        raise ValueError(f"not a 'python -m MODULE' command of this interpreter: {list(argv)}")
    module, args = found
    process = _ctx().Process(
        target=_run_module,
        args=(module, args, dict(env), cwd, os.fspath(log_path)),
        name=f"saga-harness:{module}",
        daemon=True,
    )
    # multiprocessing would have the child import the harness's own __main__ first (a script's
    # module-level code would run again in every child): the child needs none of it.
    main = vars(sys.modules["__main__"])
    hidden = {"__spec__": main.get("__spec__"), **({"__file__": main.pop("__file__")} if "__file__" in main else {})}
    main["__spec__"] = None
    try:
        process.start()
    finally:
        main.update(hidden)
    child = Preloaded(process, argv)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and child.poll() is None:
        try:
            if os.getpgid(child.pid) == child.pid:
                break
        except ProcessLookupError:
            break
        time.sleep(0.002)
    return child


def shutdown() -> None:
    """Stop the fork server, and multiprocessing's resource tracker it brought (the supervisor calls this
    once it has stopped every process at exit): neither lingers after the harness, even for a moment."""
    from multiprocessing import forkserver, resource_tracker

    server = forkserver._forkserver  # noqa: SLF001 - the standard library keeps no public handle
    with server._lock:  # noqa: SLF001
        pid = server._forkserver_pid  # noqa: SLF001
        if pid is None:
            return
        # Its children (every one already stopped by now) would keep it waiting: it goes at once, and
        # a child still there goes with it (its death signal).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        server._stop_unlocked()  # noqa: SLF001 - closes its pipe, reaps it, removes its socket
    tracker = resource_tracker._resource_tracker  # noqa: SLF001
    # It would end once no process held its pipe; the harness shares no memory or semaphores with
    # its children, so it has nothing to clean up.
    with contextlib.suppress(Exception):
        if tracker._pid is not None:  # noqa: SLF001
            os.kill(tracker._pid, signal.SIGKILL)  # noqa: SLF001
        tracker._stop()  # noqa: SLF001 - closes its pipe and reaps it


def _ctx() -> multiprocessing.context.BaseContext:
    global _context
    with _lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(list(PRELOAD))
            _context = ctx
        return _context


def _run_module(module: str, args: tuple[str, ...], env: dict[str, str], cwd: str | None, log_path: str) -> None:
    """In the child: become ``python -m MODULE ARGS`` started with ``env`` in ``cwd``."""
    import runpy

    os.setsid()  # its own session and process group, as the supervisor's other children
    _die_with_parent()
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)
    # Unbuffered, as the supervisor asks of every child (PYTHONUNBUFFERED): a crash's last lines land.
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    os.environ.clear()
    os.environ.update(env)
    if cwd:
        os.chdir(cwd)
    # What `python -m` puts first on sys.path (the working directory), then PYTHONPATH's entries.
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:0] = [os.getcwd(), *(os.path.abspath(p) for p in extra)]
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # what a fresh interpreter has
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _die_with_parent() -> None:
    """SIGKILL when the fork server dies (it dies with the harness): no process outlives a crash."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)
