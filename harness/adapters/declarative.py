"""Any HTTP saga system, described by a ``saga-harness.toml`` (see :mod:`saga_harness.config`).

:func:`declarative_system` builds the adapter with exactly the abilities the
description declares: process control over the services it starts (never the
``external`` ones) and link routing over its ``[[links]]`` always; contract
providers with ``[contracts]``, snapshots with ``[snapshots]``, an event tap with
``[events]``, a drain signal with ``[drain.pending]`` and a retry interval with
``[drain] retry_interval_s``. It has no delivery hooks: nothing in a description reaches into
a system's own deliveries.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from saga_harness.adapters.http import get, send
from saga_harness.config import OUTCOMES, SutConfig, check_model, fill, load_config, uses_sink
from saga_harness.errors import ConfigError, SutError
from saga_harness.model import SagaModel
from saga_harness.pointer import resolve
from saga_harness.ports import free_ports
from saga_harness.startplan import (
    MISSING,
    EventStates,
    Lookup,
    OutcomeRule,
    Pool,
    StartPlan,
    StartSequence,
    StatusSpec,
    Step,
    as_text,
)
from saga_harness.startplan import fill as fill_template
from saga_harness.supervisor import ProcessSpec, Supervisor, check_health
from saga_harness.sut import LinkInfo, ProviderInfo, SagaApi, SagaStatus, ServiceInfo, Signing, StartResult
from saga_harness.workload import Trigger


def plan_of(config: SutConfig) -> StartPlan:
    """The start plan a description gives: its steps, pools, resend step, outcome rules, status and lookup."""
    saga = config.saga
    steps = tuple(
        Step(
            name=s.name,
            service=s.service,
            path=s.path,
            method=s.method,
            headers=dict(s.headers),
            body=s.body,
            idempotency_header=s.idempotency_header,
            capture=dict(s.capture),
            saga_id=s.saga_id,
            expect=tuple(s.expect),
            once_per=s.once_per,
            when=s.when,
            retry_unknown=s.retry_unknown if s.retry_unknown is not None else bool(s.idempotency_header),
            timeout_s=s.timeout_s,
        )
        for s in saga.start
    )
    rules: list[OutcomeRule] = []
    if saga.outcome is not None:
        for outcome in OUTCOMES:
            for r in getattr(saga.outcome, outcome):
                status = (r.status,) if isinstance(r.status, int) else tuple(r.status or ())
                rules.append(
                    OutcomeRule(
                        r.step or saga.outcome.step,
                        outcome,
                        status,
                        r.text,
                        r.pointer,
                        r.equals,
                        "equals" in r.model_fields_set,
                        dict(r.record),
                    )
                )
    st = saga.status
    ev = st.from_events
    status = StatusSpec(
        st.service,
        st.path,
        st.state,
        dict(saga.terminal),
        dict(st.record),
        st.during_start,
        tuple(st.found),
        EventStates(ev.saga_id, ev.state, dict(ev.states), dict(ev.record)) if ev else None,
    )
    lk = saga.lookup
    lookup = Lookup(lk.service, lk.path, lk.saga_id, lk.method, dict(lk.headers), tuple(lk.found)) if lk else None
    pools = {n: Pool(n, p.kind or n, p.size, dict(p.values)) for n, p in config.pools.items()}
    return StartPlan(steps, pools, saga.resend.step if saga.resend else None, tuple(rules), status, lookup)


class DeclarativeSystem:
    """A :class:`~saga_harness.sut.SystemUnderTest` built from a SUT description, with process
    control and link routing (build one with :func:`declarative_system`)."""

    def __init__(
        self,
        config: SutConfig,
        run_dir: str | os.PathLike[str],
        *,
        config_path: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.config_path = config_path
        self.base_dir = config_path.parent.resolve() if config_path else Path.cwd()
        self.run_dir = Path(run_dir).resolve()
        self.extra_env = dict(extra_env or {})
        self.supervisor = Supervisor(self.run_dir)
        self.ports: dict[str, int] = {}
        self._routes: dict[str, str] = {}  # link name -> URL override (a chaos proxy), see route()
        self._poller: asyncio.Task | None = None
        self.plan = plan_of(config)
        self.sink_url: str | None = None  # the harness's sink, when a service is given ${sink_url}

    @classmethod
    def from_file(cls, path: str | Path, run_dir: str | os.PathLike[str], **kw: Any) -> DeclarativeSystem:
        """The adapter for the description at ``path`` (see :func:`declarative_system`)."""
        return declarative_system(load_config(path), run_dir, config_path=Path(path), **kw)

    # -- processes ---------------------------------------------------------
    def _pick_ports(self) -> None:
        if self.ports:
            return
        owned = [n for n, s in self.config.services.items() if not s.external]
        free = iter(free_ports(len(owned)))
        for name, svc in self.config.services.items():
            if svc.external:
                continue
            self.ports[name] = svc.port or next(free)

    def url(self, name: str) -> str:
        svc = self.config.services.get(name)
        if svc is None:
            raise KeyError(f"no service {name!r}; known: {', '.join(self.config.services)}")
        if svc.external:
            return str(svc.url).rstrip("/")
        self._pick_ports()
        return f"http://127.0.0.1:{self.ports[name]}"

    def _variables(self, name: str) -> dict[str, str]:
        variables = {"python": sys.executable, "run_dir": str(self.run_dir), "config_dir": str(self.base_dir)}
        if self.sink_url is not None:
            variables["sink_url"] = self.sink_url
        if name in self.ports:
            variables["port"] = str(self.ports[name])
        for other in self.config.services:
            variables[f"url:{other}"] = self.url(other)
        for link in self.config.links:
            variables[f"link:{link.name}"] = self._routes.get(link.name, self.url(link.target))
        return variables

    def specs(self) -> list[ProcessSpec]:
        self._pick_ports()
        out = []
        for name, svc in self.config.services.items():
            if svc.external:
                continue
            where = f"services.{name}"
            variables = self._variables(name)
            # The system's own switches: [env] under the service's env, --env over both.
            env = {**self.config.env, **fill(svc.env, variables, f"{where}.env"), **self.extra_env}
            cwd = fill(svc.cwd, variables, f"{where}.cwd") if svc.cwd else str(self.base_dir)
            out.append(
                ProcessSpec(
                    name=name,
                    argv=tuple(fill(svc.command, variables, f"{where}.command")),
                    env=env,
                    cwd=str((self.base_dir / cwd).resolve()),
                    health_url=self._health_url(name),
                    ready_timeout_s=svc.ready_timeout_s,
                    health_status=tuple(svc.health_status),
                )
            )
        return out

    def _health_url(self, name: str) -> str | None:
        svc = self.config.services[name]
        health = svc.health or (None if svc.external else "tcp")
        if health is None:
            return None
        if health == "tcp":
            return "tcp://" + self.url(name).split("://", 1)[1].split("/", 1)[0]
        return self.url(name) + health

    def push_events_to(self, sink_url: str) -> None:
        """The sink's URL, for ``${sink_url}`` in the services' command and env (set before start)."""
        self.sink_url = sink_url

    def start(self) -> None:
        if uses_sink(self.config) and self.sink_url is None:
            raise SutError(
                f"{self.config_path or self.name}: a service is given ${{sink_url}}, but no event sink was started "
                "for it; start the system through the harness's run lifecycle (saga-harness run, chaos, load, sut up)"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.supervisor.start(self.specs())
        for name, svc in self.config.services.items():
            url = self._health_url(name)
            if svc.external and url is not None and not check_health(url, accept=tuple(svc.health_status)):
                raise SutError(
                    f"external service {name!r} is not ready: {url} does not answer "
                    f"{' or '.join(map(str, svc.health_status))}; start it first, or fix services.{name}.url "
                    f"(or its health) in {self.config_path}"
                )

    def shutdown(self) -> None:
        """Stop every process the harness started (external services are left alone)."""
        self.supervisor.stop()

    def services(self) -> dict[str, ServiceInfo]:
        status = self.supervisor.status()
        out = {}
        for name, svc in self.config.services.items():
            st = status.get(name)
            out[name] = ServiceInfo(
                self.url(name),
                st.pid if st and st.alive else None,
                bool(st and st.healthy) if not svc.external else True,
            )
        return out

    def processes(self) -> list[str]:
        """The services the harness starts (not the external ones)."""
        return [n for n, s in self.config.services.items() if not s.external]

    def links(self) -> list[LinkInfo]:
        out = []
        for link in self.config.links:
            target = self.url(link.target).removeprefix("http://").removeprefix("https://")
            out.append(LinkInfo(link.name, link.source, link.target, target))
        return out

    def route(self, link: str, address: str) -> None:
        known = [link.name for link in self.config.links]
        if link not in known:
            raise ConfigError(
                f"{self.config_path or self.name}: no link {link!r} under [[links]]; "
                f"links: {', '.join(known) or 'none'}"
            )
        self._routes[link] = address

    def triggers(self) -> dict[str, Trigger]:
        return {
            n: Trigger(n, t.request, t.expected_outcome, t.burst, dict(t.uses), t.expectation())
            for n, t in self.config.triggers.items()
        }

    def switches(self) -> dict[str, str]:
        """``[env]``: what every started service gets (``--env`` overrides it)."""
        return dict(self.config.env)

    def pools(self) -> dict[str, Pool]:
        """The description's pools (``[pools.NAME]``)."""
        return dict(self.plan.pools)

    def default_mix(self) -> dict[str, float]:
        return dict(self.config.mix)

    def allowed_hosts(self) -> list[str]:
        return list(self.config.allowed_hosts)

    def client_urls(self) -> dict[str, str]:
        """Service -> the URL a client uses for it (a proxy when one is on the client's link)."""
        return {n: self._routes.get(f"client->{n}") or self.url(n) for n in self.config.services}

    def saga_api(self) -> SagaApi:
        first = next(s for s in self.config.saga.start if s.once_per is None)
        status = self.config.saga.status
        urls = self.client_urls()
        return SagaApi(
            client_url=urls[first.service],
            start={
                "path": first.path,
                "method": first.method,
                "idempotency_header": first.idempotency_header,
                "saga_id": first.saga_id,
                "headers": dict(first.headers),
            },
            status={"url": self.url(status.service) + status.path, "state": status.state},
            terminal=dict(self.config.saga.terminal),
            plan=self.plan.to_json(),
            services=urls,
        )

    def model(self) -> SagaModel:
        where = self.config_path or self.name
        demands = {n: t.demand() for n, t in self.triggers().items()}
        model = check_model(self.config.model, where, demands)
        contracts = self.config.contracts
        if contracts is not None and contracts.schemas:
            # The SUT's own CloudEvent schemas judge its events (paths relative to the config file).
            schemas = [str((self.base_dir / d).resolve()) for d in contracts.schemas]
            model = model.model_copy(update={"event_schemas": schemas})
        return model

    def kill(self, name: str, sig: int) -> None:
        self.supervisor.kill(name, sig)

    def restart(self, name: str) -> None:
        self.supervisor.restart(name)

    # -- the saga API ------------------------------------------------------
    async def start_saga(self, http: aiohttp.ClientSession, key: str, body: Mapping[str, Any]) -> StartResult:
        """The saga steps in order with ``body`` as the request (no pools: the runner sets those up);
        the last answer. The runner drives the plan itself and records each step."""
        variables = {"key": key, "seed": 0, "i": 0, "seq100": 1, "rand100": 1, "request": dict(body), **body}
        seq = StartSequence(self.plan.saga_steps, variables, key=key)
        urls, last = self.client_urls(), None
        for step in seq.runs():
            last = await send(http, urls, seq.request(step))
            if not seq.took(step, last).ok:
                break
        status = last.status if last is not None else 0
        return StartResult(status, seq.saga_id, last.value() if last is not None else None)

    async def saga_status(self, http: aiohttp.ClientSession, saga_id: str) -> SagaStatus:
        spec = self.plan.status
        assert spec is not None
        path = as_text(fill_template(spec.path, {"saga_id": saga_id}, partial=True))
        # Read directly, not through the client's link: a fault there is on the system's clients, not its observer.
        answer = await get(http, self.url(spec.service) + path)
        reading = spec.read(answer)
        if reading is None:
            return SagaStatus(saga_id, None, None, {"status": answer.status, "body": answer.value()})
        raw = answer.json if answer.is_json and isinstance(answer.json, dict) else {"body": answer.value()}
        return SagaStatus(saga_id, reading.state, reading.outcome, raw, dict(reading.fields))


class _Contracts:
    """``[contracts]``: its providers can be verified against consumer pacts."""

    config: SutConfig
    url: Any

    def contract_providers(self) -> dict[str, ProviderInfo]:
        """The providers ``[contracts.providers]`` names, at their services' URLs."""
        contracts = self.config.contracts
        if contracts is None:
            return {}
        sig = contracts.signing
        signing = Signing(sig.secret, sig.timestamp_header, sig.signature_header, sig.prefix) if sig else None
        out = {}
        for name, p in contracts.providers.items():
            base = self.url(p.service or name)
            out[name] = ProviderInfo(
                name,
                base,
                states_url=base + p.states if p.states else None,
                messages_url=base + p.messages if p.messages else None,
                signing=signing if p.signed else None,
            )
        return out


class _Snapshots:
    """``[snapshots]``: each service's read endpoints."""

    config: SutConfig
    url: Any

    async def snapshot(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for service, paths in self.config.snapshots.services.items():
            named = paths.items() if isinstance(paths, dict) else ((None, p) for p in paths)
            merged: dict[str, Any] = {}
            for name, path in named:
                answer = await get(http, self.url(service) + path)
                if answer.status != 200:
                    raise SutError(
                        f"snapshot of {service}: GET {path} answered {answer.status} ({str(answer.value())[:200]!r}); "
                        f"fix snapshots.{service} in {self.config_path}"  # type: ignore[attr-defined]
                    )
                data = answer.document()
                data = answer.value() if data is MISSING else data
                if name is not None:
                    merged[name] = data
                elif isinstance(data, dict):
                    merged.update(data)
                else:
                    merged[path] = data
            out[service] = merged
        return out


class _PerId:
    """``[snapshots.per_saga]`` and ``[snapshots.per_value]``: reads per saga id and per pool member."""

    config: SutConfig
    url: Any
    plan: StartPlan

    async def per_id_snapshot(
        self,
        http: aiohttp.ClientSession,
        sagas: Mapping[str, Mapping[str, Any]],
        members: Mapping[str, list[Mapping[str, Any]]],
        baseline: bool = False,
    ) -> dict[str, Any]:
        gate = asyncio.Semaphore(16)
        out: dict[str, Any] = {}

        async def read(service: str, path: str, entry: dict[str, Any], missing: tuple[int, ...]) -> dict[str, Any]:
            # A read is a GET: tried again after an outage or a 5xx (a restarting service, a fault on the
            # link) before it is recorded as unanswered — which the checkers then do not take as a value.
            for pause in _READ_RETRIES:
                async with gate:
                    try:
                        answer = await get(http, self.url(service) + path)
                    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                        failed = {**entry, "status": None, "body": None, "error": f"{type(exc).__name__}: {exc}"}
                    else:
                        if answer.status < 500:
                            break
                        failed = {**entry, "status": answer.status, "body": None}
                if pause is None:
                    return failed
                await asyncio.sleep(pause)
            body = answer.document()
            body = answer.value() if body is MISSING else body
            return {**entry, "status": answer.status, "body": None if answer.status in missing else body}

        if not baseline:
            for name, snap in self.config.snapshots.per_saga.items():
                jobs = []
                for saga_id, values in sorted(sagas.items()):
                    variables = {**values, "saga_id": saga_id}
                    path = as_text(fill_template(snap.path, variables, partial=True))
                    jobs.append(read(snap.service, path, {"saga_id": saga_id}, tuple(snap.missing)))
                out[name] = list(await asyncio.gather(*jobs))
        for name, value_snap in self.config.snapshots.per_value.items():
            jobs = []
            for pool_name in value_snap.pools(self.config.pools):
                pool = self.plan.pools[pool_name]
                for values in members.get(pool_name, []):
                    variables = {pool.kind: values, pool_name: values, **values}
                    path = as_text(fill_template(value_snap.path, variables, partial=True))
                    entry = {"pool": pool_name, "member": values.get("n"), "values": dict(values)}
                    jobs.append(read(value_snap.service, path, entry, (404,)))
            out[name] = list(await asyncio.gather(*jobs))
        return out


_READ_RETRIES = (0.2, 0.5, None)  # the pause after each failed read; None: the last try


class _Events:
    """``[events]``: the SUT pushes CloudEvents to the harness's sink, or keeps a log it reads."""

    config: SutConfig
    url: Any
    _poller: asyncio.Task | None

    async def tap_events(self, http: aiohttp.ClientSession, sink_url: str) -> None:
        events = self.config.events
        if events is None:
            return  # its services push to ${sink_url} by themselves
        if events.subscribe is not None:
            sub = events.subscribe
            body = fill(sub.body, {"sink_url": sink_url}, "events.subscribe.body")
            async with http.request(sub.method, self.url(sub.service) + sub.path, json=body) as resp:
                if resp.status >= 300:
                    raise SutError(f"events.subscribe: {sub.method} {sub.path} answered {resp.status}")
            return
        self._poller = asyncio.get_running_loop().create_task(self._poll_log(http, sink_url))

    async def untap_events(self, http: aiohttp.ClientSession) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None

    async def _poll_log(self, http: aiohttp.ClientSession, sink_url: str) -> None:
        log = self.config.events.log  # type: ignore[union-attr]
        assert log is not None
        cursor = log.start
        while True:
            try:
                async with http.get(self.url(log.service) + log.path.replace("{cursor}", str(cursor))) as resp:
                    page = await resp.json(content_type=None)
                for item in resolve(page, log.items, []):
                    event = resolve(item, log.event, None) if log.event else item
                    if isinstance(event, dict):
                        async with http.post(
                            sink_url, json=event, headers={"Content-Type": "application/cloudevents+json"}
                        ) as r:
                            await r.read()
                cursor = resolve(page, log.cursor, cursor)
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                pass  # the SUT may be down for a moment (chaos); read again later
            await asyncio.sleep(0.2)


_DRAIN_READ_S = 2.0


class _Drain:
    """``[drain.pending]``: reads of what the system has not delivered yet."""

    config: SutConfig
    url: Any

    async def pending(self, http: aiohttp.ClientSession) -> dict[str, int]:
        drain = self.config.drain
        assert drain is not None

        async def one(name: str) -> tuple[str, int]:
            endpoint = drain.pending[name]
            # A paused component never answers: a short wait, and the harness asks again later.
            answer = await asyncio.wait_for(get(http, self.url(endpoint.service) + endpoint.path), _DRAIN_READ_S)
            count = resolve(answer.document(), endpoint.count, None) if answer.status == 200 else None
            if isinstance(count, bool) or not isinstance(count, (int, float)):
                raise SutError(
                    f"drain.pending.{name}: GET {endpoint.path} answered {answer.status} without a number at "
                    f"{endpoint.count} ({str(answer.value())[:200]!r}); fix [drain.pending.{name}] in "
                    f"{self.config_path}"  # type: ignore[attr-defined]
                )
            return name, int(count)

        return dict(await asyncio.gather(*(one(n) for n in drain.pending)))


class _Retry:
    """``[drain] retry_interval_s``: the cap of the system's retry backoff."""

    config: SutConfig

    def retry_interval_s(self) -> float:
        assert self.config.drain is not None and self.config.drain.retry_interval_s is not None
        return self.config.drain.retry_interval_s


def declarative_system(
    config: SutConfig,
    run_dir: str | os.PathLike[str],
    *,
    config_path: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> DeclarativeSystem:
    """The adapter for ``config``, with the abilities its description declares (and no others)."""
    parts: list[type] = []
    if config.contracts is not None:
        parts.append(_Contracts)
    if config.snapshots.services:
        parts.append(_Snapshots)
    if config.snapshots.per_saga or config.snapshots.per_value:
        parts.append(_PerId)
    if config.events is not None or uses_sink(config):
        parts.append(_Events)
    if config.drain is not None and config.drain.pending:
        parts.append(_Drain)
    if config.drain is not None and config.drain.retry_interval_s is not None:
        parts.append(_Retry)
    cls = DeclarativeSystem
    if parts:
        name = "DeclarativeSystem[" + ", ".join(p.__name__.strip("_").lower() for p in parts) + "]"
        cls = _CLASSES.setdefault(name, type(name, (DeclarativeSystem, *parts), {"__module__": __name__}))
    return cls(config, run_dir, config_path=config_path, extra_env=extra_env)


_CLASSES: dict[str, type[DeclarativeSystem]] = {}  # one class per combination of abilities
