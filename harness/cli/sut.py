"""``saga-harness sut``: start, inspect and stop the bundled reference system.

``up`` runs it in the foreground (Ctrl-C stops it) or, with ``--detach``, in a
background daemon (``python -m harness.cli.sut_daemon``) that owns the
processes. Either way the running system is described by a state file,
``.saga-harness/sut.json`` in the current directory, which ``status`` and
``down`` read. A lock file next to it, held for as long as the system runs,
makes a second ``up`` in the same directory fail cleanly.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import os
import secrets
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import psutil
import typer
from rich.console import Console
from rich.table import Table
from saga_harness.adapters.reference import ReferenceSystem, parse_bug_names
from saga_harness.cli import app, err_console
from saga_harness.errors import SutError
from saga_harness.lifecycle import Lifecycle, RunRequest
from saga_harness.supervisor import check_health, spawn_detached

sut_app = typer.Typer(
    name="sut",
    help="Start, inspect and stop the bundled reference system.",
    no_args_is_help=True,
)
app.add_typer(sut_app, name="sut")
console = Console(soft_wrap=True)

STATE_DIR = ".saga-harness"
STATE_NAME = "sut.json"
LOCK_NAME = "sut.lock"
# The daemon reports once every component is healthy or one has failed; the
# supervisor's own per-process ready timeout (60 s) bounds that, plus spawn time.
DETACH_REPORT_TIMEOUT_S = 120.0
DOWN_WAIT_S = 20.0


def state_path() -> Path:
    """The state file of a system started from the current directory."""
    return Path.cwd() / STATE_DIR / STATE_NAME


# --- commands -----------------------------------------------------------------------


@sut_app.command("up")
def up(
    bugs: Annotated[
        str | None,
        typer.Option("--bugs", metavar="NAMES", help="Seeded bugs to switch on, comma-separated."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="PostgreSQL URL; default: SQLite files under the run directory."),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="Where logs and data go; default: .saga-harness/runs/sut-TIME."),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option("--detach", help="Run in the background; stop it with `saga-harness sut down`."),
    ] = False,
) -> None:
    """Start the reference system and print its services' URLs."""
    names = parse_bug_names(bugs, "--bugs")
    path = state_path()
    _refuse_if_running(path)
    run = (run_dir or _default_run_dir()).resolve()
    if detach:
        _up_detached(names, database_url, run, path)
        return
    console.print(f"starting the reference system (run directory {run}) …")

    def ready(system: ReferenceSystem) -> None:
        console.print(_services_table(_read_state(path) or {}, live=False))
        console.print(f"logs: {system.supervisor.log_dir}")
        console.print("running; press Ctrl-C to stop.")

    serve(bugs=names, database_url=database_url, run_dir=run, state_file=path, on_ready=ready)
    console.print("stopped.")


@sut_app.command("down")
def down() -> None:
    """Stop the system started with `up --detach` (or a foreground `up`)."""
    path = state_path()
    try:
        state = _read_state(path)
    except SutError as exc:
        path.unlink(missing_ok=True)
        console.print(f"{exc} Removed it.")
        return
    if state is None:
        console.print(f"nothing is running (no state file at {path}).")
        return
    daemon = _same_process(state.get("daemon_pid"), state.get("daemon_started"))
    if daemon is not None:
        daemon.terminate()  # it stops its processes, then exits
        if not _wait_gone(daemon, DOWN_WAIT_S):
            daemon.kill()  # its watchdog then kills the process groups
            _wait_gone(daemon, 5)
    leftovers = 0
    for svc in state.get("services", {}).values():
        proc = _same_process(svc.get("pid"), svc.get("started"))
        if proc is not None:
            leftovers += 1
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    extra = f"; killed {leftovers} leftover process group(s)" if leftovers else ""
    if daemon is None:
        console.print(
            f"the reference system was no longer running (pid {state.get('daemon_pid')} had exited){extra}; "
            f"removed the stale state file {path}."
        )
    else:
        console.print(f"stopped the reference system (pid {state.get('daemon_pid')}){extra}.")


@sut_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show each service's URL, pid and health (checked now).

    Exit status: 0 the system is up; 1 nothing is running (a state of the world, not a mistake:
    scripts can test for it); 2 a usage error.
    """
    path = state_path()
    state = _read_state(path)
    if state is None:
        err_console.print(
            f"nothing is running: there is no state file at {path}. Start the reference system with "
            "`saga-harness sut up --detach` (from this directory).",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    if _same_process(state.get("daemon_pid"), state.get("daemon_started")) is None:
        err_console.print(
            f"nothing is running: the process that started the system (pid {state.get('daemon_pid')}) has "
            f"exited, so {path} is stale. Run `saga-harness sut down` to clean up.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    live = _probe_services(state)
    if as_json:
        typer.echo(json.dumps({"services": live}, indent=2))
    else:
        console.print(_services_table({**state, "services": live}, live=True))
        console.print(f"run directory: {state.get('run_dir')}")


# --- running the system (foreground and daemon) -------------------------------------


def serve(
    *,
    bugs: tuple[str, ...],
    database_url: str | None,
    run_dir: Path,
    state_file: Path,
    on_ready: Callable[[ReferenceSystem], None],
) -> None:
    """Run the reference system until SIGINT, SIGTERM or SIGHUP; then stop it (through the run
    lifecycle, like every run: processes reaped, PostgreSQL schemas dropped).

    Holds the lock next to ``state_file`` for as long as it runs, writes the
    state file once every component is healthy, calls ``on_ready``, and removes
    the state file on the way out. Start failures raise :class:`SutError`.
    """
    with _hold_lock(state_file), _signals_interrupt():
        life = Lifecycle(
            RunRequest(
                label="sut",
                out=run_dir,
                sut="reference",
                bugs=",".join(bugs) or None,
                database_url=database_url,
                observe=False,
            )
        )
        try:
            with life as run:
                assert isinstance(run.sut, ReferenceSystem)  # `sut up` runs the reference system
                _write_state(state_file, run.sut)
                on_ready(run.sut)
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass  # the way to stop: handled like a normal exit
        finally:
            _remove_state_if_ours(state_file)


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt, so ``down`` stops cleanly.

    Installed before the supervisor's own handlers, which stop the processes
    and then chain to this one.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(sig: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    saved = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _hold_lock(state_file: Path) -> Iterator[None]:
    state_file.parent.mkdir(parents=True, exist_ok=True)
    lock_path = state_file.with_name(LOCK_NAME)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SutError(
                f"the reference system is already running from {state_file.parent.parent} (lock {lock_path} is "
                "held). Stop it with `saga-harness sut down` first."
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _up_detached(bugs: tuple[str, ...], database_url: str | None, run_dir: Path, path: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "logs" / "daemon.log"
    read_fd, write_fd = os.pipe()
    options = {
        "bugs": list(bugs),
        "database_url": database_url,
        "run_dir": str(run_dir),
        "state_file": str(path),
        "status_fd": write_fd,
    }
    try:
        daemon = spawn_detached(
            [sys.executable, "-m", "saga_harness.cli.sut_daemon", json.dumps(options)],
            log_path=log,
            pass_fds=[write_fd],
        )
    finally:
        os.close(write_fd)  # the daemon holds the only write end now: EOF means it is done or dead
    console.print(f"starting the reference system in the background (run directory {run_dir}) …")
    try:
        report = _read_report(read_fd, DETACH_REPORT_TIMEOUT_S)
    except KeyboardInterrupt:
        daemon.terminate()
        daemon.wait(DOWN_WAIT_S)
        raise
    finally:
        os.close(read_fd)
    if report is None:
        daemon.terminate()
        try:
            rc = daemon.wait(DOWN_WAIT_S)
        except Exception:
            daemon.kill()
            rc = daemon.wait()
        tail = "\n".join(f"    | {line}" for line in _log_tail(log))
        raise SutError(
            f"the sut daemon (pid {daemon.pid}) ended with status {rc} without reporting whether the system "
            f"started. Its log is {log}" + (f"; last lines:\n{tail}" if tail else ".")
        )
    if "error" in report:
        daemon.wait(DOWN_WAIT_S)
        raise SutError(str(report["error"]))
    state = _read_state(path) or {}
    console.print(_services_table(state, live=False))
    console.print(f"logs: {state.get('run_dir', run_dir)}/logs")
    console.print(f"running in the background (daemon pid {daemon.pid}); stop it with `saga-harness sut down`.")


def _read_report(fd: int, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        data = os.read(fd, 65536)
        if not data:
            break
        chunks.append(data)
    try:
        return json.loads(b"".join(chunks)) if chunks else None
    except ValueError:
        return None


# --- the state file -----------------------------------------------------------------


def _write_state(path: Path, system: ReferenceSystem) -> None:
    me = psutil.Process()
    services = {}
    for name in system.supervisor.names():
        pid = system.supervisor.pid(name)
        services[name] = {
            "url": system.url(name),
            "pid": pid,
            "started": _create_time(pid),
            "health_url": system.supervisor.spec(name).health_url,
        }
    state = {
        "daemon_pid": me.pid,
        "daemon_started": me.create_time(),
        "run_dir": str(system.run_dir),
        "secret": system.secret,
        "bugs": list(system.bugs),
        "database_url": system.database_url,
        "services": services,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # The secret signs requests between components: keep it from other users.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, path)  # readers never see a half-written file


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        state = json.loads(text)
        if not isinstance(state, dict) or not isinstance(state.get("services"), dict):
            raise ValueError("not an object with 'services'")
        return state
    except ValueError as exc:
        raise SutError(f"the state file {path} is not valid ({exc}).") from None


def _remove_state_if_ours(path: Path) -> None:
    with contextlib.suppress(SutError, OSError):
        state = _read_state(path)
        if state and state.get("daemon_pid") == os.getpid():
            path.unlink()


def _refuse_if_running(path: Path) -> None:
    try:
        state = _read_state(path)
    except SutError:
        return  # a broken file is no proof of a running system; the lock decides
    if state and _same_process(state.get("daemon_pid"), state.get("daemon_started")) is not None:
        raise SutError(
            f"the reference system is already running (pid {state['daemon_pid']}, state file {path}). "
            "Stop it with `saga-harness sut down`, or see it with `saga-harness sut status`."
        )


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_process(pid: object, started: object) -> psutil.Process | None:
    """The live process ``pid`` if it is the one recorded (pids get reused)."""
    if not isinstance(pid, int):
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if isinstance(started, int | float) and abs(proc.create_time() - started) > 0.1:
            return None
        return proc
    except psutil.Error:
        return None


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    """Wait until ``proc`` has exited; a zombie counts as exited.

    ``psutil.Process.wait`` would wait for a zombie to be reaped, which never
    happens where PID 1 does not reap orphans (many containers).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _probe_services(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = state["services"]

    def one(item: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        name, svc = item
        alive = _same_process(svc.get("pid"), svc.get("started")) is not None
        health_url = svc.get("health_url") or f"{svc['url']}/healthz"
        return name, {"url": svc["url"], "pid": svc["pid"], "healthy": alive and check_health(health_url)}

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(16, len(services)))) as pool:
        return dict(pool.map(one, services.items()))


def _services_table(state: dict[str, Any], *, live: bool) -> Table:
    table = Table(title="reference system", title_justify="left")
    table.add_column("service")
    table.add_column("url")
    table.add_column("pid", justify="right")
    if live:
        table.add_column("healthy")
    for name, svc in state.get("services", {}).items():
        row = [name, svc["url"], str(svc["pid"])]
        if live:
            row.append("[green]yes[/]" if svc["healthy"] else "[red]no[/]")
        table.add_row(*row)
    return table


def _default_run_dir() -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / STATE_DIR / "runs" / f"sut-{stamp}-{secrets.token_hex(2)}"


def _log_tail(path: Path, lines: int = 15) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]
