"""`python -m MODULE` children forked from the preloaded server behave as if exec'd: their own group, the
command's environment, directory, argv and sys.path, output in the log, exit codes — and none outlives
the harness, however it ends."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest
from saga_harness import preload
from saga_harness.errors import SutError
from saga_harness.ports import free_port
from saga_harness.supervisor import ProcessSpec, Supervisor

pytestmark = pytest.mark.skipif(not preload.enabled(), reason="the fork server needs Linux with fork")

MODULE = textwrap.dedent(
    r"""
    import http.server, os, subprocess, sys
    args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
    print("argv", sys.argv[1:], flush=True)
    print("cwd", os.getcwd(), "path0", sys.path[0], flush=True)
    print("env", os.environ.get("SH_FLAG"), "leader", os.getpgid(0) == os.getpid(), flush=True)
    print("name", __name__, "pid", os.getpid(), flush=True)
    if "exit" in args:
        print("fatal: failing on purpose", file=sys.stderr, flush=True)
        sys.exit(int(args["exit"]))
    if "grandchild" in args:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "marker=" + args["marker"]])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    http.server.HTTPServer(("127.0.0.1", int(args["port"])), Handler).serve_forever()
    """
)


@pytest.fixture
def module_dir(tmp_path: Path) -> Path:
    # Not installed: found only because `python -m` puts the working directory first on sys.path.
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "sh_module.py").write_text(MODULE)
    return tmp_path / "code"


def spec(module_dir: Path, name: str, *extra: str, port: int | None = None) -> ProcessSpec:
    port = port or free_port()
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", "sh_module", f"port={port}", *extra],
        cwd=str(module_dir),
        env={"SH_FLAG": "from-the-spec"},
        health_url=f"http://127.0.0.1:{port}/",
        ready_timeout_s=20,
    )


def pid_in(log: Path) -> int:
    return int(re.findall(r"^name __main__ pid (\d+)$", log.read_text(), flags=re.M)[-1])


def test_only_this_interpreters_python_m_is_preloaded():
    assert preload.python_module([sys.executable, "-m", "pkg.mod", "a"]) == ("pkg.mod", ("a",))
    assert preload.python_module([sys.executable, "script.py"]) is None
    assert preload.python_module([sys.executable, "-m", "-c"]) is None
    assert preload.python_module(["/bin/sh", "-m", "x"]) is None


def test_a_preloaded_child_is_what_python_m_would_start(tmp_path, module_dir):
    with Supervisor(tmp_path / "run") as sup:
        sup.start([spec(module_dir, "svc", "x=1")])
        log = sup.log_path("svc")
        text = log.read_text()
        assert "(preloaded)" in text.splitlines()[0]
        assert "argv ['port=" in text and "'x=1']" in text
        assert f"cwd {module_dir} path0 {module_dir}" in text
        assert "env from-the-spec leader True" in text
        pid = pid_in(log)
        assert sup.pid("svc") == pid and os.getpgid(pid) == pid
        sup.kill("svc")
        deadline = time.monotonic() + 10
        while sup.status()["svc"].alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sup.status()["svc"].returncode == -signal.SIGKILL
        sup.restart("svc")
        assert pid_in(log) != pid and sup.status()["svc"].healthy
    assert not psutil.pid_exists(pid)


def test_a_preloaded_child_that_exits_early_is_reported_with_its_code_and_log(tmp_path, module_dir):
    with Supervisor(tmp_path / "run") as sup, pytest.raises(SutError) as err:
        sup.start([spec(module_dir, "svc", "exit=3")])
    message = str(err.value)
    assert "'svc'" in message and "3" in message and "fatal: failing on purpose" in message


def test_it_can_be_turned_off(tmp_path, module_dir, monkeypatch):
    monkeypatch.setenv("SAGA_HARNESS_PRELOAD", "0")
    with Supervisor(tmp_path / "run") as sup:
        sup.start([spec(module_dir, "svc")])
        assert "(preloaded)" not in sup.log_path("svc").read_text()
        assert "sh_module" in " ".join(psutil.Process(sup.pid("svc")).cmdline())


HARNESS = textwrap.dedent(
    r"""
    import sys, time
    from saga_harness.ports import free_port
    from saga_harness.supervisor import ProcessSpec, Supervisor

    code, marker, run_dir = sys.argv[1:4]
    sup = Supervisor(run_dir)
    specs = []
    for i in range(2):
        port = free_port()
        specs.append(ProcessSpec(
            name=f"c{i}", argv=[sys.executable, "-m", "sh_module", f"port={port}", f"marker={marker}", "grandchild=1"],
            cwd=code, health_url=f"http://127.0.0.1:{port}/", ready_timeout_s=20,
        ))
    sup.start(specs)
    print("READY", *sup.pids(), flush=True)
    time.sleep(600)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_no_preloaded_child_outlives_the_harness(tmp_path, module_dir, sig):
    marker = f"pl-test-{uuid.uuid4().hex}"
    script = tmp_path / "harness.py"
    script.write_text(HARNESS)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(module_dir), marker, str(tmp_path / "run")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().split()
    if not line or line[0] != "READY":
        proc.kill()
        pytest.fail(f"harness script did not start: {line} {proc.communicate()[1]}")
    children = [int(p) for p in line[1:]]
    assert len(children) == 2 and all(psutil.pid_exists(p) for p in children)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15

    def alive() -> list[int]:
        left = []
        for p in psutil.process_iter(["cmdline", "status"]):
            try:
                mine = p.pid in children or any(marker in part for part in p.info["cmdline"] or ())
                if mine and p.info["status"] != psutil.STATUS_ZOMBIE:
                    left.append(p.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return left

    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive() == [], "preloaded children or their children outlived the harness"


def test_the_fork_server_goes_when_the_harness_exits(tmp_path, module_dir):
    # A harness that returns normally: its supervisor stops the children, then the fork server and the
    # resource tracker go too, at once (a test looking for leftovers right after must find none).
    script = tmp_path / "harness.py"
    script.write_text(HARNESS.replace("time.sleep(600)", "sys.stdin.readline()"))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(module_dir), "pl-exit", str(tmp_path / "run")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().startswith("READY")
    helpers = [c.pid for c in psutil.Process(proc.pid).children() if "multiprocessing" in " ".join(c.cmdline())]
    assert helpers, "expected the fork server (and resource tracker) as children of the harness"
    proc.communicate("go\n", timeout=30)
    assert proc.returncode == 0
    assert not [p for p in helpers if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
