"""OpenAPI fuzzing with schemathesis: the reference system passes, a broken API fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from saga_cli import saga_harness
from saga_harness.contracts.fuzz import fuzz_service
from saga_harness.ports import free_ports
from saga_harness.supervisor import ProcessSpec, Supervisor
from saga_harness.sut import ProviderInfo

HERE = Path(__file__).resolve().parent


# One of each kind (the orchestrator, the task queue, the bus, a signed command service, a service with
# stock, a consumer); `contracts fuzz` with no --service fuzzes all eleven (make demo, the slow test below).
SERVICES = ("orchestrator", "taskqueue", "eventbus", "payment", "inventory", "loyalty")


def test_every_reference_service_survives_bounded_fuzzing(tmp_path):
    only = [a for s in SERVICES for a in ("--service", s)]
    proc = saga_harness("contracts", "fuzz", "--max-examples", "3", *only, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    fuzz = json.loads((tmp_path / "run" / "contracts.json").read_text())["fuzz"]
    services = {s["service"]: s for s in fuzz["services"]}
    assert set(SERVICES) == set(services)
    assert all(s["operations"] > 0 and s["test_cases"] > 0 and s["ok"] for s in services.values())
    # The signed command endpoints were reached behind their signature check, not just refused with 401.
    report = json.loads(Path(services["payment"]["report"]).read_text())
    accepted = report["valid_rates"]["POST /commands/authorize"]["fuzzing"]["accepted"]
    assert accepted > 0


@pytest.mark.slow
def test_all_eleven_reference_services_survive_bounded_fuzzing(tmp_path):
    proc = saga_harness("contracts", "fuzz", "--max-examples", "3", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    fuzz = json.loads((tmp_path / "run" / "contracts.json").read_text())["fuzz"]
    assert len(fuzz["services"]) == 11 and all(s["ok"] for s in fuzz["services"])


@pytest.fixture
def broken_api(tmp_path):
    (port,) = free_ports(1)
    sup = Supervisor(tmp_path)
    argv = (sys.executable, "-m", "uvicorn", "brokenapi:app", "--host", "127.0.0.1", "--port", str(port))
    sup.start([ProcessSpec(name="broken", argv=argv, cwd=str(HERE), health_url=f"http://127.0.0.1:{port}/docs")])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        sup.stop()


def test_the_fuzzer_finds_a_server_error(tmp_path, broken_api):
    got = fuzz_service(ProviderInfo("broken", broken_api), tmp_path, max_examples=30, seed=1)
    assert not got.ok
    codes = {f.code for f in got.failures}
    assert "ST101" in codes  # Server error
    assert any("POST /ratio" in f.operations for f in got.failures)
    assert got.to_json()["failures"][0]["operations"]


def test_unknown_service_is_a_usage_error(tmp_path):
    proc = saga_harness("contracts", "fuzz", "--service", "nope", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert proc.returncode == 2 and "no such service" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # refused before the SUT started
