"""The declarative SUT description: ``saga-harness.toml`` or ``[tool.saga-harness]``.

One loader, validated fully on load (pydantic); a mistake becomes a
:class:`~saga_harness.errors.ConfigError` naming the file, the key, the value and
what is expected, with a "did you mean" for misspelt keys.

String values may use placeholders, filled in when the SUT starts:
``${python}`` (this interpreter), ``${port}`` (the service's own port),
``${run_dir}``, ``${url:NAME}`` (service NAME's base URL) and
``${link:SOURCE->TARGET}`` (the URL SOURCE must use to reach TARGET — a chaos
proxy when one is on that link).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from saga_harness.errors import ConfigError

CONFIG_NAMES = ("saga-harness.toml",)
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
OUTCOMES = ("completed", "compensated", "failed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceConfig(_Strict):
    """One process of the SUT: started by the harness, or ``external`` (already running)."""

    command: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    external: bool = False
    url: str | None = Field(default=None, description="base URL; required when external")
    port: int | None = Field(default=None, ge=1, le=65535, description="fixed port; a free one otherwise")
    health: str = Field(default="/healthz", description="path answering 200 when ready")
    ready_timeout_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _started_or_external(self) -> ServiceConfig:
        if self.external and not self.url:
            raise ValueError('an external service needs `url` (e.g. url = "http://127.0.0.1:8080")')
        if not self.external and not self.command:
            raise ValueError("give `command` (how to start it) or set `external = true` with its `url`")
        return self


class LinkConfig(_Strict):
    """A connection ``source`` opens to ``target``; chaos may put a proxy on it."""

    source: str
    target: str

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


class StartConfig(_Strict):
    service: str
    path: str
    method: Literal["POST", "PUT"] = "POST"
    idempotency_header: str = "Idempotency-Key"
    saga_id: str = Field(description="JSON pointer to the saga id in the response, e.g. /saga_id")
    headers: dict[str, str] = Field(default_factory=dict)


class StatusConfig(_Strict):
    service: str
    path: str = Field(description="may use {saga_id}")
    state: str = Field(description="JSON pointer to the saga's state in the response")


class SagaApiConfig(_Strict):
    start: StartConfig
    status: StatusConfig
    terminal: dict[str, Literal["completed", "compensated", "failed"]] = Field(
        description="terminal state -> its meaning"
    )


class TriggerConfig(_Strict):
    outcome: Literal["completed", "compensated", "failed", "any"] = Field(
        description="the outcome the request demands; 'any' when it depends on a race (scarce stock)"
    )
    request: dict[str, Any]
    burst: int = Field(default=1, ge=1, le=1000, description="sagas started back to back each time it is drawn")


class EventLogConfig(_Strict):
    """The SUT's own event log, read by cursor: ``path`` may use {cursor}."""

    service: str
    path: str
    items: str = Field(default="/events", description="JSON pointer to the list of entries")
    event: str = Field(default="", description="JSON pointer to the event within an entry ('' = the entry)")
    cursor: str = Field(description="JSON pointer to the next cursor in the response")
    start: str = "0"


class SubscribeConfig(_Strict):
    """A request that makes the SUT push events to the harness's sink (``${sink_url}``)."""

    service: str
    path: str
    method: Literal["POST", "PUT"] = "POST"
    body: dict[str, Any] = Field(default_factory=dict)


class EventsConfig(_Strict):
    subscribe: SubscribeConfig | None = None
    log: EventLogConfig | None = None

    @model_validator(mode="after")
    def _one_way(self) -> EventsConfig:
        if (self.subscribe is None) == (self.log is None):
            raise ValueError("give exactly one of [events.subscribe] (push to the harness) or [events.log]")
        return self


class SigningConfig(_Strict):
    """HMAC-SHA256 push signatures, added by the verifier's signing proxy and the fuzzer."""

    secret: str = Field(min_length=1)
    timestamp_header: str = "X-Signature-Timestamp"
    signature_header: str = "X-Signature"
    prefix: str = "v1="


class ProviderConfig(_Strict):
    service: str | None = Field(default=None, description="the service under [services] (default: the same name)")
    states: str | None = Field(default=None, description="path of the provider-state endpoint, e.g. /_pact/states")
    messages: str | None = Field(default=None, description="path producing async messages by description")
    signed: bool = Field(default=False, description="requests need a signature from [contracts.signing]")


class ContractsConfig(_Strict):
    pacts: str = Field(default="pacts", description="folder of pact files, relative to this file")
    schemas: list[str] = Field(default_factory=list, description="extra CloudEvent schema folders")
    env: dict[str, str] = Field(default_factory=dict, description="env for every service while contracts run")
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    signing: SigningConfig | None = None


class SutConfig(_Strict):
    name: str = Field(min_length=1)
    services: dict[str, ServiceConfig]
    links: list[LinkConfig] = Field(default_factory=list)
    saga: SagaApiConfig
    triggers: dict[str, TriggerConfig] = Field(default_factory=dict)
    mix: dict[str, float] = Field(default_factory=dict, description="default trigger weights for --mix")
    snapshots: dict[str, list[str]] = Field(default_factory=dict, description="service -> paths to GET")
    events: EventsConfig | None = None
    model: dict[str, Any] = Field(default_factory=dict, description="the saga model the checkers use")
    allowed_hosts: list[str] = Field(default_factory=list)
    contracts: ContractsConfig | None = None

    @field_validator("services")
    @classmethod
    def _some(cls, v: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        if not v:
            raise ValueError("describe at least one service under [services.NAME]")
        return v

    @model_validator(mode="after")
    def _names_exist(self) -> SutConfig:
        known = set(self.services)
        refs = [("saga.start.service", self.saga.start.service), ("saga.status.service", self.saga.status.service)]
        refs += [(f"links[{i}].source", link.source) for i, link in enumerate(self.links) if link.source != "client"]
        refs += [(f"links[{i}].target", link.target) for i, link in enumerate(self.links)]
        refs += [(f"snapshots.{s}", s) for s in self.snapshots]
        if self.contracts is not None:
            refs += [(f"contracts.providers.{n}", p.service or n) for n, p in self.contracts.providers.items()]
        if self.events is not None:
            part = self.events.subscribe or self.events.log
            refs.append(("events.service", part.service))  # type: ignore[union-attr]
        for where, name in refs:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{where} names service {name!r}, which is not under [services]{hint}")
        return self


def describe_validation(exc: ValidationError, root: type[BaseModel]) -> str:
    """Pydantic's errors as ``[key.path] what is wrong`` lines, with "did you mean" for unknown keys."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        if err["type"] == "extra_forbidden":
            siblings = _allowed_keys(root, err["loc"][:-1])
            close = difflib.get_close_matches(str(err["loc"][-1]), siblings, n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            lines.append(f"[{loc}] unknown key{hint}")
        else:
            value = err.get("input")
            shown = "" if isinstance(value, dict) else f" (got {value!r})"
            lines.append(f"[{loc}] {err['msg']}{shown}")
    return "; ".join(lines)


def _allowed_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where ``loc`` points (list indices are skipped)."""
    model: Any = root
    for part in loc:
        field = getattr(model, "model_fields", {}).get(str(part))
        if field is None:
            continue
        ann = field.annotation
        for candidate in (ann, *getattr(ann, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
            for arg in getattr(candidate, "__args__", ()):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    model = arg
    return list(getattr(model, "model_fields", {}))


def find_config(start: Path | None = None) -> Path | None:
    """``saga-harness.toml`` here, or a ``pyproject.toml`` with ``[tool.saga-harness]``."""
    here = (start or Path.cwd()).resolve()
    for name in CONFIG_NAMES:
        if (here / name).is_file():
            return here / name
    pyproject = here / "pyproject.toml"
    if pyproject.is_file():
        try:
            if "saga-harness" in tomllib.loads(pyproject.read_text()).get("tool", {}):
                return pyproject
        except tomllib.TOMLDecodeError:
            return None
    return None


def load_config(path: str | Path) -> SutConfig:
    """Read and validate a SUT description; ConfigError (exit 2) for every mistake."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; pass --config with the path of your saga-harness.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}. Fix the syntax at that line.") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("saga-harness")
        if data is None:
            raise ConfigError(f"{path}: has no [tool.saga-harness] table; add one or use a saga-harness.toml")
    try:
        config = SutConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid SUT configuration: {describe_validation(exc, SutConfig)}") from None
    return config


def fill(value: Any, variables: dict[str, str], where: str) -> Any:
    """Replace ``${...}`` placeholders in strings (recursively)."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            key = m.group(1)
            if key not in variables:
                known = ", ".join(sorted(variables))
                raise ConfigError(f"{where}: unknown placeholder ${{{key}}}; known here: {known}")
            return variables[key]

        return PLACEHOLDER.sub(sub, value)
    if isinstance(value, list):
        return [fill(v, variables, where) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, variables, f"{where}.{k}") for k, v in value.items()}
    return value
