"""The system under test, as the harness sees it: one small protocol.

Three adapters implement it: the bundled reference system
(:mod:`saga_harness.adapters.reference`), any HTTP saga system described by a
``saga-harness.toml`` (:mod:`saga_harness.adapters.declarative`) and an
in-process fake for fast tests (:mod:`saga_harness.adapters.fake`). Third
parties register more under the entry-point group ``saga_harness.sut``;
:func:`saga_harness.adapters.load_sut` is the one loader. Checkers never see a
SUT: they see its history and its saga model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import aiohttp
from saga_harness.errors import MissingAbilityError
from saga_harness.model import SagaModel
from saga_harness.startplan import StartPlan
from saga_harness.workload import Trigger


@dataclass(frozen=True)
class ServiceInfo:
    """One component as seen now: its base URL, pid (None if external or down), and health."""

    url: str
    pid: int | None
    healthy: bool


@dataclass(frozen=True)
class LinkInfo:
    """A connection ``source`` opens to ``target``: what chaos may put a proxy on."""

    name: str
    source: str
    target: str
    upstream: str  # host:port the source connects to without a proxy


@dataclass(frozen=True)
class Signing:
    """How a provider authenticates pushes: ``prefix + hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))``."""

    secret: str
    timestamp_header: str = "X-Signature-Timestamp"
    signature_header: str = "X-Signature"
    prefix: str = "v1="


@dataclass(frozen=True)
class ProviderInfo:
    """A pact provider: where the verifier replays requests, sets states and asks for messages."""

    name: str
    url: str
    states_url: str | None = None
    messages_url: str | None = None
    signing: Signing | None = None


@dataclass(frozen=True)
class StartResult:
    """The answer to a start-saga request."""

    status: int
    saga_id: str | None
    body: Any


@dataclass(frozen=True)
class SagaStatus:
    """One status read: the state as the system gave it (a string, a boolean, a number, None when
    not found), its outcome once terminal, the chosen fields of the answer (``[saga.status] record``)."""

    saga_id: str
    state: Any
    outcome: str | None  # None while running, else completed | compensated | failed
    raw: Mapping[str, Any] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SagaApi:
    """The saga API as a client needs it, as plain data: the runner and Locust both start sagas
    from it (:class:`~saga_harness.startplan.StartPlan`).

    ``start`` is the one-request description a plugin gives (path, method, idempotency_header,
    saga_id pointer, headers), used when ``plan`` is None; ``plan`` is the full start sequence
    (:meth:`StartPlan.to_json`) with status, outcome rules and lookup; ``services`` maps the
    plan's service names to the URLs clients use (a proxy when one is on the client link).
    """

    client_url: str  # where clients reach the start request (a proxy when one is on the client link)
    start: dict[str, Any]  # path, method, idempotency_header, saga_id pointer, headers
    status: dict[str, Any]  # url (absolute, with {saga_id}), state pointer
    terminal: dict[str, str]  # state -> completed | compensated | failed
    plan: dict[str, Any] | None = None
    services: dict[str, str] = field(default_factory=dict)

    def start_plan(self) -> StartPlan:
        """The start sequence: the plan, or one request to ``client_url`` built from ``start``."""
        if self.plan is not None:
            return StartPlan.from_json(self.plan)
        return StartPlan.single(self.start)

    def service_urls(self) -> dict[str, str]:
        """Service name -> base URL, the one-request form's ``client`` included."""
        return {"client": self.client_url, **self.services}


@runtime_checkable
class SystemUnderTest(Protocol):
    """What the harness needs from every saga system. Everything more is an ability (below)."""

    name: str

    def start(self) -> None:
        """Start every process the harness owns and wait until healthy (SutError otherwise)."""

    def shutdown(self) -> None:
        """Stop every process the harness started and remove what the run created (a
        PostgreSQL schema, say); the history keeps the evidence. Idempotent."""

    def services(self) -> dict[str, ServiceInfo]:
        """Every service's URL, pid and live health."""

    def triggers(self) -> dict[str, Trigger]:
        """The requests that demand an outcome, by name."""

    def default_mix(self) -> dict[str, float]:
        """The trigger weights used when a run names none (empty: every trigger alike)."""

    def model(self) -> SagaModel:
        """The saga model the checkers judge this system by."""

    def allowed_hosts(self) -> list[str]:
        """Hosts besides loopback that faults and load may target (the config's ``allowed_hosts``)."""

    def saga_api(self) -> SagaApi:
        """The saga API as plain data: the runner and Locust start sagas from it (its start plan);
        called once the system has started."""

    async def start_saga(self, http: aiohttp.ClientSession, key: str, body: Mapping[str, Any]) -> StartResult:
        """Start one saga with ``key`` as its idempotency key, outside a run (a quick try, a demo);
        a run drives :meth:`saga_api`'s start plan instead, recording every request."""

    async def saga_status(self, http: aiohttp.ClientSession, saga_id: str) -> SagaStatus:
        """Read one saga's state and outcome."""


# -- abilities: what some systems can do and a run may need ------------------------------
# Each is a small protocol. A run states what it needs (:class:`Needs`) and :func:`require`
# refuses it before anything starts when the SUT lacks it, naming the ability and what
# would provide it. Nothing outside this module asks a SUT what it can do any other way.


@runtime_checkable
class ProcessControl(Protocol):
    """Processes the harness owns and may kill, pause (SIGSTOP) and restart."""

    def processes(self) -> list[str]:
        """The names of the processes the harness started (external services are not among them)."""

    def kill(self, name: str, sig: int) -> None:
        """Send ``sig`` to a process (SIGKILL, SIGSTOP, SIGCONT …)."""

    def restart(self, name: str) -> None:
        """Start a process again and wait until it is healthy."""


@runtime_checkable
class LinkRouting(Protocol):
    """Links between services that a proxy can sit on: the SUT reaches TARGET at an address we give."""

    def links(self) -> list[LinkInfo]:
        """Every link chaos may proxy."""

    def route(self, link: str, address: str) -> None:
        """Before :meth:`~SystemUnderTest.start`: the link's source reaches its target at ``address`` (a URL)."""


@runtime_checkable
class DeliveryHooks(Protocol):
    """Components whose deliveries (commands, events) can be duplicated, delayed, dropped, redelivered."""

    def delivery_components(self) -> list[str]:
        """The components with delivery hooks (e.g. a task queue and a bus)."""

    async def delivery_fault(self, http: aiohttp.ClientSession, component: str, rule: Mapping[str, Any]) -> str:
        """Switch on a delivery fault rule; its id."""

    async def clear_delivery_fault(self, http: aiohttp.ClientSession, component: str, rule_id: str) -> None:
        """Switch a rule off."""

    async def redeliver(self, http: aiohttp.ClientSession, component: str, target: str, since_s: float) -> int:
        """Deliver again what ``component`` delivered to ``target`` in the last ``since_s`` seconds; how many."""


@runtime_checkable
class ContractProviders(Protocol):
    """Services that can be verified against consumer pacts (and fuzzed with their signing)."""

    def contract_providers(self) -> dict[str, ProviderInfo]:
        """The pact providers, by name, with their state and message hooks."""


@runtime_checkable
class Snapshots(Protocol):
    """Read endpoints of each service's state, read at the end of a run (and before it, as a baseline)."""

    async def snapshot(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        """Each service's state, by service name."""


@runtime_checkable
class PerIdSnapshots(Protocol):
    """Reads per saga (``/orders/find/{saga_id}``) and per pool member (``/payment/find_user/{user.user_id}``)."""

    async def per_id_snapshot(
        self,
        http: aiohttp.ClientSession,
        sagas: Mapping[str, Mapping[str, Any]],
        members: Mapping[str, list[Mapping[str, Any]]],
        baseline: bool = False,
    ) -> dict[str, Any]:
        """Snapshot name -> list of reads. ``sagas``: saga id -> the values its start captured;
        ``members``: pool -> each member's values. ``baseline``: only the reads that have one
        (per member: per-saga reads have nothing to read before the workload)."""


@runtime_checkable
class EventTap(Protocol):
    """The SUT's CloudEvents can be captured: pushed to a sink the harness runs, or read from its log."""

    async def tap_events(self, http: aiohttp.ClientSession, sink_url: str) -> None:
        """Make the SUT push every CloudEvent to ``sink_url``."""

    async def untap_events(self, http: aiohttp.ClientSession) -> None:
        """Stop pushing events to the sink."""


@runtime_checkable
class EventsAtStart(Protocol):
    """A system told where to push its events when it starts (``${sink_url}`` in a service's env):
    the harness's sink must listen before it starts."""

    def push_events_to(self, sink_url: str) -> None:
        """Before :meth:`~SystemUnderTest.start`: the URL of the sink its services are given."""


@runtime_checkable
class Drain(Protocol):
    """The system can say what is still on its way: deliveries (commands, events, outbox rows) that
    are pending or waiting for a retry. The harness judges a run only once every count is zero (or a
    cap is reached), so late evidence is not taken for missing evidence."""

    async def pending(self, http: aiohttp.ClientSession) -> dict[str, int]:
        """Component -> deliveries not yet delivered (0: drained). Raises when one cannot answer
        (down, paused): the harness then counts the system as not drained."""


@runtime_checkable
class RetryInterval(Protocol):
    """How long the system may stay silent while it still has work: the cap of its retry backoff."""

    def retry_interval_s(self) -> float:
        """The longest a failed delivery waits before its next try, in seconds."""


@runtime_checkable
class OwnSwitches(Protocol):
    """The system's own switches its description sets for every service (``[env]``), recorded with a run."""

    def switches(self) -> dict[str, str]:
        """Name -> value, as every started service gets them (before ``--env``)."""


@runtime_checkable
class SagaPools(Protocol):
    """Pools of shared setup values (users, items) whose members are set up once, before sagas use them."""

    def pools(self) -> dict[str, Any]:
        """Pool name -> :class:`~saga_harness.startplan.Pool`."""


ABILITIES: dict[str, tuple[type, str]] = {
    # name -> (protocol, what would provide it: in a saga-harness.toml; a SUT plugin implements the protocol)
    "process control": (
        ProcessControl,
        "let the harness start the process (a `command` under [services.NAME], not `external = true`); "
        "a SUT plugin implements saga_harness.sut.ProcessControl",
    ),
    "link routing": (
        LinkRouting,
        "declare the link under [[links]] and pass ${link:SOURCE->TARGET} to the source instead of the target's "
        "URL; a SUT plugin implements saga_harness.sut.LinkRouting",
    ),
    "delivery hooks": (
        DeliveryHooks,
        "a SUT plugin whose adapter implements saga_harness.sut.DeliveryHooks (the reference system's task "
        "queue and bus have them); or use link and process faults instead",
    ),
    "contract providers": (
        ContractProviders,
        "name your providers under [contracts.providers.NAME]; a SUT plugin implements "
        "saga_harness.sut.ContractProviders",
    ),
    "snapshots": (Snapshots, "list each service's read endpoints under [snapshots]"),
    "event tap": (EventTap, "describe [events.subscribe] (the SUT pushes to ${sink_url}) or [events.log]"),
    "drain": (Drain, "name the endpoints that count undelivered work under [drain.pending]"),
}


@dataclass(frozen=True)
class Needs:
    """What a run needs beyond the basics; :func:`require` checks it against a SUT."""

    processes: frozenset[str] = frozenset()  # killed, paused or restarted
    links: frozenset[str] = frozenset()  # proxied
    deliveries: frozenset[str] = frozenset()  # components whose deliveries are faulted
    contracts: bool = False

    def __or__(self, other: Needs) -> Needs:
        return Needs(
            self.processes | other.processes,
            self.links | other.links,
            self.deliveries | other.deliveries,
            self.contracts or other.contracts,
        )


def has(sut: object, ability: str) -> bool:
    """Does ``sut`` implement the named ability (a key of :data:`ABILITIES`)?"""
    return isinstance(sut, ABILITIES[ability][0])


def require(sut: SystemUnderTest, needs: Needs, what: str) -> None:
    """Refuse ``what`` (e.g. ``"scenario 'orchestrator-killed'"``) before anything starts when
    ``sut`` cannot provide ``needs``: MissingAbilityError names the ability, the SUT and the fix."""

    def missing(ability: str, detail: str) -> MissingAbilityError:
        return MissingAbilityError(
            f"{what} needs {ability} ({detail}), which {sut.name} does not provide. "
            f"To provide it: {ABILITIES[ability][1]}. Nothing was started."
        )

    if needs.processes:
        if not isinstance(sut, ProcessControl):
            raise missing("process control", f"it faults process(es) {', '.join(sorted(needs.processes))}")
        owned = set(sut.processes())
        lacking = sorted(needs.processes - owned)
        if lacking:
            raise missing(
                "process control",
                f"it kills, pauses or restarts {', '.join(lacking)}; the processes the harness owns are "
                f"{', '.join(sorted(owned)) or 'none'}",
            )
    if needs.links:
        if not isinstance(sut, LinkRouting):
            raise missing("link routing", f"it faults link(s) {', '.join(sorted(needs.links))}")
        known = {link.name for link in sut.links()}
        lacking = sorted(needs.links - known)
        if lacking:
            raise missing(
                "link routing", f"it faults {', '.join(lacking)}; its links are {', '.join(sorted(known)) or 'none'}"
            )
    if needs.deliveries:
        if not isinstance(sut, DeliveryHooks):
            raise missing(
                "delivery hooks", f"it duplicates, delays or drops deliveries of {', '.join(sorted(needs.deliveries))}"
            )
        known = set(sut.delivery_components())
        lacking = sorted(needs.deliveries - known)
        if lacking:
            raise missing(
                "delivery hooks",
                f"it faults the deliveries of {', '.join(lacking)}; components with hooks: "
                f"{', '.join(sorted(known)) or 'none'}",
            )
    if needs.contracts and not isinstance(sut, ContractProviders):
        raise missing("contract providers", "it verifies pacts against the SUT's services")


ENTRY_POINT_GROUP = "saga_harness.sut"  # SUT plugins: name -> factory(run_dir=, bugs=, database_url=, extra_env=)
