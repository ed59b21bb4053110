"""Any HTTP saga system, described by a ``saga-harness.toml`` (see :mod:`saga_harness.config`).

:func:`declarative_system` builds the adapter with exactly the abilities the
description declares: process control over the services it starts (never the
``external`` ones) and link routing over its ``[[links]]`` always; contract
providers with ``[contracts]``, snapshots with ``[snapshots]``, an event tap with
``[events]``. It has no delivery hooks: nothing in a description reaches into
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
from saga_harness.config import SutConfig, fill, load_config
from saga_harness.errors import ConfigError, SutError
from saga_harness.model import SagaModel
from saga_harness.models import load_model
from saga_harness.pointer import resolve
from saga_harness.ports import free_ports
from saga_harness.supervisor import ProcessSpec, Supervisor, check_health
from saga_harness.sut import LinkInfo, ProviderInfo, SagaApi, SagaStatus, ServiceInfo, Signing, StartResult
from saga_harness.workload import Trigger


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
            env = {**fill(svc.env, variables, f"{where}.env"), **self.extra_env}
            cwd = fill(svc.cwd, variables, f"{where}.cwd") if svc.cwd else str(self.base_dir)
            out.append(
                ProcessSpec(
                    name=name,
                    argv=tuple(fill(svc.command, variables, f"{where}.command")),
                    env=env,
                    cwd=str((self.base_dir / cwd).resolve()),
                    health_url=self.url(name) + svc.health,
                    ready_timeout_s=svc.ready_timeout_s,
                )
            )
        return out

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.supervisor.start(self.specs())
        for name, svc in self.config.services.items():
            if svc.external:
                if not check_health(self.url(name) + svc.health):
                    raise SutError(
                        f"external service {name!r} at {self.url(name)}{svc.health} does not answer 200; "
                        f"start it first or fix services.{name}.url in {self.config_path}"
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
        return {n: Trigger(n, t.request, t.outcome, t.burst) for n, t in self.config.triggers.items()}

    def default_mix(self) -> dict[str, float]:
        return dict(self.config.mix)

    def allowed_hosts(self) -> list[str]:
        return list(self.config.allowed_hosts)

    def saga_api(self) -> SagaApi:
        start, status = self.config.saga.start, self.config.saga.status
        client = self._routes.get(f"client->{start.service}") or self.url(start.service)
        return SagaApi(
            client_url=client,
            start={k: v for k, v in start.model_dump().items() if k != "service"},
            status={"url": self.url(status.service) + status.path, "state": status.state},
            terminal=dict(self.config.saga.terminal),
        )

    def model(self) -> SagaModel:
        where = str(self.config_path or self.name)
        try:
            model = load_model(self.config.model, {n: t.outcome for n, t in self.config.triggers.items()})
        except ValueError as exc:
            raise ConfigError(f"{where}: [model] {exc}") from None
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
        s = self.config.saga.start
        headers = {**s.headers, s.idempotency_header: key}
        client = self._routes.get(f"client->{s.service}") or self.url(s.service)
        async with http.request(s.method, client + s.path, json=dict(body), headers=headers) as resp:
            payload = await resp.json(content_type=None)
        saga_id = resolve(payload, s.saga_id, None) if isinstance(payload, dict) else None
        return StartResult(resp.status, str(saga_id) if saga_id is not None else None, payload)

    async def saga_status(self, http: aiohttp.ClientSession, saga_id: str) -> SagaStatus:
        s = self.config.saga.status
        async with http.get(self.url(s.service) + s.path.replace("{saga_id}", saga_id)) as resp:
            payload = await resp.json(content_type=None)
        if resp.status != 200:
            return SagaStatus(saga_id, None, None, {"status": resp.status, "body": payload})
        state = resolve(payload, s.state, None)
        return SagaStatus(saga_id, state, self.config.saga.terminal.get(str(state)), payload)


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
        for service, paths in self.config.snapshots.items():
            merged: dict[str, Any] = {}
            for path in paths:
                async with http.get(self.url(service) + path) as resp:
                    if resp.status != 200:
                        raise SutError(f"snapshot of {service}: GET {path} answered {resp.status}")
                    data = await resp.json(content_type=None)
                if isinstance(data, dict):
                    merged.update(data)
                else:
                    merged[path] = data
            out[service] = merged
        return out


class _Events:
    """``[events]``: the SUT pushes CloudEvents to the harness's sink, or keeps a log it reads."""

    config: SutConfig
    url: Any
    _poller: asyncio.Task | None

    async def tap_events(self, http: aiohttp.ClientSession, sink_url: str) -> None:
        events = self.config.events
        if events is None:
            return
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
    if config.snapshots:
        parts.append(_Snapshots)
    if config.events is not None:
        parts.append(_Events)
    cls = DeclarativeSystem
    if parts:
        name = "DeclarativeSystem[" + ", ".join(p.__name__.strip("_").lower() for p in parts) + "]"
        cls = _CLASSES.setdefault(name, type(name, (DeclarativeSystem, *parts), {"__module__": __name__}))
    return cls(config, run_dir, config_path=config_path, extra_env=extra_env)


_CLASSES: dict[str, type[DeclarativeSystem]] = {}  # one class per combination of abilities
