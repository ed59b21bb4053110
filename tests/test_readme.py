"""Every command in the README runs, as written or shortened, so the README cannot rot.

The commands are read from the README's ``sh`` blocks. Each is run in a scratch
directory with its workload shortened (fewer sagas, seconds of load instead of
a minute); its exit status must be the one the README promises (``# exits 1``
for a caught bug, 0 otherwise). A command the table below does not know how to
run fails the test: add it here when you add it to the README.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
SHORTER = [
    (r"--sagas \d+", "--sagas 30"),
    (r"--duration \S+", "--duration 4s"),
    (r"--users \d+", "--users 6"),
    (r"--max-examples \d+", "--max-examples 2"),
]
FOREGROUND = ("sut up", "contracts sink")  # run until Ctrl-C
# Long commands: run as written by the slow README test (`pytest -m slow`); in `make test` the
# same subcommands with the same options run in these tests (checked below, so this cannot drift).
HEAVY = {
    "saga-harness chaos run": ("tests/chaos/test_chaos_runs.py", '"chaos", "run"'),
    "saga-harness load run": ("tests/load/test_load.py", '"load", "run"'),
    "saga-harness contracts fuzz": ("tests/contracts/test_fuzz.py", '"contracts", "fuzz", "--max-examples"'),
    "saga-harness calibrate": ("tests/chaos/test_calibrate.py", '"--quick"'),
    "saga-harness calibrate --config": ("tests/examples/test_worked_examples.py", '"calibrate", "--config"'),
    "--contention 2": ("tests/chaos/test_calibrate.py", '"--contention", "2"'),
    "saga-harness contracts verify": ("tests/contracts/test_pact_provider.py", '"contracts", "verify", "--bugs"'),
    # `sut up` and `sut up --detach` run here; their variants with options in the `sut` command's tests.
    "saga-harness sut up --database-url": (
        "tests/harness/test_cli_sut.py",
        '"sut", "up", "--detach", "--database-url"',
    ),
    "saga-harness sut up --bugs": ("tests/harness/test_cli_sut.py", '"sut", "up", "--bugs"'),
    "saga-harness explore": (
        "tests/chaos/test_explore.py",
        '"--links", "taskqueue->payment", "--faults", "lose_answer"',
    ),
    "saga-harness replay": ("tests/chaos/test_http_fault_runs.py", '"replay", str(first / "counterexample.json")'),
}


def heavy(command: str) -> bool:
    return any(prefix in command for prefix in HEAVY)


def readme_commands() -> list[tuple[str, int]]:
    """(command, expected exit status) for every command line in the README's sh blocks."""
    out: list[tuple[str, int]] = []
    text = README.read_text()
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i].removeprefix("$ ")
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1] + lines[i].strip()
            i += 1
            if not line.startswith((".venv/bin/saga-harness", "make ", "curl ")):
                continue  # output shown after a command
            command, _, comment = line.partition("  #")
            rc = 1 if re.search(r"exits? 1", comment) else 0
            # A caught bug's exit status may be shown on a later output line ("# exit 1").
            follow = "\n".join(lines[i : i + 6])
            if "--bugs" in command and "contracts verify" in command and "exit 1" in follow:
                rc = 1
            out.append((command.strip(), rc))
    return out


def shorten(command: str) -> str:
    for pattern, repl in SHORTER:
        command = re.sub(pattern, repl, command)
    return command


class Shell:
    """Runs README commands in one scratch directory, remembering what later ones refer to."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {**os.environ, "COLUMNS": "200", "PATH": f"{BIN}:/usr/bin:/bin"}
        self.last_run: Path | None = None
        self.last_rc = 0  # the exit status of the run that made last_run
        self.saga_id: str | None = None
        self.detached = False

    def argv(self, command: str) -> list[str]:
        if command.startswith(".venv/bin/"):
            command = str(BIN) + command.removeprefix(".venv/bin")
        # The worked examples are named from the repository's root; these commands run elsewhere.
        command = re.sub(r"(?<=[\s=])fixtures/", f"{ROOT}/fixtures/", command)
        if self.last_run is not None:
            command = command.replace("runs/<run>", str(self.last_run))
        if self.saga_id:
            command = command.replace("<saga_id>", self.saga_id)
        return ["bash", "-c", command]

    def run(self, command: str, timeout: float = 600) -> subprocess.CompletedProcess:
        before = set((self.cwd / "runs").glob("*")) if (self.cwd / "runs").exists() else set()
        proc = subprocess.run(
            self.argv(command), cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        made = sorted(set((self.cwd / "runs").glob("*")) - before) if (self.cwd / "runs").exists() else []
        made = [p for p in made if (p / "verdicts.json").exists()]
        if made:
            self.last_run, self.last_rc = made[-1], proc.returncode
        return proc

    def foreground(self, command: str, check: object) -> int:
        """Start a foreground command, let ``check`` see it running, then Ctrl-C it."""
        proc = subprocess.Popen(
            self.argv(command),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            check(proc)  # type: ignore[operator]
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                rc = proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                raise
        return rc


def _wait_for(predicate: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError("timed out waiting")


def _children_of(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_the_readme_has_commands_to_check():
    commands = [c for c, _rc in readme_commands()]
    assert len(commands) > 20 and "make demo" in " ".join(commands)


def test_heavy_commands_are_run_by_the_fast_suite_too():
    # Whitespace-blind: the formatter may spread a call's arguments over several lines.
    for test_file, invocation in HEAVY.values():
        source = re.sub(r"\s+", "", (ROOT / test_file).read_text())
        assert re.sub(r"\s+", "", invocation) in source, (test_file, invocation)


@pytest.mark.timeout(1500)
def test_every_readme_command_runs_as_documented(tmp_path):
    _check_readme(tmp_path, lambda command: not heavy(command))


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_every_long_readme_command_runs_as_documented(tmp_path):
    _check_readme(tmp_path, heavy)


def _check_readme(tmp_path: Path, wanted: object) -> None:
    shell = Shell(tmp_path)
    (tmp_path / "my-scenario.yaml").write_text(re.search(r"```yaml\n(.*?)```", README.read_text(), re.S).group(1))
    (tmp_path / "events.jsonl").write_text(
        json.dumps(
            {
                "specversion": "0.2",
                "id": "e1",
                "source": "/shop",
                "type": "com.sagashop.payment.refunded",
                "data": {"saga_id": "s1", "command_id": "c1", "payment_id": "p1", "amount": 100, "applied": True},
            }
        )
        + "\n"
    )
    failures: list[str] = []
    try:
        _run_all(shell, failures, wanted)
    finally:
        if shell.detached:
            shell.run(f"{BIN / 'saga-harness'} sut down")
    assert not failures, "\n\n".join(failures)
    leftovers = [p for p in psutil.process_iter(["cmdline", "cwd"]) if _ours(p, tmp_path)]
    assert not leftovers, [p.info for p in leftovers]


def _run_all(shell: Shell, failures: list[str], wanted: object) -> None:
    for command, want in readme_commands():
        if not wanted(command):  # type: ignore[operator]
            continue
        if command.startswith("make test"):
            continue  # the command that runs this very test
        if "saga-harness check " in command:
            want = shell.last_rc  # re-judging a run reaches its verdict again
        if command.startswith("make demo"):
            # The Makefile target is `install` (a no-op once done) then exactly this:
            command = f"{BIN / 'saga-harness'} demo --runs runs"
        command = shorten(command)
        if any(f in command for f in FOREGROUND):
            rc = _foreground(shell, command)
        elif command.startswith("curl "):
            rc = _curl(shell, command)
        else:
            proc = shell.run(command)
            rc = proc.returncode
            if "validate-events" in command:
                assert "/specversion: must be '1.0', got '0.2'" in proc.stdout, proc.stdout
            if rc != want:
                failures.append(f"{command}: exit {rc}, README says {want}\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
                continue
        if rc != want:
            failures.append(f"{command}: exit {rc}, README says {want}")


def _ours(p: psutil.Process, cwd: Path) -> bool:
    try:
        return str(cwd) in (p.info.get("cwd") or "") and p.pid != os.getpid()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _foreground(shell: Shell, command: str) -> int:
    if "contracts sink" in command:
        from saga_harness.ports import free_ports

        (port,) = free_ports(1)
        command = command.replace("--port 8080", f"--port {port}")

        def check(proc: subprocess.Popen) -> None:
            url = f"http://127.0.0.1:{port}/events"
            _wait_for(lambda: _answers(url.replace("/events", "/summary")))
            event = {"specversion": "1.0", "id": "x1", "source": "/t", "type": "com.example.unknown", "data": {}}
            r = httpx.post(url, json=event, headers={"Content-Type": "application/cloudevents+json"})
            assert r.status_code in (204, 202), r.text

        return shell.foreground(command, check)

    def up(proc: subprocess.Popen) -> None:
        # All eleven components running under it, and it still in the foreground.
        _wait_for(lambda: proc.poll() is not None or len(_children_of(proc.pid)) >= 11, timeout=90)
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""

    if "--detach" in command:
        return shell.run(command).returncode
    rc = shell.foreground(command, up)
    return 0 if rc in (0, 130) else rc  # Ctrl-C is how the README says to stop it


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def _curl(shell: Shell, command: str) -> int:
    if not shell.detached:  # the README's curl examples talk to a reference system in the background
        assert shell.run(f"{BIN / 'saga-harness'} sut up --detach").returncode == 0
        shell.detached = True
    status = shell.run(f"{BIN / 'saga-harness'} sut status --json")
    if status.returncode != 0:
        return status.returncode
    shell.env["ORCH"] = json.loads(status.stdout)["services"]["orchestrator"]["url"]
    proc = shell.run(command.replace("curl -s", "curl -sf"))
    if proc.returncode == 0 and "saga_id" in proc.stdout and shell.saga_id is None:
        shell.saga_id = json.loads(proc.stdout)["saga_id"]
    return proc.returncode
