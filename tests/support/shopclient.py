"""A thin test client for the reference system running as real processes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from saga_harness.adapters.reference import ReferenceSystem
from sagashop import signing

# Deterministic triggers (see fixtures/sagashop/README.md).
TRIGGERS: dict[str, dict[str, Any]] = {
    "ok": {"customer_id": "cust_1", "payment_token": "tok_ok", "sku": "SKU-1", "qty": 1},
    "decline": {"customer_id": "cust_2", "payment_token": "tok_decline", "sku": "SKU-2", "qty": 1},
    "capture_fail": {"customer_id": "cust_3", "payment_token": "tok_capture_fail", "sku": "SKU-3", "qty": 2},
    "fraud": {"customer_id": "cust_fraud", "payment_token": "tok_ok", "sku": "SKU-4", "qty": 1},
    "out_of_stock": {"customer_id": "cust_5", "payment_token": "tok_ok", "sku": "SKU-SCARCE-3", "qty": 999},
}
EXPECTED = {
    "ok": "completed",
    "decline": "compensated",
    "capture_fail": "compensated",
    "fraud": "compensated",
    "out_of_stock": "compensated",
}
FAST_ENV = {"SAGASHOP_STEP_TIMEOUT_S": "2", "SAGASHOP_SWEEP_INTERVAL_S": "0.1"}


class Shop:
    """A thin test client for a running reference system."""

    def __init__(self, sut: ReferenceSystem) -> None:
        self.sut = sut
        self.http = httpx.Client(timeout=10)
        self.secret = sut.secret

    def url(self, component: str) -> str:
        return self.sut.url(component)

    def body(self, trigger: str = "ok", **over: Any) -> dict[str, Any]:
        t = {**TRIGGERS[trigger], **over}
        return {
            "customer_id": t["customer_id"],
            "payment_token": t["payment_token"],
            "items": [{"sku": t["sku"], "qty": t["qty"], "unit_price_cents": t.get("price", 1250)}],
        }

    def start(self, trigger: str = "ok", key: str | None = None, **over: Any) -> str:
        r = self.http.post(
            self.url("orchestrator") + "/sagas",
            json=self.body(trigger, **over),
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
        )
        assert r.status_code == 202, r.text
        return r.json()["saga_id"]

    def saga(self, saga_id: str) -> dict[str, Any]:
        r = self.http.get(f"{self.url('orchestrator')}/sagas/{saga_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def wait(self, saga_ids: list[str], timeout: float = 60) -> dict[str, dict[str, Any]]:
        """Wait until every saga has an outcome; fail naming the ones that did not."""
        deadline = time.monotonic() + timeout
        done: dict[str, dict[str, Any]] = {}
        while True:
            for sid in saga_ids:
                if sid not in done:
                    view = self.saga(sid)
                    if view["outcome"] is not None:
                        done[sid] = view
            if len(done) == len(saga_ids):
                return done
            if time.monotonic() > deadline:
                stuck = {s: self.saga(s)["state"] for s in saga_ids if s not in done}
                pytest.fail(f"{len(stuck)} saga(s) not terminal after {timeout}s: {list(stuck.items())[:5]}")
            time.sleep(0.1)

    def get(self, component: str, path: str) -> Any:
        r = self.http.get(self.url(component) + path)
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, component: str, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.http.post(self.url(component) + path, json=json, **kw)

    def signed_post(self, component: str, path: str, body: bytes, headers: dict | None = None) -> httpx.Response:
        h = {"Content-Type": "application/json", **signing.sign(self.secret, body), **(headers or {})}
        return self.http.post(self.url(component) + path, content=body, headers=h)

    def by_saga(self, component: str, path: str, key: str, saga_id: str) -> list[dict[str, Any]]:
        return [r for r in self.get(component, f"{path}?saga_id={saga_id}")[key]]

    def fault(self, component: str, **rule: Any) -> None:
        r = self.post(component, "/admin/faults", json=rule)
        assert r.status_code == 201, r.text

    def clear_faults(self) -> None:
        for c in ("taskqueue", "eventbus"):
            assert self.http.delete(self.url(c) + "/admin/faults").status_code == 200


def start_shop(tmp: Path, **kw: Any) -> ReferenceSystem:
    env = {**FAST_ENV, **kw.pop("extra_env", {})}
    sut = ReferenceSystem(run_dir=tmp, extra_env=env, **kw)
    sut.start()
    return sut
