"""Locust workload for saga systems: start sagas with a trigger mix, resend some with
the same idempotency key (immediately, concurrently, after a delay), poll status.

Run directly: ``locust -f load/locustfile.py --host http://127.0.0.1:PORT`` (web UI),
with the SUT described by environment variables (``saga-harness load run`` sets them):

- ``SAGA_HARNESS_SUT``: JSON — ``start`` (path, method, idempotency_header, saga_id pointer,
  headers), ``status`` (``url`` — or ``path`` on the host — with {saga_id}, state pointer),
  ``terminal`` (state → outcome), ``triggers`` (name → request template), ``mix`` (name → weight).
  Without it, the reference system's API and triggers are used.
- ``SAGA_HARNESS_DUPLICATES``: share of sagas resent with the same key (default 0.1).
- ``SAGA_HARNESS_RUN_DIR``: where this process writes its history shard.

Every saga started and every answer received is written to the run's history
(one shard per Locust process), so the harness's checkers see what the load did.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from typing import Any

import gevent
from locust import FastHttpUser, between, events, task
from saga_harness.history.log import HistoryWriter, shard_path
from saga_harness.history.records import Completion, Invoke, Record, StatusSeen
from saga_harness.pointer import resolve
from saga_harness.workload import render

REFERENCE = {
    "start": {"path": "/sagas", "idempotency_header": "Idempotency-Key", "saga_id": "/saga_id"},
    "status": {"path": "/sagas/{saga_id}", "state": "/state"},
    "terminal": {"COMPLETED": "completed", "COMPENSATED": "compensated", "FAILED": "failed"},
    "triggers": {
        "ok": {
            "customer_id": "cust_{rand100}",
            "payment_token": "tok_ok",
            "items": [{"sku": "SKU-{rand100}", "qty": 1, "unit_price_cents": 1250}],
        }
    },
    "mix": {"ok": 1.0},
}
SUT: dict[str, Any] = json.loads(os.environ["SAGA_HARNESS_SUT"]) if os.environ.get("SAGA_HARNESS_SUT") else REFERENCE
DUPLICATES = float(os.environ.get("SAGA_HARNESS_DUPLICATES", "0.1"))
RUN_DIR = os.environ.get("SAGA_HARNESS_RUN_DIR")
_history: HistoryWriter | None = None
_op = 0


def record(entry: Record) -> None:
    """Append ``entry`` to this process's shard of the run's history (none without a run directory)."""
    global _history
    if RUN_DIR is None:
        return
    if _history is None:
        _history = HistoryWriter(shard_path(RUN_DIR, f"locust-{os.getpid()}"), process=f"locust-{os.getpid()}")
    _history.append(entry)


@events.quitting.add_listener
def _close(**_kw: Any) -> None:
    if _history is not None:
        _history.close()


class SagaUser(FastHttpUser):
    """A client of the saga API."""

    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.names = sorted(SUT["mix"])
        self.weights = [SUT["mix"][n] for n in self.names]

    def _start(self, key: str, trigger: str, body: dict[str, Any]) -> str | None:
        global _op
        _op += 1
        op = _op
        f = "start_saga"
        record(Invoke(f, op, key, trigger, body))
        start = SUT["start"]
        headers = {**start.get("headers", {}), start["idempotency_header"]: key}
        with self.client.request(
            start.get("method", "POST"),
            start["path"],
            json=body,
            headers=headers,
            name="start saga",
            catch_response=True,
        ) as resp:
            if resp.status_code == 0 or resp.status_code is None:
                record(Completion("info", f, op, key, trigger, error=str(resp.error)))
                resp.failure(f"no answer: {resp.error}")
                return None
            try:
                payload = resp.json()
            except ValueError:
                payload = None
            saga_id = resolve(payload, start["saga_id"], None) if isinstance(payload, dict) else None
            if 200 <= resp.status_code < 300 and saga_id:
                record(Completion("ok", f, op, key, trigger, resp.status_code, payload, str(saga_id)))
                return str(saga_id)
            record(Completion("fail", f, op, key, trigger, resp.status_code, payload, error=f"HTTP {resp.status_code}"))
            resp.failure(f"HTTP {resp.status_code}")
            return None

    @task
    def saga(self) -> None:
        trigger = self.rng.choices(self.names, self.weights)[0]
        key = f"load-{uuid.uuid4().hex}"
        variables = {
            "i": self.rng.randint(0, 10**6),
            "seq100": self.rng.randint(1, 100),
            "rand100": self.rng.randint(1, 100),
            "key": key,
            "seed": 0,
        }
        body = render(SUT["triggers"][trigger], variables)
        saga_id = self._start(key, trigger, body)
        if self.rng.random() < DUPLICATES:
            kind = self.rng.choice(["immediate", "concurrent", "delayed"])
            if kind == "immediate":
                self._start(key, trigger, body)
            elif kind == "concurrent":
                gevent.joinall([gevent.spawn(self._start, key, trigger, body) for _ in range(2)])
            else:
                gevent.spawn_later(self.rng.uniform(0.1, 1.0), self._start, key, trigger, body)
        if saga_id:
            self._poll(saga_id)

    def _poll(self, saga_id: str) -> None:
        status = SUT["status"]
        where = status.get("url") or status["path"]  # an absolute URL, or a path on the host
        for _ in range(20):
            gevent.sleep(0.25)
            with self.client.get(where.replace("{saga_id}", saga_id), name="saga status", catch_response=True) as resp:
                if resp.status_code != 200:
                    resp.failure(f"HTTP {resp.status_code}")
                    return
                state = resolve(resp.json(), status["state"], None)
                outcome = SUT["terminal"].get(str(state))
                if outcome is not None:
                    record(StatusSeen(saga_id, state, outcome))
                    return
