"""A fake saga system, in process: fast, honest, and able to fail — for testing the harness itself.

An asyncio saga engine runs on a thread of its own and serves the saga API on a
loopback port (``POST /sagas`` with an ``Idempotency-Key``, ``GET /sagas/{id}``),
so the harness, and Locust, reach it over real HTTP as they reach any system.
A saga runs its steps in order (``reserve``, ``charge``, ``ship`` by default),
each a command delivered to a simulated service through a simulated queue; a
step that fails is compensated in reverse order. Every effect is a CloudEvent
pushed to the harness's sink; every service's state is in a snapshot.

It implements the :class:`~saga_harness.sut.SystemUnderTest` protocol and the
abilities it can honestly simulate: process control (a killed service stops
answering until restarted, a paused one until continued), delivery hooks
(duplicate, delay, drop, redeliver the queue's commands), snapshots and an
event tap. It has no links a proxy could sit on and no contract providers.

Triggers: ``ok`` (completes) and ``fail_<step>`` for each step (that step fails:
compensated). Options, as ``env`` (``--env`` on the command line):

- ``FAKE_STEPS``: the steps, comma-separated (default ``reserve,charge,ship``);
- ``FAKE_STEP_S``: how long each command takes (default 0.002);
- ``FAKE_EXTERNAL``: services it names but does not run (the harness cannot kill them).

Seeded bugs (``--bugs``), each caught by the real checkers:
:data:`BUGS`.
"""

from __future__ import annotations

import asyncio
import difflib
import itertools
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from saga_harness.errors import ConfigError, SutError
from saga_harness.model import SagaModel
from saga_harness.models import load_model
from saga_harness.sut import SagaApi, SagaStatus, ServiceInfo, StartResult
from saga_harness.workload import Trigger

__all__ = ["BUGS", "FakeSystem"]

T = TypeVar("T")

BUGS: dict[str, str] = {
    "fake.double_effect_on_resend": "a request resent with the same idempotency key starts another saga (idempotency)",
    "fake.skip_compensation": "compensating, the orchestrator never undoes the first step (compensation)",
    "fake.no_command_dedupe": "a service applies a command delivered twice twice (idempotency)",
}
DEFAULT_STEPS = ("reserve", "charge", "ship")
AMOUNT_CENTS = 100  # what each step moves (the `charged` quantity)
QUEUE, ORCHESTRATOR, NOTIFY = "queue", "orchestrator", "notify"
TERMINAL = {"COMPLETED": "completed", "COMPENSATED": "compensated"}


def _pending(step: str) -> str:
    return f"{step.upper()}_PENDING"


@dataclass
class _Saga:
    saga_id: str
    key: str
    fail_at: str | None
    state: str = "STARTED"
    history: list[str] = field(default_factory=lambda: ["STARTED"])
    done: list[str] = field(default_factory=list)


class _Engine:
    """The saga system itself; every method runs on the engine's loop."""

    def __init__(self, steps: Sequence[str], step_s: float, bugs: frozenset[str]) -> None:
        self.steps = tuple(steps)
        self.step_s = step_s
        self.bugs = bugs
        self.sagas: dict[str, _Saga] = {}
        self.keys: dict[str, str] = {}
        self.records: dict[str, list[dict[str, Any]]] = {s: [] for s in self.steps}
        self.results: dict[tuple[str, str], bool] = {}  # (service, command id) -> its result
        self.messages: list[dict[str, Any]] = []
        self.down: set[str] = set()
        self.paused: set[str] = set()
        self.rules: dict[str, dict[str, Any]] = {}
        self.sent: list[tuple[float, str, dict[str, Any]]] = []  # (time, service, command), for redelivery
        self.sink_url: str | None = None
        self.http: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.rng = random.Random(0)
        self._ids = itertools.count(1)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def available(self, name: str) -> None:
        """Wait while ``name`` is killed or paused (a real process would not answer)."""
        while name in self.down or name in self.paused:
            await asyncio.sleep(0.01)

    # -- the saga API --------------------------------------------------------------
    def start(self, key: str, body: Mapping[str, Any]) -> _Saga:
        existing = self.keys.get(key)
        if existing is not None and "fake.double_effect_on_resend" not in self.bugs:
            return self.sagas[existing]
        fail_at = body.get("fail_at")
        saga = _Saga(f"fake-{next(self._ids):06d}-{uuid.uuid4().hex[:6]}", key, fail_at if fail_at else None)
        self.sagas[saga.saga_id] = saga
        self.keys[key] = saga.saga_id
        self.spawn(self.run(saga))
        return saga

    async def run(self, saga: _Saga) -> None:
        for step in self.steps:
            await self.transition(saga, _pending(step))
            command = {"id": f"{saga.saga_id}:{step}:do", "kind": "do", "saga_id": saga.saga_id}
            if not await self.deliver(step, {**command, "fail": saga.fail_at == step}):
                break
            saga.done.append(step)
        else:
            await self.transition(saga, "COMPLETED")
            event_id = await self.emit(ORCHESTRATOR, "fake.saga.completed", saga.saga_id, total_cents=self.total())
            await self.available(NOTIFY)
            self.messages.append({"saga_id": saga.saga_id, "event_id": event_id})
            return
        undo = list(reversed(saga.done))
        if "fake.skip_compensation" in self.bugs and saga.done:
            undo.remove(saga.done[0])
        if undo:
            await self.transition(saga, "COMPENSATING")
        for step in undo:
            await self.deliver(step, {"id": f"{saga.saga_id}:{step}:undo", "kind": "undo", "saga_id": saga.saga_id})
        await self.transition(saga, "COMPENSATED")
        await self.emit(ORCHESTRATOR, "fake.saga.compensated", saga.saga_id)

    def total(self) -> int:
        return AMOUNT_CENTS * len(self.steps)

    async def transition(self, saga: _Saga, state: str) -> None:
        await self.available(ORCHESTRATOR)
        saga.state = state
        saga.history.append(state)

    # -- the queue and the services ------------------------------------------------
    async def deliver(self, service: str, command: dict[str, Any]) -> bool:
        """At-least-once: the queue delivers until the service has answered (faults permitting)."""
        while True:
            await self.available(QUEUE)
            rule = next(
                (r for r in self.rules.values() if r["target"] in ("*", service) and self.rng.random() < r["p"]), None
            )
            if rule is not None and rule["delay_s"]:
                await asyncio.sleep(rule["delay_s"])
            if rule is not None and rule["drop"]:
                await asyncio.sleep(0.05)  # lost: the queue times out and delivers again
                continue
            self.sent.append((time.monotonic(), service, command))
            result = await self.apply(service, command)
            for _ in range(rule["duplicate"] if rule is not None else 0):
                await self.apply(service, command)
            return result

    async def apply(self, service: str, command: dict[str, Any]) -> bool:
        await self.available(service)
        await asyncio.sleep(self.step_s)
        seen = (service, command["id"])
        if seen in self.results and "fake.no_command_dedupe" not in self.bugs:
            return self.results[seen]  # a duplicate: the same answer, no second effect
        saga_id = command["saga_id"]
        if command["kind"] == "do":
            ok = not command.get("fail")
            if ok:
                self.records[service].append(
                    {"saga_id": saga_id, "command_id": command["id"], "status": "done", "amount_cents": AMOUNT_CENTS}
                )
                await self.emit(service, f"fake.{service}.done", saga_id, amount_cents=AMOUNT_CENTS)
        else:
            ok = True
            for record in self.records[service]:
                if record["saga_id"] == saga_id and record["status"] == "done":
                    record["status"] = "undone"
                    await self.emit(service, f"fake.{service}.undone", saga_id, amount_cents=AMOUNT_CENTS)
        self.results[seen] = ok
        return ok

    async def redeliver(self, target: str, since_s: float) -> int:
        now = time.monotonic()
        again = [(s, c) for t, s, c in list(self.sent) if now - t <= since_s and target in ("*", s)]
        for service, command in again:
            await self.apply(service, command)
        return len(again)

    async def emit(self, source: str, type_: str, saga_id: str, **data: Any) -> str:
        """A CloudEvent, pushed to the sink (structured mode) when one is tapped; its id."""
        event_id = uuid.uuid4().hex
        if self.sink_url is not None and self.http is not None:
            event = {
                "specversion": "1.0",
                "id": event_id,
                "source": f"/fake/{source}",
                "type": type_,
                "time": datetime.now(UTC).isoformat(),
                "datacontenttype": "application/json",
                "data": {"saga_id": saga_id, **data},
            }
            for _attempt in range(3):
                try:
                    async with self.http.post(
                        self.sink_url, json=event, headers={"Content-Type": "application/cloudevents+json"}
                    ) as resp:
                        await resp.read()
                    break
                except (aiohttp.ClientError, OSError, TimeoutError):
                    await asyncio.sleep(0.05)
        return event_id

    def snapshot(self) -> dict[str, Any]:
        net = sum(
            r["amount_cents"] if r["status"] == "done" else 0 for records in self.records.values() for r in records
        )
        out: dict[str, Any] = {
            ORCHESTRATOR: {
                "sagas": [
                    {"saga_id": s.saga_id, "state": s.state, "history": list(s.history)} for s in self.sagas.values()
                ],
                "ledger": {"net_cents": net},
            },
            NOTIFY: {"messages": list(self.messages)},
        }
        out.update({step: {"records": [dict(r) for r in self.records[step]]} for step in self.steps})
        return out

    # -- HTTP ------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/sagas", self._post_saga)
        app.router.add_get("/sagas/{saga_id}", self._get_saga)
        app.router.add_get("/snapshot", self._get_snapshot)
        return app

    async def _orchestrator(self) -> web.Response | None:
        if ORCHESTRATOR in self.down:
            return web.json_response({"error": "the orchestrator is down"}, status=503)
        await self.available(ORCHESTRATOR)  # paused: the answer waits
        return None

    async def _post_saga(self, request: web.Request) -> web.Response:
        if (down := await self._orchestrator()) is not None:
            return down
        key = request.headers.get("Idempotency-Key")
        if not key:
            return web.json_response({"error": "an Idempotency-Key header is required"}, status=400)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "the body is not a JSON object"}, status=400)
        saga = self.start(key, body)
        return web.json_response({"saga_id": saga.saga_id, "state": saga.state}, status=202)

    async def _get_saga(self, request: web.Request) -> web.Response:
        if (down := await self._orchestrator()) is not None:
            return down
        saga = self.sagas.get(request.match_info["saga_id"])
        if saga is None:
            return web.json_response({"error": "no such saga"}, status=404)
        return web.json_response({"saga_id": saga.saga_id, "state": saga.state, "outcome": TERMINAL.get(saga.state)})

    async def _get_snapshot(self, _request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())


def _options(env: Mapping[str, str]) -> tuple[tuple[str, ...], float, tuple[str, ...]]:
    known = {"FAKE_STEPS", "FAKE_STEP_S", "FAKE_EXTERNAL"}
    for name in env:
        if name.startswith("FAKE_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(
                f"--env {name}: the fake SUT has no such option.{hint} Options: {', '.join(sorted(known))}"
            )
    steps = tuple(s.strip() for s in env.get("FAKE_STEPS", ",".join(DEFAULT_STEPS)).split(",") if s.strip())
    reserved = {ORCHESTRATOR, QUEUE, NOTIFY}
    if not steps or len(set(steps)) != len(steps) or reserved & set(steps) or not all(s.isidentifier() for s in steps):
        raise ConfigError(
            f"--env FAKE_STEPS={env.get('FAKE_STEPS')!r}: give distinct step names (letters, digits, _), "
            f"none of {', '.join(sorted(reserved))}, e.g. FAKE_STEPS=reserve,charge,ship"
        )
    try:
        step_s = float(env.get("FAKE_STEP_S", "0.002"))
    except ValueError:
        raise ConfigError(f"--env FAKE_STEP_S={env['FAKE_STEP_S']!r}: give seconds, e.g. 0.01") from None
    external = tuple(s.strip() for s in env.get("FAKE_EXTERNAL", "").split(",") if s.strip())
    return steps, step_s, external


class FakeSystem:
    """The fake saga system as a :class:`~saga_harness.sut.SystemUnderTest` (the ``fake`` SUT plugin)."""

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        bugs: str | Sequence[str] | None = (),
        database_url: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        if database_url:
            raise ConfigError("--database-url configures the reference system; the fake SUT keeps its state in memory")
        names = [b.strip() for b in (bugs.split(",") if isinstance(bugs, str) else bugs or ()) if b.strip()]
        for name in names:
            if name not in BUGS:
                close = difflib.get_close_matches(name, BUGS, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"--bugs: the fake SUT has no seeded bug {name!r}.{hint} Its bugs: {', '.join(BUGS)}")
        self.name = "fake"
        self.run_dir = Path(run_dir)
        self.bugs = frozenset(names)
        self.steps, self.step_s, self.external = _options(extra_env or {})
        self._engine: _Engine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._url = ""

    # -- running it ------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine and its HTTP API on a loopback port (its own thread and loop)."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-sut", daemon=True)
        self._thread.start()
        try:
            self._url = self._call(self._serve(), timeout=30)
        except Exception as exc:
            self.shutdown()
            raise SutError(f"the fake SUT could not start: {type(exc).__name__}: {exc}") from None

    async def _serve(self) -> str:
        self._engine = _Engine(self.steps, self.step_s, self.bugs)
        self._engine.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._runner = web.AppRunner(self._engine.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        engine = self._engine
        if engine is not None:
            for task in list(engine.tasks):
                task.cancel()
            await asyncio.gather(*engine.tasks, return_exceptions=True)
            if engine.http is not None:
                await engine.http.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def shutdown(self) -> None:
        """Stop the engine, its API and its thread (idempotent)."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            if thread.is_alive():
                asyncio.run_coroutine_threadsafe(self._stop(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            if not thread.is_alive():
                loop.close()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return self._submit(coro).result(timeout)

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        if self._loop is None:
            coro.close()
            raise SutError("the fake SUT is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _on_engine(self, coro: Coroutine[Any, Any, T]) -> T:
        # From the harness's loop: run on the engine's and wait without blocking.
        return await asyncio.wrap_future(self._submit(coro))

    # -- the SystemUnderTest protocol ------------------------------------------------
    def services(self) -> dict[str, ServiceInfo]:
        engine = self._engine
        out = {}
        for name in (ORCHESTRATOR, QUEUE, *self.steps, NOTIFY, *self.external):
            up = self._loop is not None and engine is not None and name not in engine.down and name not in engine.paused
            out[name] = ServiceInfo(self._url or "http://127.0.0.1:0", None, bool(up) or name in self.external)
        return out

    def triggers(self) -> dict[str, Trigger]:
        body = {"customer": "c-{rand100}", "order": "o-{i}"}
        out = {"ok": Trigger("ok", {**body, "fail_at": None}, "completed")}
        out.update({f"fail_{s}": Trigger(f"fail_{s}", {**body, "fail_at": s}, "compensated") for s in self.steps})
        return out

    def default_mix(self) -> dict[str, float]:
        rest = 0.4 / len(self.steps)
        return {"ok": 0.6, **{f"fail_{s}": rest for s in self.steps}}

    def model(self) -> SagaModel:
        steps, first = self.steps, _pending(self.steps[0])
        transitions: dict[str, list[str]] = {"STARTED": [first]}
        for i, step in enumerate(steps):
            after = _pending(steps[i + 1]) if i + 1 < len(steps) else "COMPLETED"
            transitions[_pending(step)] = [after, "COMPENSATING", "COMPENSATED"]
        transitions["COMPENSATING"] = ["COMPENSATED"]
        charged = [{"event": f"fake.{s}.done", "value": "/data/amount_cents"} for s in steps]
        refunded = [{"event": f"fake.{s}.undone", "value": "/data/amount_cents"} for s in steps]
        return load_model(
            {
                "steps": [
                    {
                        "name": s,
                        "done": {"event": f"fake.{s}.done"},
                        "undone": {"event": f"fake.{s}.undone"},
                        "compensation": f"undo {s}",
                    }
                    for s in steps
                ],
                "states": {"initial": ["STARTED"], "terminal": TERMINAL, "transitions": transitions},
                "state_history": {
                    "service": ORCHESTRATOR,
                    "items": "/sagas",
                    "saga_id": "/saga_id",
                    "transitions": "/history",
                },
                "quantities": [
                    {
                        "name": "charged",
                        "plus": charged,
                        "minus": refunded,
                        "completed_equals": {"event": "fake.saga.completed", "value": "/data/total_cents"},
                    }
                ],
                "balances": [
                    {"name": "ledger", "service": ORCHESTRATOR, "quantity": "charged", "value": "/ledger/net_cents"}
                ],
                "projections": [
                    {
                        "name": "notification",
                        "service": NOTIFY,
                        "items": "/messages",
                        "saga_id": "/saga_id",
                        "unique": "/event_id",
                    }
                ],
                "agreements": [
                    {
                        "name": f"{s} record",
                        "service": s,
                        "items": "/records",
                        "field": "/status",
                        "completed": ["done"],
                        "compensated": ["undone"],
                        "required": False,
                    }
                    for s in steps
                ],
            },
            {n: t.expected_outcome for n, t in self.triggers().items()},
        )

    def allowed_hosts(self) -> list[str]:
        return []

    def saga_api(self) -> SagaApi:
        return SagaApi(
            client_url=self._url,
            start={"path": "/sagas", "method": "POST", "idempotency_header": "Idempotency-Key", "saga_id": "/saga_id"},
            status={"url": self._url + "/sagas/{saga_id}", "state": "/state"},
            terminal=dict(TERMINAL),
        )

    async def start_saga(self, http: aiohttp.ClientSession, key: str, body: Mapping[str, Any]) -> StartResult:
        async with http.post(self._url + "/sagas", json=dict(body), headers={"Idempotency-Key": key}) as resp:
            payload = await resp.json(content_type=None)
        saga_id = payload.get("saga_id") if isinstance(payload, dict) else None
        return StartResult(resp.status, saga_id, payload)

    async def saga_status(self, http: aiohttp.ClientSession, saga_id: str) -> SagaStatus:
        async with http.get(f"{self._url}/sagas/{saga_id}") as resp:
            payload = await resp.json(content_type=None)
        if resp.status != 200 or not isinstance(payload, dict):
            return SagaStatus(saga_id, None, None, {"status": resp.status, "body": payload})
        return SagaStatus(saga_id, payload.get("state"), payload.get("outcome"), payload)

    # -- process control (simulated) -------------------------------------------------
    def processes(self) -> list[str]:
        return [ORCHESTRATOR, QUEUE, *self.steps, NOTIFY]

    def kill(self, name: str, sig: int) -> None:
        self._call(self._signal(name, sig))

    def restart(self, name: str) -> None:
        self._call(self._signal(name, None))

    async def _signal(self, name: str, sig: int | None) -> None:
        if name not in self.processes():
            raise SutError(f"the fake SUT runs no process {name!r}; its processes: {', '.join(self.processes())}")
        engine = self._engine
        assert engine is not None
        if sig is None:  # restart
            engine.down.discard(name)
            engine.paused.discard(name)
        elif sig == signal.SIGSTOP:
            engine.paused.add(name)
        elif sig == signal.SIGCONT:
            engine.paused.discard(name)
        else:
            engine.down.add(name)

    # -- delivery hooks --------------------------------------------------------------
    def delivery_components(self) -> list[str]:
        return [QUEUE]

    async def delivery_fault(self, http: aiohttp.ClientSession, component: str, rule: Mapping[str, Any]) -> str:
        self._component(component)
        rule_id = uuid.uuid4().hex[:8]
        compiled = {
            "target": str(rule.get("target") or "*"),
            "p": float(rule.get("probability", 1.0)),
            "duplicate": int(rule.get("duplicate", 0) or 0),
            "delay_s": float(rule.get("delay_s", 0.0) or 0.0),
            "drop": bool(rule.get("drop", False)),
        }

        async def add() -> None:
            assert self._engine is not None
            self._engine.rules[rule_id] = compiled

        await self._on_engine(add())
        return rule_id

    async def clear_delivery_fault(self, http: aiohttp.ClientSession, component: str, rule_id: str) -> None:
        self._component(component)

        async def remove() -> None:
            assert self._engine is not None
            self._engine.rules.pop(rule_id, None)

        await self._on_engine(remove())

    async def redeliver(self, http: aiohttp.ClientSession, component: str, target: str, since_s: float) -> int:
        self._component(component)
        assert self._engine is not None
        return await self._on_engine(self._engine.redeliver(target, since_s))

    def _component(self, component: str) -> None:
        if component != QUEUE:
            raise SutError(f"the fake SUT's deliveries are its {QUEUE!r}'s; it has no component {component!r}")

    # -- snapshots and the event tap -------------------------------------------------
    async def snapshot(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(self._url + "/snapshot") as resp:
            if resp.status != 200:
                raise SutError(f"snapshot of the fake SUT: GET /snapshot answered {resp.status}")
            return dict(await resp.json())

    async def tap_events(self, http: aiohttp.ClientSession, sink_url: str) -> None:
        await self._on_engine(self._set_sink(sink_url))

    async def untap_events(self, http: aiohttp.ClientSession) -> None:
        await self._on_engine(self._set_sink(None))

    async def _set_sink(self, url: str | None) -> None:
        assert self._engine is not None
        self._engine.sink_url = url
