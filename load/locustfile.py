"""Locust workload for saga systems: start sagas with a trigger mix (one request or a sequence of
them, as the system's start plan says), resend some (the plan's resend step, with the same key:
immediately, concurrently, after a delay), poll their status.

Run directly: ``locust -f load/locustfile.py --host http://127.0.0.1:PORT`` (web UI),
with the SUT described by environment variables (``saga-harness load run`` sets them):

- ``SAGA_HARNESS_SUT``: JSON — ``plan`` (the start plan, :meth:`StartPlan.to_json
  <saga_harness.startplan.StartPlan.to_json>`: steps, pools, resend step, outcome rules,
  status) or, for a one-request start, ``start`` (path, method, idempotency_header, saga_id
  pointer, headers); ``services`` (service -> base URL; a step on a service not listed goes to
  the host); ``status`` (``url`` — or ``path`` on the host — with {saga_id}, state pointer);
  ``terminal`` (state -> outcome); ``triggers`` (name -> ``{"request", "uses"}``, or name ->
  request); ``mix`` (name -> weight); ``members`` (pool -> its members' values, set up by the
  harness before Locust started). Without it, the reference system's API and triggers are used.
- ``SAGA_HARNESS_DUPLICATES``: share of sagas resent with the same key (default 0.1).
- ``SAGA_HARNESS_RUN_DIR``: where this process writes its history shard.

Every request and every answer (JSON or text) is written to the run's history (one shard per
Locust process), so the harness's checkers see what the load did. Templates, captures, pools
and the reading of answers are :mod:`saga_harness.startplan`'s, as in the harness's runner.
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
from saga_harness.startplan import (
    StartPlan,
    StartSequence,
    StatusSpec,
    Step,
    TemplateError,
    as_text,
    decode_answer,
    fill,
    saga_variables,
)
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
PLAN = StartPlan.from_json(SUT["plan"]) if SUT.get("plan") else StartPlan.single(SUT["start"])
URLS: dict[str, str] = dict(SUT.get("services") or {})
STATUS_URL: str = SUT["status"].get("url") or SUT["status"]["path"]  # absolute, or a path on the host
STATUS = PLAN.status or StatusSpec("", STATUS_URL, SUT["status"]["state"], dict(SUT["terminal"]))
MEMBERS: dict[str, list[dict[str, Any]]] = SUT.get("members") or {}
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


def _trigger(name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A trigger's request template and the pools it draws (``uses``)."""
    t = SUT["triggers"][name]
    if isinstance(t, dict) and set(t) <= {"request", "uses"} and "request" in t:
        return dict(t["request"]), dict(t.get("uses") or {})
    return dict(t), {}


class SagaUser(FastHttpUser):
    """A client of the saga API."""

    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.names = sorted(SUT["mix"])
        self.weights = [SUT["mix"][n] for n in self.names]

    def _step(self, seq: StartSequence, step: Step, key: str, trigger: str, request: Any) -> str:
        """Send one step (resent with the same key when unanswered, if it may be); "ok", "fail" or "unknown"."""
        global _op
        f = "start_saga"
        try:
            req = seq.request(step)
        except TemplateError as exc:
            _op += 1
            record(Invoke(f, _op, key, trigger, request, step.name))
            record(Completion("fail", f, _op, key, trigger, error=str(exc), step=step.name))
            return "fail"
        for _attempt in range(1 + (2 if step.retry_unknown else 0)):
            _op += 1
            op = _op
            record(Invoke(f, op, key, trigger, request, step.name, req.describe()))
            with self.client.request(
                req.method,
                URLS.get(req.service, "") + req.path,
                json=req.body,
                headers=dict(req.headers),
                name="start saga" if len(PLAN.saga_steps) == 1 else f"start saga: {step.name}",
                catch_response=True,
            ) as resp:
                if not resp.status_code:
                    error = str(resp.error)
                    record(Completion("info", f, op, key, trigger, error=error, saga_id=seq.saga_id, step=step.name))
                    resp.failure(f"no answer: {error}")
                    continue
                answer = decode_answer(resp.status_code, resp.headers.get("Content-Type"), resp.content or b"")
                res = seq.took(step, answer)
                outcome = "ok" if res.ok else "fail"
                record(
                    Completion(
                        outcome,
                        f,
                        op,
                        key,
                        trigger,
                        answer.status,
                        answer.value(),
                        res.saga_id,
                        res.error,
                        step.name,
                        answer.content_type,
                    )
                )
                said = PLAN.outcome(step.name, answer)
                if said is not None and res.saga_id:
                    record(StatusSeen(res.saga_id, None, said[0], {"step": step.name, **said[1]}, "answer"))
                if res.ok:
                    resp.success()
                else:
                    resp.failure(res.error or f"HTTP {answer.status}")
                return outcome
        return "unknown"

    @task
    def saga(self) -> None:
        name = self.rng.choices(self.names, self.weights)[0]
        template, uses = _trigger(name)
        key = f"load-{uuid.uuid4().hex}"
        builtins = {
            "i": self.rng.randint(0, 10**6),
            "seq100": self.rng.randint(1, 100),
            "rand100": self.rng.randint(1, 100),
            "key": key,
            "seed": 0,
        }
        members = {}
        for alias, pool in sorted(uses.items()):
            drawn = MEMBERS.get(pool) or []
            if not drawn:
                return  # the harness could set up none of this pool's members: nothing to start with
            members[alias] = (PLAN.pools[pool].kind, self.rng.choice(drawn))
        kinds = {kind: values for kind, values in members.values()}
        request = fill(render(template, builtins), {**kinds, **{a: v for a, (_k, v) in members.items()}}, partial=True)
        variables = saga_variables(request=request, members=members, **builtins)
        seq = StartSequence(PLAN.saga_steps, variables, key=key)
        reached = set()
        for step in seq.runs():
            reached.add(step.name)
            if self._step(seq, step, key, name, request) != "ok":
                break
        resend = PLAN.resend_step
        if resend.name in reached and self.rng.random() < DUPLICATES:
            kind = self.rng.choice(["immediate", "concurrent", "delayed"])
            if kind == "immediate":
                self._step(seq, resend, key, name, request)
            elif kind == "concurrent":
                gevent.joinall([gevent.spawn(self._step, seq, resend, key, name, request) for _ in range(2)])
            else:
                gevent.spawn_later(self.rng.uniform(0.1, 1.0), self._step, seq, resend, key, name, request)
        if seq.saga_id:
            self._poll(seq.saga_id)

    def _poll(self, saga_id: str) -> None:
        """Read the saga's status (at ``[saga.status].service``) until it is terminal, 20 times at most."""
        url = as_text(fill(STATUS_URL, {"saga_id": saga_id}, partial=True))
        last = None
        for _ in range(20):
            gevent.sleep(0.25)
            with self.client.get(url, name="saga status", catch_response=True) as resp:
                answer = decode_answer(resp.status_code or 0, resp.headers.get("Content-Type"), resp.content or b"")
                reading = STATUS.read(answer)
                if reading is None:
                    resp.failure(f"HTTP {answer.status}")
                    continue
                resp.success()
                mark = json.dumps([reading.state, reading.outcome], default=str)
                if mark != last:
                    last = mark
                    record(StatusSeen(saga_id, reading.state, reading.outcome, dict(reading.fields)))
                if reading.outcome is not None:
                    return
