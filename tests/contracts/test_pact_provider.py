"""Provider verification: the running reference system against the consumers' pacts.

The consumer tests (``test_pact_consumers.py``) write the pact files first;
these tests replay them against real processes over real HTTP, through
``saga-harness contracts verify``.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from saga_cli import saga_harness
from saga_harness.adapters.reference import ReferenceSystem

ROOT = Path(__file__).resolve().parents[2]
PACTS = ROOT / "contracts" / "pacts"


def pact_interactions() -> set[tuple[str, str, str]]:
    out = set()
    for file in PACTS.glob("*.json"):
        doc = json.loads(file.read_text())
        for i in doc["interactions"]:
            out.add((doc["provider"]["name"], doc["consumer"]["name"], i["description"]))
    return out


def test_clean_reference_system_honours_every_pact(tmp_path):
    proc = saga_harness("contracts", "verify", "--out", str(tmp_path / "run"), cwd=tmp_path, columns=250)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    doc = json.loads((tmp_path / "run" / "contracts.json").read_text())
    pacts = doc["pacts"]
    assert pacts["ok"] and pacts["failed"] == 0
    got = {(i["provider"], i["consumer"], i["description"]) for i in pacts["interactions"]}
    # Every interaction of every pact file was replayed: HTTP ones and messages.
    assert got == pact_interactions() and len(got) >= 30
    assert {i["kind"] for i in pacts["interactions"]} == {"http", "message"}
    assert "35 passed" in proc.stdout or f"{len(got)} passed" in proc.stdout


def test_renamed_field_fails_verification_naming_provider_interaction_and_field(tmp_path):
    proc = saga_harness(
        "contracts",
        "verify",
        "--bugs",
        "payment.renamed_field",
        "--out",
        str(tmp_path / "run"),
        cwd=tmp_path,
        columns=250,
    )
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    pacts = json.loads((tmp_path / "run" / "contracts.json").read_text())["pacts"]
    failed = [i for i in pacts["interactions"] if not i["ok"]]
    assert failed and {i["provider"] for i in failed} == {"payment"}
    refund = next(i for i in failed if i["consumer"] == "email")
    assert refund["description"] == "com.sagashop.payment.refunded" and refund["kind"] == "message"
    assert any(m["path"] == "$.data" and "amount_cents" in m["reason"] for m in refund["mismatches"])
    http = [i for i in failed if i["kind"] == "http"]
    assert http and all("amount_cents" in m["reason"] for i in http for m in i["mismatches"])
    # CI sees it natively: a failing JUnit case per broken interaction.
    junit = (tmp_path / "run" / "junit.xml").read_text()
    assert 'name="email: com.sagashop.payment.refunded"' in junit and "amount_cents" in junit
    # The table on screen names the provider, the interaction and the field.
    line = next(ln for ln in proc.stdout.splitlines() if "payment ← email" in ln)
    assert "com.sagashop.payment.refunded" in line and "FAILED" in line and "amount_cents" in line


def test_provider_state_hooks_exist_only_in_test_mode(tmp_path):
    with ReferenceSystem(tmp_path / "plain") as sut:
        for name in ("inventory", "orchestrator", "loyalty"):
            r = httpx.post(f"{sut.url(name)}/_pact/provider-states", json={"state": "SKU-1 has 5 in stock"})
            assert r.status_code == 404, (name, r.text)
        r = httpx.post(f"{sut.url('payment')}/_pact/messages", json={"description": "com.sagashop.payment.authorized"})
        assert r.status_code == 404
    with ReferenceSystem(tmp_path / "test", extra_env={"SAGASHOP_TEST_MODE": "1"}) as sut:
        inv = sut.url("inventory")
        r = httpx.post(f"{inv}/_pact/provider-states", json={"state": "SKU-7 has 3 in stock", "action": "setup"})
        assert r.status_code == 200 and httpx.get(f"{inv}/stock/SKU-7").json()["available"] == 3
        r = httpx.post(f"{inv}/_pact/provider-states", json={"state": "the moon is full"})
        assert r.status_code == 400 and "{sku} has {available} in stock" in r.json()["known"]
        r = httpx.post(f"{sut.url('payment')}/_pact/messages", json={"description": "com.sagashop.payment.captured"})
        event = r.json()
        assert r.headers["content-type"].startswith("application/cloudevents+json")
        assert event["type"] == "com.sagashop.payment.captured" and event["data"]["amount_cents"] == 2500


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--pacts", "/no/such/folder"], "no such folder of pact files"),
        (["--provider", "nobody"], "no pact in"),
        (["--config", "fixtures/tripbook/missing.toml"], "no such file"),
        # a SUT without contract providers is refused before anything starts
        (["--sut", "fake"], "needs contract providers"),
    ],
)
def test_bad_verify_input_is_a_one_paragraph_error(tmp_path, args, needle):
    proc = saga_harness("contracts", "verify", *args, "--out", str(tmp_path / "run"), cwd=ROOT, columns=250)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing started
