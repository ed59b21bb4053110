"""Pushes carry an HMAC signature; a missing or wrong one is refused with 401 and logged."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sagashop import signing

ENDPOINTS = [
    ("payment", "/commands/authorize"),
    ("payment", "/commands/capture:batch"),
    ("inventory", "/commands/release"),
    ("orchestrator", "/signals"),
    ("loyalty", "/events"),
    ("email", "/events"),
]


def _command() -> bytes:
    sid = uuid.uuid4().hex
    return json.dumps(
        {"command_id": f"{sid}:x", "saga_id": sid, "payment_token": "tok_ok", "amount_cents": 100}
    ).encode()


@pytest.mark.parametrize("component,path", ENDPOINTS)
def test_missing_signature_is_401(shop, component, path):
    r = shop.http.post(shop.url(component) + path, content=_command(), headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    assert r.json()["reason"] == "missing signature"


@pytest.mark.parametrize("component,path", ENDPOINTS)
def test_wrong_secret_is_401_and_logged(shop, component, path):
    body = _command()
    headers = {"Content-Type": "application/json", **signing.sign("not-the-secret", body)}
    r = shop.http.post(shop.url(component) + path, content=body, headers=headers)
    assert r.status_code == 401 and r.json()["reason"] == "wrong signature"
    log = shop.sut.run_dir / "logs" / f"{component}.log"
    deadline = time.monotonic() + 5
    while "rejected push" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"rejected push to {path}" in log.read_text()


def test_tampered_body_and_stale_timestamp_are_401(shop):
    body = _command()
    headers = {"Content-Type": "application/json", **signing.sign(shop.secret, body)}
    r = shop.http.post(shop.url("payment") + "/commands/authorize", content=body + b" ", headers=headers)
    assert r.status_code == 401
    old = {"Content-Type": "application/json", **signing.sign(shop.secret, body, now=time.time() - 3600)}
    r = shop.http.post(shop.url("payment") + "/commands/authorize", content=body, headers=old)
    assert r.status_code == 401 and "window" in r.json()["reason"]


def test_correct_signature_is_accepted(shop):
    r = shop.signed_post("payment", "/commands/authorize", _command())
    assert r.status_code == 200 and r.json()["status"] == "processed"
