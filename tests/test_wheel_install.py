"""The wheel in a fresh virtualenv, beside packages that own generic names: PyContracts installs
`contracts`, and pydantic one minor below the version we test with. Slow (it installs from the
package index): `pytest -m slow tests/test_wheel_install.py`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYDANTIC_BELOW = "pydantic==2.13.*"  # constraints.txt tests 2.14


def _run(*argv: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_the_wheel_installs_beside_pycontracts_and_an_older_pydantic(tmp_path):
    venv, dist, work = tmp_path / "venv", tmp_path / "dist", tmp_path / "work"
    work.mkdir()
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, ROOT, cwd=work
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = dist.glob("saga_harness-*.whl")
    assert _run(sys.executable, "-m", "venv", venv, cwd=work).returncode == 0
    py, bin_ = venv / "bin" / "python", venv / "bin"
    proc = _run(py, "-m", "pip", "install", "-q", wheel, "PyContracts", PYDANTIC_BELOW, "pytest", cwd=work, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # `contracts` is PyContracts's, not ours; ours is saga_harness.contracts.
    where = _run(py, "-c", "import importlib.util as u; print(u.find_spec('contracts').origin)", cwd=work)
    assert "site-packages/contracts/__init__.py" in where.stdout, where.stdout + where.stderr
    ours = _run(py, "-c", "import saga_harness.contracts, pydantic; print(pydantic.VERSION)", cwd=work)
    assert ours.returncode == 0 and ours.stdout.startswith("2.13."), ours.stdout + ours.stderr

    run = _run(bin_ / "saga-harness", "run", "--sagas", "20", "--out", work / "run", cwd=work)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (work / "run" / "verdicts.json").is_file() and (work / "run" / "report.html").is_file()

    plugin = _run(py, "-m", "pytest", "--help", cwd=work)
    assert "--saga-config" in plugin.stdout, plugin.stdout[-2000:]

    locustfile = _run(
        py,
        "-c",
        "import saga_harness.load, pathlib; print(pathlib.Path(saga_harness.load.__file__).parent / 'locustfile.py')",
        cwd=work,
    ).stdout.strip()
    assert locustfile.startswith(str(venv)), locustfile
    # Nothing listens on port 9: every start is "no answer", and Locust still runs and ends by itself.
    locust = _run(
        bin_ / "locust", "-f", locustfile, "--headless", "-u", "1", "-r", "1", "-t", "2s",
        "--host", "http://127.0.0.1:9", "--only-summary", cwd=work, timeout=120,
    )  # fmt: skip
    assert "start saga" in locust.stdout + locust.stderr, locust.stdout[-2000:] + locust.stderr[-2000:]
