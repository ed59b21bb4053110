"""The bundled reference system (``sagashop``) as a system under test.

Eleven processes on loopback, planned by ``sagashop.topology.plan`` and run by
one :class:`~saga_harness.supervisor.Supervisor`. It implements the
:class:`~saga_harness.sut.SystemUnderTest` protocol and every ability: process
control, link routing, delivery hooks (its task queue's and bus's admin API),
contract providers, snapshots, an event tap and a drain signal (each push queue's
``/admin/pending``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
from saga_harness.errors import ConfigError, SutError
from saga_harness.model import SagaModel
from saga_harness.models import reference_description, reference_model
from saga_harness.ports import free_ports
from saga_harness.supervisor import ProcessSpec, Supervisor
from saga_harness.sut import LinkInfo, ProviderInfo, SagaApi, SagaStatus, ServiceInfo, Signing, StartResult
from saga_harness.workload import Trigger
from sagashop import signing
from sagashop.bugs import parse_bugs
from sagashop.topology import COMMAND_SERVICES, COMPONENTS, DATABASE, database_address, database_link, plan
from sagashop.topology import links as topology_links

__all__ = ["ReferenceSystem", "ServiceInfo", "parse_bug_names"]

# Eleven Python processes importing FastAPI and SQLAlchemy at once on a small
# machine take several seconds; a minute leaves room for a loaded CI runner.
DEFAULT_READY_TIMEOUT_S = 60.0
# The components with durable pushes (an outbox, the task queue, the bus): the ones that say
# what is still pending. The consumers only receive.
QUEUED = ("orchestrator", "taskqueue", "eventbus", *COMMAND_SERVICES)
RETRY_INTERVAL_S = 2.0  # PushQueue's backoff_max_s: the longest a failed push waits for its retry
_DRAIN_READ_TIMEOUT_S = 2.0  # a component that cannot say within this counts as not drained


def parse_bug_names(bugs: str | Sequence[str] | None, source: str = "bugs") -> tuple[str, ...]:
    """Validate seeded-bug names (``"a,b"`` or a list); unknown names raise ConfigError.

    ``source`` names where the value came from (``--bugs``, a config key) so the
    message can point at it.
    """
    text = bugs if isinstance(bugs, str) or bugs is None else ",".join(bugs)
    try:
        return parse_bugs(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


class ReferenceSystem:
    """The bundled reference system as a :class:`~saga_harness.sut.SystemUnderTest`.

    Starts the reference system's components and tells where they listen.

    ``database_url=None`` gives each component a SQLite file under
    ``run_dir/data``; ``ports`` fixes a port per component (all of them), else
    free loopback ports are picked at :meth:`start`.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        bugs: str | Sequence[str] | None = (),
        database_url: str | None = None,
        schema_prefix: str | None = None,
        ports: Mapping[str, int] | None = None,
        secret: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.bugs = parse_bug_names(bugs)
        self.database_url = database_url
        # One schema per component; a fresh prefix per run keeps runs apart in one database.
        self.schema_prefix = schema_prefix or f"sagashop_{secrets.token_hex(4)}"
        self.secret = secret or secrets.token_hex(16)
        self.extra_env = dict(extra_env or {})
        self.ready_timeout_s = ready_timeout_s
        if ports is not None:
            missing = [c for c in COMPONENTS if c not in ports]
            unknown = sorted(set(ports) - set(COMPONENTS))
            if missing or unknown:
                raise ConfigError(
                    f"ports: give a port for every component and nothing else; missing "
                    f"{missing or 'none'}, unknown {unknown or 'none'}. Components: {', '.join(COMPONENTS)}."
                )
        self._fixed_ports = dict(ports) if ports is not None else None
        self.ports: dict[str, int] = {}
        self.supervisor = Supervisor(self.run_dir)
        self.name = "reference"
        self._routes: dict[str, str] = {}  # link name -> URL override (a chaos proxy), see route()

    def __enter__(self) -> ReferenceSystem:
        # For tests of the reference system itself; a harness run goes through the lifecycle.
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def specs(self) -> list[ProcessSpec]:
        """The process specs of every component (picks ports if none are fixed yet)."""
        self._pick_ports()
        data_dir = None
        if not self.database_url:
            data_dir = self.run_dir / "data"
            data_dir.mkdir(parents=True, exist_ok=True)
        plans = plan(
            self.ports,
            secret=self.secret,
            data_dir=str(data_dir) if data_dir else None,
            database_url=self.database_url,
            schema_prefix=self.schema_prefix,
            bugs=self.bugs,
            addresses=self._routes,
            extra_env=self.extra_env,
        )
        return [
            ProcessSpec(
                name=p.name,
                argv=p.argv,
                env=p.env,
                cwd=str(self.run_dir),
                health_url=f"http://127.0.0.1:{p.port}{p.health_path}",
                ready_timeout_s=self.ready_timeout_s,
            )
            for p in plans
        ]

    def _pick_ports(self) -> None:
        if not self.ports:
            self.ports = self._fixed_ports or dict(zip(COMPONENTS, free_ports(len(COMPONENTS)), strict=True))

    def start(self) -> None:
        """Start every component and wait until all are healthy (SutError otherwise)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.supervisor.start(self.specs())

    def stop(self) -> None:
        """Stop every component (idempotent); the data stays (see :meth:`shutdown`)."""
        self.supervisor.stop()

    def shutdown(self) -> None:
        """Stop every component and drop this run's PostgreSQL schemas (idempotent)."""
        try:
            self.stop()
        finally:
            self.drop_schemas()

    def drop_schemas(self) -> None:
        """Drop this run's PostgreSQL schemas (no-op on SQLite); SutError if the database cannot be reached."""
        if not self.database_url:
            return
        # Imported here: SQLAlchemy is only needed on the PostgreSQL backend.
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import OperationalError

        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix) :]
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                rows = conn.execute(
                    text("select schema_name from information_schema.schemata where schema_name like :p"),
                    {"p": self.schema_prefix.replace("_", "\\_") + "\\_%"},
                ).all()
                for (schema,) in rows:
                    conn.execute(text(f'drop schema "{schema}" cascade'))
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise SutError(
                f"could not drop this run's schemas ({self.schema_prefix}_*) at {self.database_url}: {reason}. "
                f"Drop them by hand once the database answers."
            ) from None
        finally:
            engine.dispose()

    def url(self, name: str) -> str:
        """The base URL of component ``name`` (e.g. ``http://127.0.0.1:41234``)."""
        try:
            return f"http://127.0.0.1:{self.ports[name]}"
        except KeyError:
            raise KeyError(f"no component {name!r}; known: {', '.join(self.ports) or 'none (not started)'}") from None

    def services(self) -> dict[str, ServiceInfo]:
        """Every component's URL, pid and live health."""
        self._pick_ports()
        status = self.supervisor.status()
        out = {}
        for name in self.ports:
            st = status.get(name)
            out[name] = ServiceInfo(
                url=self.url(name),
                pid=st.pid if st and st.alive else None,
                healthy=bool(st and st.healthy),
            )
        return out

    # -- the SystemUnderTest protocol --------------------------------------
    def triggers(self) -> dict[str, Trigger]:
        return {
            n: Trigger(n, t["request"], t["outcome"], t.get("burst", 1))
            for n, t in reference_description()["triggers"].items()
        }

    def default_mix(self) -> dict[str, float]:
        return dict(reference_description().get("mix", {}))

    def model(self) -> SagaModel:
        return reference_model()

    def allowed_hosts(self) -> list[str]:
        return []  # loopback only

    def saga_api(self) -> SagaApi:
        saga = reference_description()["saga"]
        return SagaApi(
            client_url=self.client_url(),
            start={"method": "POST", "headers": {}, **{k: v for k, v in saga["start"].items() if k != "service"}},
            status={"url": self.client_url() + saga["status"]["path"], "state": saga["status"]["state"]},
            terminal=dict(saga["terminal"]),
        )

    def client_url(self) -> str:
        """Where clients reach the orchestrator (a chaos proxy when one is on that link)."""
        return self._routes.get("client->orchestrator") or self.url("orchestrator")

    async def start_saga(self, http: aiohttp.ClientSession, key: str, body: Mapping[str, object]) -> StartResult:
        async with http.post(self.client_url() + "/sagas", json=dict(body), headers={"Idempotency-Key": key}) as resp:
            payload = await resp.json(content_type=None)
            saga_id = payload.get("saga_id") if isinstance(payload, dict) else None
            return StartResult(resp.status, saga_id, payload)

    async def saga_status(self, http: aiohttp.ClientSession, saga_id: str) -> SagaStatus:
        async with http.get(f"{self.client_url()}/sagas/{saga_id}") as resp:
            payload = await resp.json(content_type=None)
        if resp.status != 200 or not isinstance(payload, dict):
            return SagaStatus(saga_id, None, None, {"status": resp.status, "body": payload})
        return SagaStatus(saga_id, payload.get("state"), payload.get("outcome"), payload)

    # -- process control ------------------------------------------------------
    def processes(self) -> list[str]:
        return list(COMPONENTS)

    def kill(self, name: str, sig: int) -> None:
        self.supervisor.kill(name, sig)

    def restart(self, name: str) -> None:
        self.supervisor.restart(name)

    # -- link routing ---------------------------------------------------------
    def links(self) -> list[LinkInfo]:
        """Every link between components, plus the clients' link to the orchestrator."""
        self._pick_ports()
        out = [LinkInfo("client->orchestrator", "client", "orchestrator", f"127.0.0.1:{self.ports['orchestrator']}")]
        out += [
            LinkInfo(link.name, link.source, link.target, f"127.0.0.1:{self.ports[link.target]}")
            for link in topology_links()
        ]
        if self.database_url:
            db = database_address(self.database_url)
            out += [LinkInfo(database_link(c), c, DATABASE, db) for c in COMPONENTS]
        return out

    def route(self, link: str, address: str) -> None:
        known = {info.name for info in self.links()}
        if link not in known:
            raise ConfigError(f"no link {link!r} in the reference system; links: {', '.join(sorted(known))}")
        self._routes[link] = address

    # -- contract providers ---------------------------------------------------
    def contract_providers(self) -> dict[str, ProviderInfo]:
        """Every component as a pact provider (its state and message hooks exist in test mode only)."""
        sig = Signing(self.secret, signing.TIMESTAMP_HEADER, signing.SIGNATURE_HEADER, "v1=")
        return {
            name: ProviderInfo(
                name,
                self.url(name),
                states_url=f"{self.url(name)}/_pact/provider-states",
                messages_url=f"{self.url(name)}/_pact/messages",
                signing=sig,
            )
            for name in self.ports
        }

    # -- snapshots and the event tap ------------------------------------------
    async def snapshot(self, http: aiohttp.ClientSession) -> dict[str, object]:
        out: dict[str, object] = {}
        for service, paths in reference_description()["snapshots"].items():
            merged: dict[str, object] = {}
            for path in paths:
                async with http.get(self.url(service) + path) as resp:
                    if resp.status != 200:
                        raise SutError(f"snapshot of {service}: GET {path} answered {resp.status}")
                    merged.update(await resp.json())
            out[service] = merged
        return out

    async def tap_events(self, http: aiohttp.ClientSession, sink_url: str) -> None:
        # Batched mode, to the sink's batch route: one request per event made the harness's tap the
        # bus's costliest subscription by far (every other one is batched), so under load the tap
        # fell seconds behind the system and events were still arriving when the run was judged.
        batch_url = sink_url.removesuffix("/events") + "/events:batch" if sink_url.endswith("/events") else None
        sub = {
            "name": "saga-harness-tap",
            "topic": "*",
            "push_endpoint": batch_url or sink_url,
            "content_mode": "batch" if batch_url else "binary",
            "max_deliveries": 100,
        }
        async with http.post(self.url("eventbus") + "/subscriptions", json=sub) as resp:
            if resp.status not in (200, 201):
                raise SutError(f"could not subscribe the event sink on the bus: {resp.status} {await resp.text()}")

    async def untap_events(self, http: aiohttp.ClientSession) -> None:
        async with http.delete(self.url("eventbus") + "/subscriptions/saga-harness-tap") as resp:
            await resp.read()

    # -- drain: what is still on its way ----------------------------------------
    async def pending(self, http: aiohttp.ClientSession) -> dict[str, int]:
        """Each component's pushes not yet delivered (its outbox, the task queue's tasks, the bus's
        deliveries, the harness's tap included), from their ``/admin/pending``."""

        async def one(name: str) -> tuple[str, int]:
            timeout = aiohttp.ClientTimeout(total=_DRAIN_READ_TIMEOUT_S)
            async with http.get(self.url(name) + "/admin/pending", timeout=timeout) as resp:
                if resp.status != 200:
                    raise SutError(f"{name}: GET /admin/pending answered {resp.status}")
                return name, int((await resp.json())["pending"])

        return dict(await asyncio.gather(*(one(name) for name in QUEUED)))

    def retry_interval_s(self) -> float:
        """The cap of the push queues' retry backoff (``sagashop.pushqueue.PushQueue``)."""
        return RETRY_INTERVAL_S

    # -- delivery hooks (the task queue's and the bus's admin API) -------------
    def delivery_components(self) -> list[str]:
        return ["taskqueue", "eventbus"]

    async def delivery_fault(self, http: aiohttp.ClientSession, component: str, rule: Mapping[str, object]) -> str:
        async with http.post(self.url(component) + "/admin/faults", json=dict(rule)) as resp:
            if resp.status != 201:
                raise SutError(f"{component} refused delivery fault {rule}: {resp.status} {await resp.text()}")
            return str((await resp.json())["id"])

    async def clear_delivery_fault(self, http: aiohttp.ClientSession, component: str, rule_id: str) -> None:
        async with http.delete(f"{self.url(component)}/admin/faults/{rule_id}") as resp:
            await resp.read()

    async def redeliver(self, http: aiohttp.ClientSession, component: str, target: str, since_s: float) -> int:
        async with http.post(
            self.url(component) + "/admin/redeliver", json={"target": target, "since_s": since_s}
        ) as resp:
            return int((await resp.json()).get("redelivered", 0))
