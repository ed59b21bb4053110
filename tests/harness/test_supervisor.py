"""The supervisor with real processes: health, errors, logs, faults, and orphans.

Every child here is a small HTTP server written below; its argv carries a
unique marker token, and so does the grandchild it can spawn, so the orphan
tests can ask psutil whether anything the harness started is still alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest
from saga_harness.errors import SutError
from saga_harness.ports import free_port, free_ports
from saga_harness.supervisor import ProcessSpec, Supervisor, _live_groups, busy_loops, check_health

SERVER = textwrap.dedent(
    r"""
    import http.server, os, subprocess, sys
    args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
    for i in range(30):
        print(f"boot line {i}", flush=True)
    if "exit" in args:
        print("fatal: failing on purpose", file=sys.stderr, flush=True)
        sys.exit(int(args["exit"]))
    if "grandchild" in args:
        code = "import time; time.sleep(600)"
        subprocess.Popen([sys.executable, "-c", code, "marker=" + args["marker"]])
    status = int(args.get("status", "200"))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status if self.path == "/healthz" else 404)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    print("serving pid", os.getpid(), flush=True)
    http.server.HTTPServer(("127.0.0.1", int(args["port"])), Handler).serve_forever()
    """
)


@pytest.fixture
def server_py(tmp_path: Path) -> Path:
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return path


@pytest.fixture
def marker() -> str:
    return f"sh-test-{uuid.uuid4().hex}"


def spec(
    server_py: Path, name: str, marker: str, *extra: str, port: int | None = None, timeout: float = 10.0
) -> ProcessSpec:
    port = port or free_port()
    return ProcessSpec(
        name=name,
        argv=[sys.executable, str(server_py), f"port={port}", f"marker={marker}", *extra],
        health_url=f"http://127.0.0.1:{port}/healthz",
        ready_timeout_s=timeout,
    )


def marked(marker: str) -> list[psutil.Process]:
    """Live (non-zombie) processes whose command line carries ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(marker in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_until_none_marked(marker: str, timeout: float = 10.0, but: int | None = None) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in marked(marker) if p.pid != but]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def _no_leftovers(marker: str):
    yield
    left = marked(marker)
    for proc in left:  # clean up so one failure does not leak into the next test
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    assert not left, f"processes left running: {[p.pid for p in left]}"


def test_ports_are_distinct_and_bindable():
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(1024 < p < 65536 for p in ports)


def test_start_waits_for_health_writes_logs_and_stops(tmp_path, server_py, marker):
    specs = [spec(server_py, f"svc{i}", marker, "grandchild=1") for i in range(3)]
    with Supervisor(tmp_path / "run") as sup:
        sup.start(specs)
        for s in specs:
            assert check_health(s.health_url)
        status = sup.status()
        assert set(status) == {"svc0", "svc1", "svc2"}
        assert all(st.alive and st.healthy and st.pid for st in status.values())
        assert len(marked(marker)) == 6  # 3 children + 3 grandchildren
    assert wait_until_none_marked(marker, 1.0) == []
    log = (tmp_path / "run" / "logs" / "svc1.log").read_text()
    assert "boot line 29" in log and "serving pid" in log
    assert all(not st.alive for st in sup.status().values())
    sup.stop()  # idempotent


def test_process_that_exits_gives_a_clear_error(tmp_path, server_py, marker):
    good = spec(server_py, "good", marker)
    bad = spec(server_py, "bad", marker, "exit=3")
    sup = Supervisor(tmp_path)
    with pytest.raises(SutError) as info:
        sup.start([good, bad])
    msg = str(info.value)
    log = tmp_path / "logs" / "bad.log"
    assert "'bad'" in msg and "status 3" in msg and str(log) in msg
    assert "fatal: failing on purpose" in msg and "boot line 29" in msg
    assert "boot line 10" not in msg  # only the tail is quoted
    assert "Traceback" not in msg
    # The processes of a failed start are stopped, the good one included.
    assert wait_until_none_marked(marker, 2.0) == []
    sup.stop()


def test_never_healthy_times_out_with_a_clear_error(tmp_path, server_py, marker):
    sick = spec(server_py, "sick", marker, "status=503", timeout=1.0)
    sup = Supervisor(tmp_path)
    began = time.monotonic()
    with pytest.raises(SutError) as info:
        sup.start([sick])
    assert time.monotonic() - began < 5
    msg = str(info.value)
    assert "'sick'" in msg and "within 1 s" in msg and "HTTP 503" in msg
    assert str(tmp_path / "logs" / "sick.log") in msg and "serving pid" in msg
    assert wait_until_none_marked(marker, 2.0) == []


def test_an_answer_from_another_process_on_its_port_is_not_health(tmp_path):
    # Another server took the port first: the process will fail to bind and exit,
    # but its health URL answers 200 meanwhile. That must not count as started.
    import http.server

    class Answers200(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    squatter = http.server.ThreadingHTTPServer(("127.0.0.1", port), Answers200)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    code = f"import socket, time; time.sleep(1); socket.socket().bind(('127.0.0.1', {port}))"
    sup = Supervisor(tmp_path)
    try:
        with pytest.raises(SutError, match="exited with"):
            sup.start([ProcessSpec("late", [sys.executable, "-c", code], health_url=f"http://127.0.0.1:{port}/")])
    finally:
        sup.stop()
        squatter.shutdown()


def test_missing_program_is_a_sut_error(tmp_path):
    sup = Supervisor(tmp_path)
    with pytest.raises(SutError, match="could not start process 'ghost'"):
        sup.start([ProcessSpec(name="ghost", argv=["/nonexistent/program"])])
    sup.stop()


def test_kill_pause_resume_restart(tmp_path, server_py, marker):
    s = spec(server_py, "svc", marker, "grandchild=1")
    with Supervisor(tmp_path) as sup:
        sup.start([s])
        first_pid = sup.pid("svc")

        sup.pause("svc")
        st = sup.status()["svc"]
        assert st.alive and st.paused and not st.healthy
        deadline = time.monotonic() + 2  # SIGSTOP lands asynchronously
        while {p.status() for p in marked(marker)} != {psutil.STATUS_STOPPED} and time.monotonic() < deadline:
            time.sleep(0.02)
        assert {p.status() for p in marked(marker)} == {psutil.STATUS_STOPPED}
        sup.resume("svc")
        assert sup.status()["svc"].healthy

        sup.kill("svc")  # SIGKILL to the group: the grandchild too
        assert wait_until_none_marked(marker, 2.0) == []
        st = sup.status()["svc"]
        assert not st.alive and not st.healthy and st.returncode == -signal.SIGKILL

        sup.restart("svc")
        assert sup.pid("svc") != first_pid
        assert sup.status()["svc"].healthy
        assert len(marked(marker)) == 2
        log = (tmp_path / "logs" / "svc.log").read_text()
        assert log.count("--- saga-harness: starting svc") == 2

        sup.pause("svc")
        sup.restart("svc", timeout=1.0)  # a paused process is resumed so SIGTERM lands
        assert sup.status()["svc"].healthy
    assert wait_until_none_marked(marker, 1.0) == []


def test_restart_from_a_short_lived_thread_survives_the_thread(tmp_path, server_py, marker):
    # PR_SET_PDEATHSIG fires when the forking *thread* exits; the supervisor
    # forks on a long-lived thread so this process must outlive the worker.
    with Supervisor(tmp_path) as sup:
        sup.start([spec(server_py, "svc", marker)])
        worker = threading.Thread(target=sup.restart, args=("svc",))
        worker.start()
        worker.join()
        time.sleep(0.3)
        assert sup.status()["svc"].healthy


HARNESS = textwrap.dedent(
    r"""
    import os, signal, sys, time
    from saga_harness.ports import free_port
    from saga_harness.supervisor import ProcessSpec, Supervisor

    server, marker, mode, run_dir = sys.argv[1:5]
    if mode == "custom-term":
        def on_term(sig, frame):
            print("custom handler ran", flush=True)
            os._exit(7)
        signal.signal(signal.SIGTERM, on_term)

    sup = Supervisor(run_dir)
    specs = []
    for i in range(3):
        port = free_port()
        specs.append(ProcessSpec(
            name=f"c{i}",
            argv=[sys.executable, server, f"port={port}", f"marker={marker}", "grandchild=1"],
            health_url=f"http://127.0.0.1:{port}/healthz",
        ))
    sup.start(specs)
    print("READY", flush=True)
    sys.stdin.readline()  # the test looks at the children first, then says go
    if mode == "return":
        sys.exit(0)
    if mode == "raise":
        raise RuntimeError("harness blew up")
    if mode == "with":
        with Supervisor(run_dir + "-2") as other:
            pass
        with sup:
            pass
        print("after with", sup.status()["c0"].alive, flush=True)
        time.sleep(600)
    time.sleep(600)
    """
)


def run_harness(tmp_path: Path, server_py: Path, marker: str, mode: str) -> subprocess.Popen:
    script = tmp_path / "harness_script.py"
    script.write_text(HARNESS)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(server_py), marker, mode, str(tmp_path / "run")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"harness script did not start: {line!r} {err}")
    # The test can only fail if it can see what it looks for: 3 children and
    # 3 grandchildren (the harness script carries the marker too).
    assert len([p for p in marked(marker) if p.pid != proc.pid]) == 6
    return proc


@pytest.mark.parametrize(
    ("mode", "sig", "expected_rc"),
    [
        ("return", None, 0),
        ("raise", None, 1),
        # KeyboardInterrupt re-raised after cleanup; Python then exits by SIGINT
        ("wait", signal.SIGINT, -signal.SIGINT),
        ("wait", signal.SIGTERM, -signal.SIGTERM),  # default action chained
        ("wait", signal.SIGHUP, -signal.SIGHUP),
        ("custom-term", signal.SIGTERM, 7),  # a previous handler is chained to
        ("wait", signal.SIGKILL, -signal.SIGKILL),  # pdeathsig + watchdog
    ],
    ids=["return", "raise", "sigint", "sigterm", "sighup", "chained-sigterm", "sigkill"],
)
def test_no_orphans_however_the_harness_ends(tmp_path, server_py, marker, mode, sig, expected_rc):
    proc = run_harness(tmp_path, server_py, marker, mode)
    if sig is not None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate("go\n", timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"harness did not exit: {err}")
    assert proc.returncode == expected_rc, err
    if mode == "raise":
        assert "harness blew up" in err
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in err
    if mode == "custom-term":
        assert "custom handler ran" in out
    left = wait_until_none_marked(marker)
    assert left == [], f"orphans: {[(p.pid, p.cmdline()) for p in left]}"


def test_context_manager_exit_stops_children(tmp_path, server_py, marker):
    proc = run_harness(tmp_path, server_py, marker, "with")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    try:
        assert proc.stdout.readline().strip() == "after with False"
        assert wait_until_none_marked(marker, 2.0, but=proc.pid) == []
    finally:
        proc.kill()
        proc.communicate()


def test_children_run_in_their_own_process_groups(tmp_path, server_py, marker):
    with Supervisor(tmp_path) as sup:
        sup.start([spec(server_py, "a", marker), spec(server_py, "b", marker)])
        pa, pb = sup.pid("a"), sup.pid("b")
        assert os.getpgid(pa) == pa and os.getpgid(pb) == pb
        assert os.getpgid(pa) != os.getpgrp()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity")
def test_busy_loops_are_pinned_and_stopped_on_every_way_out(tmp_path):
    with pytest.raises(RuntimeError), busy_loops(2, tmp_path, cores=[0]) as sup:
        pids = sup.pids()
        assert len(pids) == 2 and all(os.sched_getaffinity(p) == {0} for p in pids)
        assert all(psutil.Process(p).cpu_percent(0.3) > 10 for p in pids)  # they spin (two on one core)
        raise RuntimeError("the run inside failed")
    assert not _live_groups(pids), "a busy loop outlived its block"
