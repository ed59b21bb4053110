"""``saga-harness sut`` end to end: the real console script and the real reference system.

Each test runs the CLI in its own directory with a unique environment marker,
which every process it starts inherits; afterwards psutil must find no live
process carrying that marker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from sagashop.topology import COMPONENTS

SAGA_HARNESS = Path(sys.executable).with_name("saga-harness")
MARKER_VAR = "SAGA_HARNESS_TEST_MARKER"

pytestmark = pytest.mark.skipif(
    not SAGA_HARNESS.exists() or shutil.which(str(SAGA_HARNESS)) is None,
    reason="the saga-harness console script is not installed in this environment",
)


@pytest.fixture
def marker() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def env(marker: str) -> dict[str, str]:
    return {**os.environ, MARKER_VAR: marker}


def marked(marker: str) -> list[psutil.Process]:
    """Live (non-zombie) processes whose environment carries ``marker``."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(MARKER_VAR) == marker:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_until_none_marked(marker: str, timeout: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        left = marked(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def _no_leftovers(marker: str, tmp_path: Path, env: dict[str, str]):
    yield
    if (tmp_path / ".saga-harness" / "sut.json").exists():
        subprocess.run([SAGA_HARNESS, "sut", "down"], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    left = marked(marker)
    for proc in left:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    assert not left, f"processes left running: {[(p.pid, p.name()) for p in left]}"


def cli(tmp_path: Path, env: dict[str, str], *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SAGA_HARNESS, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def test_detached_up_status_down(tmp_path, env, marker):
    up = cli(tmp_path, env, "sut", "up", "--detach")
    assert up.returncode == 0, up.stderr + up.stdout
    assert "sut down" in up.stdout

    status = cli(tmp_path, env, "sut", "status", "--json")
    assert status.returncode == 0, status.stderr
    services = json.loads(status.stdout)["services"]
    assert list(json.loads(status.stdout)) == ["services"]
    assert set(services) == set(COMPONENTS) and len(services) == 11
    for name, svc in services.items():
        assert set(svc) == {"url", "pid", "healthy"}, name
        assert svc["url"].startswith("http://127.0.0.1:")
        assert svc["healthy"] is True, name
        assert psutil.pid_exists(svc["pid"]) and psutil.Process(svc["pid"]).status() != psutil.STATUS_ZOMBIE
    state = json.loads((tmp_path / ".saga-harness" / "sut.json").read_text())
    assert state["daemon_pid"] and state["secret"] and Path(state["run_dir"]).is_dir()
    assert (Path(state["run_dir"]) / "logs" / "payment.log").exists()
    # daemon + 11 components + the supervisor's watchdog
    assert len(marked(marker)) >= 12

    again = cli(tmp_path, env, "sut", "up", "--detach")
    assert again.returncode == 2
    assert "already running" in again.stderr and "Traceback" not in again.stderr

    # A dead component shows as unhealthy; the rest stay up.
    os.kill(services["email"]["pid"], signal.SIGKILL)
    time.sleep(0.3)
    after = json.loads(cli(tmp_path, env, "sut", "status", "--json").stdout)["services"]
    assert after["email"]["healthy"] is False and after["order"]["healthy"] is True

    table = cli(tmp_path, env, "sut", "status")
    assert table.returncode == 0 and "orchestrator" in table.stdout

    down = cli(tmp_path, env, "sut", "down")
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert not (tmp_path / ".saga-harness" / "sut.json").exists()
    assert wait_until_none_marked(marker) == []

    nothing = cli(tmp_path, env, "sut", "down")
    assert nothing.returncode == 0 and "nothing is running" in nothing.stdout
    missing = cli(tmp_path, env, "sut", "status", "--json")
    assert missing.returncode == 1 and "nothing is running" in missing.stderr  # 1: a state, not a mistake
    assert missing.stdout == ""


def start_foreground(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [SAGA_HARNESS, "sut", "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "press Ctrl-C" in line:
            return proc, lines
    proc.wait()
    pytest.fail(f"`sut up` ended early ({proc.returncode}): {''.join(lines)} {proc.stderr.read()}")


@pytest.mark.parametrize("how", ["sigint", "down"])
def test_foreground_up_stops_everything(tmp_path, env, marker, how):
    proc, lines = start_foreground(tmp_path, env)
    try:
        out = "".join(lines)
        assert all(name in out for name in COMPONENTS)
        status = cli(tmp_path, env, "sut", "status", "--json")
        services = json.loads(status.stdout)["services"]
        assert len(services) == 11 and all(s["healthy"] for s in services.values())
        if how == "sigint":
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        else:
            down = cli(tmp_path, env, "sut", "down")
            assert down.returncode == 0, down.stderr
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped." in rest and "Traceback" not in err
    assert not (tmp_path / ".saga-harness" / "sut.json").exists()
    assert wait_until_none_marked(marker) == []


def test_unknown_bug_is_a_config_error(tmp_path, env, marker):
    res = cli(tmp_path, env, "sut", "up", "--bugs", "payment.double_charge", "--detach")
    assert res.returncode == 2
    assert "--bugs: unknown seeded bug 'payment.double_charge'" in res.stderr
    assert "Did you mean 'payment.double_charge_on_redelivery'" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / ".saga-harness" / "sut.json").exists()


def test_detached_start_failure_is_reported(tmp_path, env, marker):
    # An unreachable PostgreSQL makes every component fail at start: the CLI
    # must say which one and why, and leave nothing behind.
    res = cli(tmp_path, env, "sut", "up", "--detach", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert res.returncode == 2, res.stdout
    assert "exited with status" in res.stderr and "Full log:" in res.stderr
    assert "Traceback (most recent call last)" not in res.stderr.split("Last ")[0]
    assert not (tmp_path / ".saga-harness" / "sut.json").exists()
    assert wait_until_none_marked(marker) == []


# --- the adapter underneath, in process -------------------------------------------


def test_reference_system_specs_follow_the_options(tmp_path):
    from saga_harness.adapters.reference import ReferenceSystem

    ports = {name: 20000 + i for i, name in enumerate(COMPONENTS)}
    system = ReferenceSystem(
        tmp_path, bugs="loyalty.no_event_dedupe", ports=ports, secret="s3cret", extra_env={"X_EXTRA": "1"}
    )
    specs = {s.name: s for s in system.specs()}
    assert set(specs) == set(COMPONENTS)
    pay = specs["payment"]
    assert pay.health_url == "http://127.0.0.1:20005/healthz"
    assert pay.env["SAGASHOP_BUGS"] == "loyalty.no_event_dedupe" and pay.env["SAGASHOP_SECRET"] == "s3cret"
    assert pay.env["SAGASHOP_DATABASE_URL"] == f"sqlite:///{tmp_path}/data/payment.db"
    assert pay.env["X_EXTRA"] == "1"
    assert system.url("order") == "http://127.0.0.1:20003"


def test_reference_system_rejects_bad_options(tmp_path):
    from saga_harness.adapters.reference import ReferenceSystem
    from saga_harness.errors import ConfigError

    with pytest.raises(ConfigError, match="bugs: unknown seeded bug 'nope'"):
        ReferenceSystem(tmp_path, bugs=["nope"])
    with pytest.raises(ConfigError, match=r"ports: .*missing \['taskqueue'"):
        ReferenceSystem(tmp_path, ports={"orchestrator": 1})


def test_reference_system_starts_and_stops_in_process(tmp_path):
    from saga_harness.adapters.reference import ReferenceSystem

    with ReferenceSystem(tmp_path) as system:
        services = system.services()
        assert set(services) == set(COMPONENTS)
        assert all(s.healthy and s.pid for s in services.values())
        pids = [s.pid for s in services.values()]
    assert all(not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE for p in pids)
    assert not any(s.healthy for s in system.services().values())
