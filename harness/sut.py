"""The system under test, as the harness sees it: one small protocol.

Two adapters implement it: the bundled reference system
(:mod:`saga_harness.adapters.reference`) and any HTTP saga system described by a
``saga-harness.toml`` (:mod:`saga_harness.adapters.declarative`). Third parties
register more under the entry-point group ``saga_harness.sut``. Checkers never
see a SUT: they see its history and its saga model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import aiohttp
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
    saga_id: str
    state: str | None
    outcome: str | None  # None while running, else completed | compensated | failed
    raw: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class SystemUnderTest(Protocol):
    """What the harness needs from a saga system."""

    name: str

    def start(self) -> None:
        """Start every process the harness owns and wait until healthy (SutError otherwise)."""

    def stop(self) -> None:
        """Stop every process the harness started (idempotent)."""

    def services(self) -> dict[str, ServiceInfo]:
        """Every service's URL, pid and live health."""

    def links(self) -> list[LinkInfo]:
        """The links between services that chaos may proxy."""

    def triggers(self) -> dict[str, Trigger]:
        """The requests that demand an outcome, by name."""

    def model(self) -> Any:
        """The saga model the checkers judge this system by (``saga_harness.model.SagaModel``)."""

    async def start_saga(self, http: aiohttp.ClientSession, key: str, body: Mapping[str, Any]) -> StartResult:
        """Send one start-saga request with ``key`` as its idempotency key."""

    async def saga_status(self, http: aiohttp.ClientSession, saga_id: str) -> SagaStatus:
        """Read one saga's state and outcome."""

    async def snapshot(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        """Each service's final state, by service name."""

    async def tap_events(self, http: aiohttp.ClientSession, sink_url: str) -> None:
        """Make the SUT push every CloudEvent to ``sink_url`` (a harness-run sink)."""

    async def untap_events(self, http: aiohttp.ClientSession) -> None:
        """Stop pushing events to the sink."""

    def kill(self, name: str, sig: int) -> None:
        """Send ``sig`` to a SUT process (SIGKILL, SIGSTOP, SIGCONT …)."""

    def restart(self, name: str) -> None:
        """Start a SUT process again and wait until it is healthy."""


ENTRY_POINT_GROUP = "saga_harness.sut"


def load_sut(
    run_dir: str | Path,
    *,
    config: str | Path | None = None,
    bugs: str | None = None,
    database_url: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> SystemUnderTest:
    """The SUT to test: the one ``config`` describes, else a ``saga-harness.toml`` (or
    ``[tool.saga-harness]``) in the current directory, else the reference system."""
    from saga_harness.config import find_config
    from saga_harness.errors import ConfigError

    path = Path(config) if config else find_config()
    if path is not None:
        from saga_harness.adapters.declarative import DeclarativeSystem

        if bugs:
            raise ConfigError(f"--bugs switches on the reference system's seeded bugs; {path} describes another SUT")
        if database_url:
            raise ConfigError(f"--database-url configures the reference system; {path} describes another SUT")
        return DeclarativeSystem.from_file(path, run_dir, extra_env=extra_env)
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if "reference" not in eps:
        raise ConfigError("no SUT: give --config FILE, or reinstall saga-harness (its reference system is missing)")
    factory = eps["reference"].load()
    return factory(run_dir=run_dir, bugs=bugs or (), database_url=database_url, extra_env=extra_env)
