"""Running the embedded server: the harness's client factory, ``python -m saga_harness.chaos.server`` and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import saga_harness.chaos.toxiproxy as factory

BIN = Path(sys.executable).parent / "saga-harness"


def test_the_factory_starts_the_embedded_server_and_stops_it(monkeypatch):
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)
    monkeypatch.setattr(factory.shutil, "which", lambda name: None)  # no toxiproxy-server on PATH
    try:
        toxi = factory.client()
        started = factory._started
        assert started is not None and started.what.startswith("embedded") and started.alive()
        assert factory.server_url() == started.url()  # reused, not started twice
        assert factory.server_description().startswith("embedded")
        proxy = toxi.create(upstream="127.0.0.1:9", name="factory")
        assert proxy.listen.startswith("127.0.0.1:")
        assert httpx.get(f"{started.url()}/version").status_code == 200
    finally:
        factory.close()
    assert started.proc.returncode == 0  # SIGTERM: a clean stop
    assert factory._started is None


def test_the_factory_uses_toxiproxy_url(monkeypatch, toxiproxy_url):
    from toxiproxy.api import APIConsumer

    monkeypatch.setenv("TOXIPROXY_URL", toxiproxy_url)
    toxi = factory.client()
    assert f"http://{APIConsumer.host}:{APIConsumer.port}" == toxiproxy_url
    assert toxi.running()
    assert factory._started is None


def test_python_m_chaos_server_prints_its_url_and_stops_on_sigint():
    proc = subprocess.Popen(
        [sys.executable, "-m", "saga_harness.chaos.server", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        url = proc.stdout.readline().decode().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/version").json()["version"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not BIN.exists(), reason="saga-harness console script not installed")
def test_cli_refuses_a_non_loopback_api_address():
    proc = subprocess.run(
        [str(BIN), "toxiproxy", "serve", "--host", "10.1.2.3", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 2
    assert "not a loopback address" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(not BIN.exists(), reason="saga-harness console script not installed")
def test_cli_serve_stops_cleanly_on_ctrl_c():
    proc = subprocess.Popen(
        [str(BIN), "toxiproxy", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        line = proc.stderr.readline()
        assert "toxiproxy API on http://127.0.0.1:" in line
        url = line.split(" on ", 1)[1].split()[0]
        assert httpx.get(f"{url}/proxies").json() == {}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
