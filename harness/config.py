"""The declarative SUT description: ``saga-harness.toml`` or ``[tool.saga-harness]``.

One loader, validated fully on load (pydantic); a mistake becomes a
:class:`~saga_harness.errors.ConfigError` naming the file, the key, the value and
what is expected, with a "did you mean" for misspelt keys — in ``[model]`` too.

Two kinds of placeholders:

- ``${...}`` in a service's ``command``, ``env`` and ``cwd`` (and ``[events.subscribe]``'s
  body), filled when the SUT starts: ``${python}`` (this interpreter), ``${port}`` (the
  service's own port), ``${run_dir}``, ``${config_dir}``, ``${url:NAME}`` (service NAME's
  base URL), ``${link:SOURCE->TARGET}`` (the URL SOURCE must use to reach TARGET — a chaos
  proxy when one is on that link) and ``${sink_url}`` (the harness's event sink, listening
  before any service starts);
- ``{...}`` in triggers, start steps, lookups and per-id snapshot paths, filled per saga:
  ``{key}``, ``{seed}``, ``{i}``, ``{seq100}``, ``{rand100}``, the trigger's request values,
  pool members' values (``{user.user_id}``) and captured values (``{order_id}``); see
  :mod:`saga_harness.startplan`.

Every key's meaning is the ``description`` of its field below; ``docs/config.md`` is
generated from them (:func:`reference`, ``saga-harness config reference``).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from saga_harness.errors import ConfigError
from saga_harness.startplan import BUILTINS, placeholders

CONFIG_NAMES = ("saga-harness.toml",)
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
OUTCOMES = ("completed", "compensated", "failed")
Outcome = Literal["completed", "compensated", "failed"]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
SERVICE_VARIABLES = ("python", "port", "run_dir", "config_dir", "sink_url")
_UNION_TAG = re.compile(r"^(?:str|int|float|bool|list\[.*\]|dict\[.*\]|tuple\[.*\]|literal\[.*\]|[A-Za-z]+Config)$")
# Python's spellings of JSON's literals: a terminal state written so never matches a JSON value.
_PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceConfig(_Strict):
    """``[services.NAME]``: one process of the SUT, started by the harness, or ``external`` (already running)."""

    command: list[str] | None = Field(
        default=None, description="how to start it (argv); `${...}` placeholders allowed, e.g. `${python}`, `${port}`"
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="its environment (over the harness's own, under `[env]` and `--env`); `${...}` allowed, "
        'e.g. `EVENT_SINK = "${sink_url}"`',
    )
    cwd: str | None = Field(default=None, description="working directory, relative to this file (default: its folder)")
    external: bool = Field(default=False, description="already running: never started, stopped, killed or paused")
    url: str | None = Field(default=None, description="base URL; required when external")
    port: int | None = Field(default=None, ge=1, le=65535, description="fixed port; a free one otherwise")
    health: str | None = Field(
        default=None,
        description='readiness: an HTTP path answering one of `health_status`, or "tcp" (the port accepts a '
        'connection). Default: "tcp" for a started service; an external one is checked only when given',
    )
    health_status: list[int] = Field(
        default_factory=lambda: [200], description="the statuses of `health` that mean ready, e.g. [200, 204]"
    )
    ready_timeout_s: float = Field(default=60.0, gt=0, description="how long it may take to become ready")

    @model_validator(mode="after")
    def _started_or_external(self) -> ServiceConfig:
        if self.external and not self.url:
            raise ValueError('an external service needs `url` (e.g. url = "http://127.0.0.1:8080")')
        if not self.external and not self.command:
            raise ValueError("give `command` (how to start it) or set `external = true` with its `url`")
        if self.health is not None and self.health != "tcp" and not self.health.startswith("/"):
            raise ValueError(f'`health` is a path starting with "/" or "tcp", got {self.health!r}')
        return self


class LinkConfig(_Strict):
    """``[[links]]``: a connection ``source`` opens to ``target``; chaos may put a proxy on it."""

    source: str = Field(description='the service that connects ("client" for the harness\'s own clients)')
    target: str = Field(description="the service it connects to")

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


class StartStepConfig(_Strict):
    """``[saga.start]`` (one request) or ``[[saga.start]]`` (each table one request, sent in order).

    Paths, headers and bodies are templates (``{key}``, ``{seed}``, ``{i}``, ``{seq100}``,
    ``{rand100}``, the trigger's request values, pool members' values, captured values)."""

    name: str = Field(default="", description='the step\'s name (default "start", or "step-N" in a list)')
    service: str = Field(description="the service under [services] the request goes to")
    path: str = Field(description="request path, a template, e.g. /orders/addItem/{order_id}/{item.item_id}/1")
    method: Method = Field(default="POST", description="HTTP method")
    headers: dict[str, str] = Field(default_factory=dict, description="request headers (templates)")
    body: Any = Field(
        default=None,
        description="JSON body, a template (\"{request}\": the trigger's request). Default: the trigger's request "
        "for a single [saga.start], no body in a list",
    )
    idempotency_header: str | None = Field(
        default=None,
        description='header carrying the saga\'s idempotency key (default "Idempotency-Key" for a single '
        "[saga.start], none in a list: a system without idempotency keys has none)",
    )
    capture: dict[str, str] = Field(
        default_factory=dict,
        description='values to keep from the answer: name -> JSON pointer ("/order_id") or "re:REGEX" over a '
        "text answer (its first group); later templates use {name}",
    )
    saga_id: str | None = Field(
        default=None,
        description='where the saga id is: a JSON pointer or "re:REGEX" into this answer, a capture\'s name, or a '
        'template the client fills ("{key}"). Exactly one step gives it',
    )
    expect: list[int] = Field(
        default_factory=list,
        description="statuses that let the sequence go on (default: any 2xx); another answer ends it and is "
        "recorded (a start that failed)",
    )
    once_per: str | None = Field(
        default=None,
        description="a pool kind: this step sets up each member of the pools of that kind, once, before the "
        "workload; its captures stay with the member ({user.user_id})",
    )
    when: str | None = Field(
        default=None,
        description='run only when this value is present and truthy: a name the trigger uses ("item2"), a request '
        'value, or a member\'s value ("item.stock")',
    )
    retry_unknown: bool | None = Field(
        default=None,
        description="resend with the same key when no answer came (a reset, a timeout); default: only when the "
        "step carries an idempotency key",
    )
    timeout_s: float | None = Field(default=None, gt=0, description="this request's timeout (default: the run's)")


class EventStatesConfig(_Strict):
    """``[saga.status.from_events]``: events that announce a saga's state, which then counts as observed."""

    saga_id: str = Field(description='JSON pointer to the saga id in an event, e.g. "/subject" or "/data/order_id"')
    state: str = Field(default="/type", description="JSON pointer to the announced state (default: the event type)")
    states: dict[str, Any] = Field(
        default_factory=dict,
        description="value at `state` -> the state it announces (e.g. event type -> state); only these count. "
        "Empty: the value itself is the state",
    )
    record: dict[str, str] = Field(
        default_factory=dict, description="fields of the event to record with the state (name -> pointer or re:)"
    )


class StatusConfig(_Strict):
    """``[saga.status]``: how one saga's state is read."""

    service: str = Field(description="the service under [services] that answers")
    path: str = Field(description="path with {saga_id}, e.g. /orders/find/{saga_id}")
    state: str = Field(description="JSON pointer (or re:REGEX) to the saga's state in the answer")
    record: dict[str, str] = Field(
        default_factory=dict,
        description="fields of the status answer to record with each observation: name -> pointer or re:. Names "
        "the checkers read: failed_step, error_type, reason, compensations_done, compensations_pending, attempts",
    )
    during_start: bool = Field(
        default=True,
        description="read it while the start sequence is in flight (false where a state before the saga runs "
        "would be misread, e.g. paid = false before the checkout)",
    )
    found: list[int] = Field(
        default_factory=lambda: [200], description="statuses meaning the saga is there (anything else: not yet)"
    )
    from_events: EventStatesConfig | None = Field(
        default=None, description="states announced by events count as observed (see [saga.status.from_events])"
    )


class OutcomeRuleConfig(_Strict):
    """One rule of ``[saga.outcome]``: an answer that says how the saga ended."""

    step: str | None = Field(default=None, description="the step whose answer it reads (default: [saga.outcome].step)")
    status: int | list[int] | None = Field(default=None, description="the answer's status (any of a list)")
    text: str | None = Field(default=None, description='a regex searched in the answer\'s text ("re:" prefix optional)')
    pointer: str | None = Field(default=None, description="a JSON pointer that must be present (with `equals`: equal)")
    equals: Any = Field(default=None, description="the value at `pointer`")
    record: dict[str, str] = Field(
        default_factory=dict, description="fields of the answer to record (name -> pointer or re:), e.g. reason"
    )


class OutcomeConfig(_Strict):
    """``[saga.outcome]``: the outcome read from a step's answer, for sagas that end inside a request."""

    step: str = Field(description="the step whose answer is read, e.g. checkout")
    completed: list[OutcomeRuleConfig] = Field(default_factory=list, description="answers meaning completed")
    compensated: list[OutcomeRuleConfig] = Field(default_factory=list, description="answers meaning compensated")
    failed: list[OutcomeRuleConfig] = Field(default_factory=list, description="answers meaning failed")


class ResendConfig(_Strict):
    """``[saga.resend]``: what a duplicate resubmission (``--duplicates``) replays."""

    step: str = Field(description="the one step replayed, with the same key and captured values (default: the last)")


class LookupConfig(_Strict):
    """``[saga.lookup]``: how a saga whose start answer was lost is found later."""

    service: str = Field(description="the service under [services] that answers")
    path: str = Field(description="a template over the key, the request and captured values, e.g. /sagas?key={key}")
    method: Method = Field(default="GET", description="HTTP method")
    headers: dict[str, str] = Field(default_factory=dict, description="request headers (templates)")
    saga_id: str = Field(description='JSON pointer or "re:REGEX" to the saga id in the answer')
    found: list[int] = Field(default_factory=lambda: [200], description="statuses meaning it was found")


def _table_or_list(v: Any) -> Any:
    # One [saga.start] table is the one-request form: the trigger's request is its body and
    # the key goes in an Idempotency-Key header unless it says otherwise.
    if isinstance(v, dict):
        one = {"name": "start", "body": "{request}", "idempotency_header": "Idempotency-Key", **v}
        return [one]
    if isinstance(v, list):
        return [
            {"name": f"step-{n + 1}", **s} if isinstance(s, dict) and "name" not in s else s for n, s in enumerate(v)
        ]
    return v


class SagaApiConfig(_Strict):
    """``[saga]``: how a saga is started, read and judged finished."""

    start: list[StartStepConfig] = Field(description="the request(s) that start a saga (see [saga.start])")
    status: StatusConfig = Field(description="how a saga's state is read (see [saga.status])")
    terminal: dict[str, Outcome] = Field(
        description="terminal state -> its meaning (completed / compensated / failed). Keys true, false, null and "
        "numbers match those JSON values"
    )
    resend: ResendConfig | None = Field(default=None, description="what a resubmission replays (see [saga.resend])")
    outcome: OutcomeConfig | None = Field(default=None, description="outcomes read from answers (see [saga.outcome])")
    lookup: LookupConfig | None = Field(default=None, description="finding a saga whose start answer was lost")

    _single = field_validator("start", mode="before")(classmethod(lambda cls, v: _table_or_list(v)))

    @model_validator(mode="after")
    def _steps(self) -> SagaApiConfig:
        names = [s.name for s in self.start]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"[saga.start] step names repeat: {', '.join(twice)}; give each step its own `name`")
        saga = [s for s in self.start if s.once_per is None]
        if not saga:
            raise ValueError("[saga.start] has only `once_per` setup steps; add the request(s) that start the saga")
        with_id = [s.name for s in saga if s.saga_id]
        if len(with_id) != 1:
            got = f"steps {', '.join(with_id)} give one" if with_id else "no step gives one"
            raise ValueError(
                f"[saga.start]: exactly one step says where the saga id is (`saga_id`); {got}. "
                'E.g. saga_id = "/order_id" (a pointer into its answer) or the name of a capture'
            )
        for n, s in enumerate(self.start):
            spec = s.saga_id
            if spec and not (spec.startswith(("/", "re:")) or "{" in spec or spec == ""):
                earlier = {c for t in self.start[: n + 1] for c in t.capture}
                if spec not in earlier:
                    raise ValueError(
                        f"[saga.start] step {s.name!r}: saga_id = {spec!r} is neither a JSON pointer (starts "
                        f'with "/"), a regex ("re:…"), a template ("{{key}}") nor a value captured by this or an '
                        f"earlier step{_close(spec, earlier)}"
                    )
        steps = {s.name for s in saga}
        if self.resend is not None and self.resend.step not in steps:
            raise ValueError(
                f"[saga.resend] step = {self.resend.step!r} is not a saga step{_close(self.resend.step, steps)}"
            )
        if self.outcome is not None:
            for kind in OUTCOMES:
                for rule in getattr(self.outcome, kind):
                    step = rule.step or self.outcome.step
                    if step not in steps:
                        raise ValueError(f"[saga.outcome] names step {step!r}, not a saga step{_close(step, steps)}")
        for state in self.terminal:
            if state in _PYTHON_LITERALS:
                raise ValueError(
                    f"[saga.terminal] {state!r} never matches: a JSON boolean or null is written "
                    f"{_PYTHON_LITERALS[state]!r} — did you mean {_PYTHON_LITERALS[state]!r}?"
                )
        return self


class PoolConfig(_Strict):
    """``[pools.NAME]``: members of a kind (users, items) set up once by the `once_per` steps and shared by sagas."""

    kind: str | None = Field(
        default=None, description="what its members are (default: the pool's name); steps say once_per = KIND"
    )
    size: int = Field(default=1, ge=1, le=100_000, description="how many members")
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="each member's constant values, e.g. { credit = 100 }; templates over {n} (the member's "
        "number) and {seed}",
    )


class TriggerConfig(_Strict):
    """``[triggers.NAME]``: a request that demands an outcome."""

    outcome: list[Literal["completed", "compensated", "failed", "any"]] = Field(
        description='the outcome it demands, or a list of accepted ones; "any" when it depends on a race'
    )
    under_faults: list[Outcome] | None = Field(
        default=None, description="the outcomes accepted while faults are active (default: as without faults)"
    )
    fails_at: str | None = Field(default=None, description="the saga step where it must fail (a [model.steps] name)")
    reason: str | None = Field(
        default=None, description='the recorded reason it must give ("re:REGEX" to match a pattern)'
    )
    error_type: str | None = Field(default=None, description="the recorded error type it must give")
    request: dict[str, Any] = Field(
        default_factory=dict,
        description="the request's values, a template ({i}, {seq100}, {rand100}, {key}, {seed}, pool values); "
        "the body of a single [saga.start]",
    )
    uses: dict[str, str] = Field(
        default_factory=dict,
        description='pool members it draws: name in the templates -> pool, e.g. { user = "rich", item2 = "sold_out" }',
    )
    burst: int = Field(default=1, ge=1, le=1000, description="sagas started back to back each time it is drawn")

    @field_validator("outcome", mode="before")
    @classmethod
    def _one_or_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [v]
        if not isinstance(v, list) or not v:
            raise ValueError('write one of "completed", "compensated", "failed", "any", or a list of them')
        return v

    @property
    def expected_outcome(self) -> str:
        """The one outcome demanded, or "any" when several are accepted."""
        return self.outcome[0] if len(self.outcome) == 1 else "any"

    def expectation(self) -> dict[str, Any] | None:
        """The demand as the model's triggers take it; None when the plain outcome says it all."""
        if len(self.outcome) == 1 and not (self.under_faults or self.fails_at or self.reason or self.error_type):
            return None
        outcome: str | list[str] = self.outcome[0] if len(self.outcome) == 1 else list(self.outcome)
        return {
            "outcome": outcome,
            "under_faults": list(self.under_faults) if self.under_faults is not None else None,
            "fails_at": self.fails_at,
            "reason": self.reason,
            "error_type": self.error_type,
        }


class EventLogConfig(_Strict):
    """``[events.log]``: the SUT's own event log, read by cursor."""

    service: str = Field(description="the service under [services] that answers")
    path: str = Field(description="path, may use {cursor}, e.g. /events?after={cursor}")
    items: str = Field(default="/events", description="JSON pointer to the list of entries")
    event: str = Field(default="", description="JSON pointer to the event within an entry ('' = the entry)")
    cursor: str = Field(description="JSON pointer to the next cursor in the response")
    start: str = Field(default="0", description="the first cursor")


class SubscribeConfig(_Strict):
    """``[events.subscribe]``: a request that makes the SUT push events to the harness's sink (``${sink_url}``)."""

    service: str = Field(description="the service under [services] that takes it")
    path: str = Field(description="request path")
    method: Literal["POST", "PUT"] = Field(default="POST", description="HTTP method")
    body: dict[str, Any] = Field(default_factory=dict, description="JSON body; `${sink_url}` is the sink's URL")


class EventsConfig(_Strict):
    """``[events]``: where the SUT's CloudEvents are captured. A system that pushes to ``${sink_url}``
    given in a service's env needs neither table."""

    subscribe: SubscribeConfig | None = Field(default=None, description="a request that subscribes the sink")
    log: EventLogConfig | None = Field(default=None, description="an event log the harness reads by cursor")

    @model_validator(mode="after")
    def _one_way(self) -> EventsConfig:
        if self.subscribe is not None and self.log is not None:
            raise ValueError("give one of [events.subscribe] (push to the harness) or [events.log], not both")
        if self.subscribe is None and self.log is None:
            raise ValueError(
                "give [events.subscribe] or [events.log]; a system that pushes to ${sink_url} from a service's env "
                "needs no [events] table"
            )
        return self


class DrainEndpoint(_Strict):
    """``[drain.pending.NAME]``: a read that says how many deliveries a component has not made yet
    (its outbox, its queue's tasks, its bus's pushes, those waiting for a retry included)."""

    service: str = Field(description="the service under [services] that answers")
    path: str = Field(description="path of the read, e.g. /admin/pending")
    count: str = Field(
        default="/pending", description="JSON pointer to the number not delivered yet in the answer (0: drained)"
    )


class DrainConfig(_Strict):
    """``[drain]``: the system's own drain signal. After the sagas converge the harness keeps observing
    until the event stream is quiet and every count under ``[drain.pending]`` is 0 (or a cap is reached,
    which the run records); a count that cannot be read counts as not drained. Without it, the quiet
    window must cover a retry: ``retry_interval_s`` if given, else the run's longest fault."""

    pending: dict[str, DrainEndpoint] = Field(
        default_factory=dict, description="reads of what is not delivered yet, by name (see [drain.pending.NAME])"
    )
    retry_interval_s: float | None = Field(
        default=None,
        gt=0,
        le=600,
        description="the longest a failed delivery waits before it is tried again (its backoff's cap), in seconds",
    )


class PerSagaSnapshot(_Strict):
    """``[snapshots.per_saga.NAME]``: a read per saga, stored as ``Snapshot(service=NAME, data=[{"saga_id",
    "status", "body"}, …])``."""

    service: str = Field(description="the service under [services] that answers")
    path: str = Field(description="path with {saga_id} (and captured values of the saga), e.g. /orders/find/{saga_id}")
    missing: list[int] = Field(
        default_factory=lambda: [404], description="statuses meaning it has no record (kept, body null)"
    )


class PerValueSnapshot(_Strict):
    """``[snapshots.per_value.NAME]``: a read per pool member, stored as ``Snapshot(service=NAME, data=[{"pool",
    "member", "values", "status", "body"}, …])``; read before the workload too (the baseline)."""

    service: str = Field(description="the service under [services] that answers")
    path: str = Field(
        description="path over the member's values by its kind or pool name, e.g. /payment/find_user/{user.user_id}"
    )
    pool: str | list[str] | None = Field(default=None, description="the pool(s) whose members are read")
    kind: str | None = Field(default=None, description="or: every pool of this kind")

    @model_validator(mode="after")
    def _which(self) -> PerValueSnapshot:
        if (self.pool is None) == (self.kind is None):
            raise ValueError("give `pool` (a pool or a list of pools) or `kind` (every pool of that kind)")
        return self

    def pools(self, pools: dict[str, PoolConfig]) -> list[str]:
        """The pools it reads."""
        if self.kind is not None:
            return [n for n, p in pools.items() if (p.kind or n) == self.kind]
        return [self.pool] if isinstance(self.pool, str) else list(self.pool or [])


class SnapshotsConfig(_Strict):
    """``[snapshots]``: each service's read endpoints (``NAME = ["/path", …]``, or ``NAME = { name = "/path" }``
    to name each answer), read at the end and as a baseline before the workload; plus per-id reads."""

    services: dict[str, list[str] | dict[str, str]] = Field(
        default_factory=dict,
        description="service -> paths to GET; JSON objects are merged, any other answer is kept under its path "
        '(or under the name given: rooms = { holds = "/holds" })',
    )
    per_saga: dict[str, PerSagaSnapshot] = Field(default_factory=dict, description="per-saga reads, by name")
    per_value: dict[str, PerValueSnapshot] = Field(default_factory=dict, description="per pool member reads, by name")

    @model_validator(mode="before")
    @classmethod
    def _services_beside(cls, v: Any) -> Any:
        # Service tables sit beside per_saga / per_value (as they always have): gather them.
        if isinstance(v, dict) and "services" not in v:
            return {
                "services": {k: x for k, x in v.items() if k not in ("per_saga", "per_value")},
                **{k: x for k, x in v.items() if k in ("per_saga", "per_value")},
            }
        return v

    @field_validator("services", mode="before")
    @classmethod
    def _paths(cls, v: Any) -> Any:
        # One clear message for a service's value (a union's per-member errors would read as noise).
        for name, paths in (v or {}).items() if isinstance(v, dict) else ():
            ok = (isinstance(paths, list) and all(isinstance(p, str) for p in paths)) or (
                isinstance(paths, dict) and all(isinstance(p, str) for p in paths.values())
            )
            if not ok:
                hint = _close(name, ["per_saga", "per_value"])
                raise ValueError(
                    f'[snapshots.{name}] is a service\'s list of paths (["/orders"]) or a table of named paths '
                    f'({{ orders = "/orders" }}){hint}'
                )
        return v

    def __bool__(self) -> bool:
        return bool(self.services or self.per_saga or self.per_value)


class SigningConfig(_Strict):
    """``[contracts.signing]``: HMAC-SHA256 push signatures, added by the verifier's signing proxy and the fuzzer."""

    secret: str = Field(min_length=1, description="the shared secret")
    timestamp_header: str = Field(default="X-Signature-Timestamp", description="header of the timestamp signed")
    signature_header: str = Field(default="X-Signature", description="header of the signature")
    prefix: str = Field(default="v1=", description="written before the hex digest")


class ProviderConfig(_Strict):
    """``[contracts.providers.NAME]``: a pact provider."""

    service: str | None = Field(default=None, description="the service under [services] (default: the same name)")
    states: str | None = Field(default=None, description="path of the provider-state endpoint, e.g. /_pact/states")
    messages: str | None = Field(default=None, description="path producing async messages by description")
    signed: bool = Field(default=False, description="requests need a signature from [contracts.signing]")


class ContractsConfig(_Strict):
    """``[contracts]``: consumer pacts, CloudEvent schemas and providers."""

    pacts: str = Field(default="pacts", description="folder of pact files, relative to this file")
    schemas: list[str] = Field(default_factory=list, description="extra CloudEvent schema folders")
    env: dict[str, str] = Field(default_factory=dict, description="env for every service while contracts run")
    providers: dict[str, ProviderConfig] = Field(default_factory=dict, description="the providers, by name")
    signing: SigningConfig | None = Field(default=None, description="how signed providers check requests")


_RUN_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class CalibrationRunConfig(_Strict):
    """``[calibration.runs.NAME]``: a run the calibration makes, clean on every seed and with each bug that
    names it in ``exposed_by``: a plain run (``saga-harness run``), or, with ``scenario``, a chaos run of
    that scenario file (``saga-harness chaos run``), whose workload and deadline are then the file's."""

    sagas: int = Field(
        default=40, ge=1, le=1_000_000, description="how many sagas (with `scenario`: overrides the file's)"
    )
    quick_sagas: int | None = Field(
        default=None, ge=1, le=1_000_000, description="sagas in `calibrate --quick` (default: `sagas`)"
    )
    concurrency: int = Field(default=20, ge=1, le=1000, description="clients in flight at once (plain runs)")
    mix: str | dict[str, float] = Field(
        default="",
        description='trigger weights: "ok=0.7,poor=0.3" or { ok = 0.7, poor = 0.3 } (plain runs; default: [mix])',
    )
    duplicates: float = Field(
        default=0.0, ge=0.0, le=1.0, description="share of sagas resent ([saga.resend]; plain runs)"
    )
    deadline: str | float = Field(
        default="30s", description='how long sagas may take to converge, e.g. "30s" (plain runs)'
    )
    scenario: str | None = Field(
        default=None,
        description="a chaos scenario file, relative to this file (link and process faults, its workload and "
        "deadline): the run is `saga-harness chaos run FILE`",
    )
    quick: bool = Field(default=True, description="part of `calibrate --quick`")

    @field_validator("deadline")
    @classmethod
    def _duration(cls, v: str | float) -> str | float:
        from saga_harness.durations import parse_duration

        try:
            parse_duration(v, "deadline")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _scenario_owns_its_workload(self) -> CalibrationRunConfig:
        # A chaos run's reproduce line is `chaos run FILE --sagas N`: the rest of its workload must
        # come from the file, or the line would not reproduce the run.
        if self.scenario is not None:
            clash = sorted(self.model_fields_set & {"concurrency", "mix", "duplicates", "deadline"})
            if clash:
                raise ValueError(
                    f"with `scenario`, the workload and deadline are the scenario file's: move "
                    f"{', '.join(clash)} into its `workload:` (or `deadline:`), or drop `scenario`"
                )
        return self

    @property
    def deadline_s(self) -> float:
        """The deadline in seconds."""
        from saga_harness.durations import parse_duration

        return parse_duration(self.deadline, "deadline")

    def mix_text(self) -> str:
        """The mix as ``--mix`` takes it."""
        if isinstance(self.mix, str):
            return self.mix
        return ",".join(f"{k}={v:g}" for k, v in self.mix.items())


class CalibrationBugConfig(_Strict):
    """``[[calibration.bugs]]``: one seeded bug of the system, declared as the reference system declares its
    own (``sagashop.bugs.BUGS``): what it breaks, how it is switched on, the runs that expose it, and the
    checkers of which at least one must flag it in every one of those runs."""

    name: str = Field(min_length=1, description="the bug's name, e.g. orders.no_paid_check")
    breaks: str = Field(min_length=1, description="what it breaks, in a sentence (reports)")
    env: dict[str, str] = Field(
        description='the switches that turn it on, over [env], e.g. { MINISHOP_BUGS = "orders.no_paid_check" }'
    )
    exposed_by: list[str] = Field(min_length=1, description="the [calibration.runs] names that expose it")
    caught_by: list[str] = Field(
        min_length=1, description='the checkers, any one of which must flag it, e.g. ["idempotency", "conservation"]'
    )

    @field_validator("env")
    @classmethod
    def _some_switch(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError('give the switch that turns the bug on, e.g. env = { MY_BUGS = "name" }')
        return v


class CalibrationConfig(_Strict):
    """``[calibration]``: what ``saga-harness calibrate --config FILE`` runs: each named run clean on every
    seed (no violation may be flagged), and each seeded bug through the runs meant to expose it."""

    runs: dict[str, CalibrationRunConfig] = Field(description="the runs, by name (see [calibration.runs.NAME])")
    bugs: list[CalibrationBugConfig] = Field(
        default_factory=list, description="the seeded bugs (see [[calibration.bugs]])"
    )

    @model_validator(mode="after")
    def _names(self) -> CalibrationConfig:
        for name in self.runs:
            if not _RUN_NAME.match(name):
                raise ValueError(
                    f"[calibration.runs.{name}]: a run's name is lower-case letters, digits, '-', '_' and '.' "
                    "(it names run directories)"
                )
        if not self.runs:
            raise ValueError("[calibration.runs] names no run; add at least one, e.g. [calibration.runs.run-mixed]")
        seen: set[str] = set()
        for bug in self.bugs:
            if bug.name in seen:
                raise ValueError(f"[[calibration.bugs]] names {bug.name!r} twice; each bug is declared once")
            seen.add(bug.name)
            for run in bug.exposed_by:
                if run not in self.runs:
                    raise ValueError(
                        f"[[calibration.bugs]] {bug.name!r}: exposed_by names run {run!r}, which is not under "
                        f"[calibration.runs]{_close(run, self.runs)}; runs: {', '.join(self.runs)}"
                    )
        return self


class SutConfig(_Strict):
    """The top level of ``saga-harness.toml`` (or ``[tool.saga-harness]`` in ``pyproject.toml``)."""

    name: str = Field(min_length=1, description="the system's name (run directories, reports)")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="the system's own switches, given to every started service (`--env KEY=VALUE` adds to and "
        'overrides them), e.g. MINISHOP_BUGS = ""',
    )
    services: dict[str, ServiceConfig] = Field(description="its processes, by name (see [services.NAME])")
    links: list[LinkConfig] = Field(default_factory=list, description="connections chaos may proxy (see [[links]])")
    drain: DrainConfig | None = Field(
        default=None, description="what the system has not delivered yet, read before judging (see [drain])"
    )
    saga: SagaApiConfig = Field(description="the saga API (see [saga])")
    pools: dict[str, PoolConfig] = Field(
        default_factory=dict, description="shared setup values, by name (see [pools.NAME])"
    )
    triggers: dict[str, TriggerConfig] = Field(default_factory=dict, description="requests that demand an outcome")
    mix: dict[str, float] = Field(default_factory=dict, description="default trigger weights for --mix")
    snapshots: SnapshotsConfig = Field(
        default_factory=SnapshotsConfig, description="final-state reads (see [snapshots])"
    )
    events: EventsConfig | None = Field(default=None, description="where its CloudEvents are captured")
    model: dict[str, Any] = Field(default_factory=dict, description="the saga model the checkers use (see [model])")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="hosts besides loopback faults and load may target"
    )
    contracts: ContractsConfig | None = Field(default=None, description="pacts, schemas, providers (see [contracts])")
    calibration: CalibrationConfig | None = Field(
        default=None, description="the runs and seeded bugs `saga-harness calibrate --config` uses (see [calibration])"
    )

    @field_validator("services")
    @classmethod
    def _some(cls, v: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        if not v:
            raise ValueError("describe at least one service under [services.NAME]")
        return v

    @model_validator(mode="after")
    def _names_exist(self) -> SutConfig:
        known = set(self.services)
        saga = self.saga
        refs = [(f"saga.start.{s.name}.service", s.service) for s in saga.start]
        refs.append(("saga.status.service", saga.status.service))
        if saga.lookup is not None:
            refs.append(("saga.lookup.service", saga.lookup.service))
        refs += [(f"links[{i}].source", link.source) for i, link in enumerate(self.links) if link.source != "client"]
        refs += [(f"links[{i}].target", link.target) for i, link in enumerate(self.links)]
        refs += [(f"snapshots.{s}", s) for s in self.snapshots.services]
        refs += [(f"snapshots.per_saga.{n}.service", s.service) for n, s in self.snapshots.per_saga.items()]
        refs += [(f"snapshots.per_value.{n}.service", s.service) for n, s in self.snapshots.per_value.items()]
        if self.contracts is not None:
            refs += [(f"contracts.providers.{n}", p.service or n) for n, p in self.contracts.providers.items()]
        if self.events is not None:
            part = self.events.subscribe or self.events.log
            refs.append(("events.service", part.service))  # type: ignore[union-attr]
        if self.drain is not None:
            refs += [(f"drain.pending.{n}.service", e.service) for n, e in self.drain.pending.items()]
        for where, name in refs:
            if name not in known:
                hint = _close(name, known)
                if where.startswith("snapshots.") and name not in ("per_saga", "per_value"):
                    hint = hint or _close(name, ["per_saga", "per_value"])
                raise ValueError(f"{where} names service {name!r}, which is not under [services]{hint}")
        self._pools_and_templates()
        self._terminal_states()
        self._calibration_mixes()
        return self

    def _calibration_mixes(self) -> None:
        # A trigger misspelt in a calibration run's mix would only be found when that run starts.
        for name, run in (self.calibration.runs if self.calibration else {}).items():
            weights = run.mix if isinstance(run.mix, dict) else dict(_weights(run.mix, name))
            for trigger in weights:
                if trigger not in self.triggers:
                    raise ValueError(
                        f"calibration.runs.{name}.mix names trigger {trigger!r}, which is not under [triggers]"
                        f"{_close(trigger, self.triggers)}; triggers: {', '.join(self.triggers) or 'none'}"
                    )

    def _pools_and_templates(self) -> None:
        kinds = {p.kind or n for n, p in self.pools.items()}
        for name, trigger in self.triggers.items():
            for alias, pool in trigger.uses.items():
                if pool not in self.pools:
                    raise ValueError(
                        f"triggers.{name}.uses.{alias} names pool {pool!r}, which is not under [pools]"
                        f"{_close(pool, self.pools)}"
                    )
        for step in self.saga.start:
            if step.once_per is not None and step.once_per not in kinds:
                raise ValueError(
                    f"saga.start.{step.name}.once_per = {step.once_per!r} is the kind of no pool under [pools]"
                    f"{_close(step.once_per, kinds)} (a pool's kind is its `kind`, else its name)"
                )
        for n, snap in self.snapshots.per_value.items():
            for pool in snap.pools(self.pools):
                if pool not in self.pools:
                    raise ValueError(
                        f"snapshots.per_value.{n}.pool names {pool!r}, not under [pools]{_close(pool, self.pools)}"
                    )
        # Every {name} in a template must be something that can be known: a built-in, a request
        # value of some trigger, a name a trigger draws a pool under, a pool or kind, a capture.
        known = set(BUILTINS) | {"request", "saga_id"} | kinds | set(self.pools)
        for t in self.triggers.values():
            known |= set(t.request) | set(t.uses)
        for s in self.saga.start:
            known |= set(s.capture)
        templated: list[tuple[str, Any]] = []
        for s in self.saga.start:
            templated += [(f"saga.start.{s.name}.path", s.path), (f"saga.start.{s.name}.headers", s.headers)]
            templated += [(f"saga.start.{s.name}.body", s.body)]
        if self.saga.lookup is not None:
            templated.append(("saga.lookup.path", self.saga.lookup.path))
        templated += [(f"snapshots.per_saga.{n}.path", s.path) for n, s in self.snapshots.per_saga.items()]
        templated += [(f"snapshots.per_value.{n}.path", s.path) for n, s in self.snapshots.per_value.items()]
        templated += [(f"triggers.{n}.request", t.request) for n, t in self.triggers.items()]
        for where, value in templated:
            for name in sorted(placeholders(value)):
                root = name.split(".")[0]
                if root not in known:
                    raise ValueError(
                        f"{where} uses {{{name}}}, which nothing provides{_close(root, known)}. Known: the built-ins "
                        f"{{{'}, {'.join(BUILTINS)}}}, the triggers' request values, the names triggers draw pools "
                        "under (`uses`), pool kinds and names, and values captured by start steps (`capture`)"
                    )

    def _terminal_states(self) -> None:
        states = self.model.get("states") if isinstance(self.model.get("states"), dict) else {}
        declared: set[str] = set()
        declared |= {str(s) for s in states.get("initial") or []}
        declared |= {str(s) for s in (states.get("terminal") or {})}
        for state, nexts in (states.get("transitions") or {}).items():
            declared |= {str(state), *(str(n) for n in nexts or [])}
        if not declared:
            return
        for state in self.saga.terminal:
            if state not in declared:
                raise ValueError(
                    f"[saga.terminal] state {state!r} is not among the states [model.states] declares, so it can "
                    f"never be matched{_close(state, declared)}"
                )


def _weights(text: str, run: str) -> Iterator[tuple[str, str]]:
    """``"ok=0.7,poor=0.3"`` as (trigger, weight) pairs; a part without ``=`` is a mistake."""
    for part in filter(None, (p.strip() for p in text.split(","))):
        trigger, eq, weight = part.partition("=")
        if not eq or not trigger.strip():
            raise ValueError(f'calibration.runs.{run}.mix: {part!r} is not trigger=weight (e.g. "ok=0.7,poor=0.3")')
        yield trigger.strip(), weight.strip()


def _close(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1)
    return f" — did you mean {close[0]!r}?" if close else ""


def describe_validation(exc: ValidationError, root: type[BaseModel], data: Any = None, prefix: str = "") -> str:
    """Pydantic's errors as ``[key.path] what is wrong`` lines, with "did you mean" for unknown keys.

    ``data`` (what was validated) lets the key paths read as the file does: a table given
    where a list of tables is also allowed (``[saga.start]``) has no index, and a grouping
    the loader adds (``[snapshots]``' services) does not show. ``prefix``: the section the
    data came from (``model`` for ``[model]``)."""
    lines = []
    for err in exc.errors():
        # Pydantic names the member of a union it tried ("list[str]", "int"): not a key of the file.
        parts = [p for p in err["loc"] if not str(p).startswith("function-") and not _UNION_TAG.match(str(p))]
        shown_loc = _as_written(parts, data) if data is not None else parts
        loc = ".".join(str(p) for p in ([prefix] if prefix else []) + list(shown_loc))
        where = f"[{loc}] " if loc else ""
        if err["type"] == "extra_forbidden":
            siblings = _allowed_keys(root, tuple(parts[:-1]))
            lines.append(f"{where}unknown key{_close(str(parts[-1]), siblings)}")
            continue
        msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        value = err.get("input")
        shown = (
            "" if isinstance(value, (dict, list)) or err["type"] in ("value_error", "missing") else f" (got {value!r})"
        )
        lines.append(f"{where}{msg}{shown}")
    return "; ".join(lines)


def _as_written(loc: list[Any], data: Any) -> list[Any]:
    """``loc`` as the file spells it: indices into a table that the loader made a list, and
    keys the loader added, are dropped (a part is dropped only when the next one is there)."""
    out: list[Any] = []
    node = data
    for n, part in enumerate(loc):
        nxt = loc[n + 1] if n + 1 < len(loc) else None
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) and nxt is not None and nxt in node:
            continue  # a grouping the loader added, or a table it wrapped in a list
        else:
            out += loc[n:]
            return out
        out.append(part)
    return out


def _allowed_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where ``loc`` points (list indices and dict keys are skipped)."""
    model: Any = root
    for part in loc:
        field = getattr(model, "model_fields", {}).get(str(part))
        if field is None:
            continue
        found = _models_in(field.annotation)
        if found:
            model = found[0]
    return list(getattr(model, "model_fields", {}))


def _models_in(ann: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (inside lists, dicts, unions)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    out: list[type[BaseModel]] = []
    for arg in get_args(ann):
        out += _models_in(arg)
    return out


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
        raise ConfigError(f"{path}: invalid SUT configuration: {describe_validation(exc, SutConfig, data)}") from None
    if config.model:  # an absent [model] is judged when a run needs it
        check_model(config.model, path)
    _check_service_placeholders(config, path)
    return config


def check_model(model: dict[str, Any], path: str | Path, triggers: dict[str, Any] | None = None) -> Any:
    """``[model]`` (with the triggers' demands) validated by the saga model's own classes, its
    mistakes told like the rest of the file's (``[model.steps.0.don] unknown key — did you
    mean 'done'?``); the :class:`~saga_harness.model.SagaModel`."""
    # Imported here: only a run (or this check) needs the model's classes.
    from saga_harness.models import load_model

    try:
        return load_model(model, triggers)
    except ValueError as exc:
        raise ConfigError(f"{path}: invalid saga model: {exc}") from None


def _check_service_placeholders(config: SutConfig, path: str | Path) -> None:
    # ${...} names are known before anything starts: a typo is found now, not when the SUT starts.
    known = (
        set(SERVICE_VARIABLES) | {f"url:{n}" for n in config.services} | {f"link:{link.name}" for link in config.links}
    )
    for name, svc in config.services.items():
        for where, value in (("command", svc.command), ("env", svc.env), ("cwd", svc.cwd)):
            for text in _strings(value):
                for m in PLACEHOLDER.finditer(text):
                    if m.group(1) not in known:
                        raise ConfigError(
                            f"{path}: [services.{name}.{where}] unknown placeholder ${{{m.group(1)}}}"
                            f"{_close(m.group(1), known)}; known: {', '.join('${' + k + '}' for k in sorted(known))}"
                        )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def uses_sink(config: SutConfig) -> bool:
    """Whether a service is given ``${sink_url}`` (the system pushes its events there by itself)."""
    return any(
        "${sink_url}" in text
        for svc in config.services.values()
        for text in _strings([svc.command or [], svc.env, svc.cwd or ""])
    )


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


# -- the reference (docs/config.md), generated from the fields' descriptions ------------------

_SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("top level", SutConfig),
    ("[services.NAME]", ServiceConfig),
    ("[[links]]", LinkConfig),
    ("[saga]", SagaApiConfig),
    ("[saga.start] or [[saga.start]]", StartStepConfig),
    ("[saga.status]", StatusConfig),
    ("[saga.status.from_events]", EventStatesConfig),
    ("[saga.outcome]", OutcomeConfig),
    ("[saga.outcome] rules (completed / compensated / failed = [ … ])", OutcomeRuleConfig),
    ("[saga.resend]", ResendConfig),
    ("[saga.lookup]", LookupConfig),
    ("[pools.NAME]", PoolConfig),
    ("[triggers.NAME]", TriggerConfig),
    ("[snapshots]", SnapshotsConfig),
    ("[snapshots.per_saga.NAME]", PerSagaSnapshot),
    ("[snapshots.per_value.NAME]", PerValueSnapshot),
    ("[drain]", DrainConfig),
    ("[drain.pending.NAME]", DrainEndpoint),
    ("[events]", EventsConfig),
    ("[events.subscribe]", SubscribeConfig),
    ("[events.log]", EventLogConfig),
    ("[contracts]", ContractsConfig),
    ("[contracts.providers.NAME]", ProviderConfig),
    ("[contracts.signing]", SigningConfig),
    ("[calibration]", CalibrationConfig),
    ("[calibration.runs.NAME]", CalibrationRunConfig),
    ("[[calibration.bugs]]", CalibrationBugConfig),
]

_PLACEHOLDERS = """\
## Placeholders

`${...}` — in a service's `command`, `env` and `cwd` (and `[events.subscribe]`'s body), filled when the
system starts:

| placeholder | value |
| --- | --- |
| `${python}` | the harness's Python interpreter |
| `${port}` | the service's own port (`port`, or a free one) |
| `${run_dir}` | the run's directory for the system's files |
| `${config_dir}` | the folder of this file |
| `${url:NAME}` | service NAME's base URL |
| `${link:SOURCE->TARGET}` | the URL SOURCE must use for TARGET (a chaos proxy when one is on that [[links]] link) |
| `${sink_url}` | the harness's event sink (CloudEvents, binary or structured); listening before any service starts |

`{...}` — in triggers' requests, start steps (path, headers, body), `[saga.lookup]` and per-id snapshot
paths, filled per saga:

| placeholder | value |
| --- | --- |
| `{key}` | the saga's idempotency key (its client identity, sent only where a step has `idempotency_header`) |
| `{seed}` | the run's seed |
| `{i}` | the saga's number in the workload |
| `{seq100}` | 1 … 100, cycling with `{i}` |
| `{rand100}` | a seeded random number in 1 … 100 |
| `{NAME}`, `{request.NAME}` | a value of the trigger's `request`; `{request}` alone is the whole request |
| `{ALIAS.NAME}` | a value of the pool member drawn under ALIAS (`uses`; also by the pool's kind): \
its `values`, `n`, `pool`, and what its setup steps captured |
| `{NAME}` | a value an earlier step captured (`capture`) |
| `{saga_id}` | the saga id (status and per-saga snapshot paths) |

A string that is one placeholder and nothing else keeps the value's type in a JSON body;
`{NAME:SPEC}` formats it (`{i:05d}`); `{{` and `}}` are literal braces.
"""


def _type_name(ann: Any) -> str:
    if ann is type(None):
        return "none"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "table"
    origin = get_origin(ann)
    if origin is Literal:
        return " \\| ".join(f'"{a}"' for a in get_args(ann))
    if origin in (list, tuple):
        return f"list of {_type_name(get_args(ann)[0])}" if get_args(ann) else "list"
    if origin is dict:
        return f"table of {_type_name(get_args(ann)[1])}" if get_args(ann) else "table"
    if get_args(ann):  # a union
        return " or ".join(_type_name(a) for a in get_args(ann) if a is not type(None))
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(ann, "any")


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if value is None:
        return "—"
    if isinstance(value, BaseModel) or value in ({}, []):
        return "empty"
    return f"`{value!r}`".replace("'", '"').replace("True", "true").replace("False", "false")


def undocumented() -> list[str]:
    """Config keys without a description (the reference must say what every key means)."""
    return [
        f"{section}.{name}"
        for section, model in _SECTIONS
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]


def reference() -> str:
    """``docs/config.md``: every key of ``saga-harness.toml``, from the config models' descriptions."""
    out = [
        "# `saga-harness.toml` reference",
        "",
        "Generated from the config models (`saga_harness.config`) by `saga-harness config reference`;",
        "do not edit by hand (a test fails when it is stale). `[model]` is the saga model's",
        "(`saga_harness.model`): its keys are listed at the end.",
        "",
    ]
    for section, model in _SECTIONS:
        out += [f"## {section}", "", " ".join((model.__doc__ or "").split()), "", "| key | type | default | meaning |"]
        out.append("| --- | --- | --- | --- |")
        for name, field in model.model_fields.items():
            desc = " ".join((field.description or "").split()).replace("|", "\\|")
            out.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |")
        out.append("")
    out.append(_PLACEHOLDERS)
    out += _model_reference()
    return "\n".join(out).replace("``", "`").rstrip() + "\n"


def _model_reference() -> list[str]:
    # The model's classes are the checkers' (core); their field descriptions, where they have them.
    from saga_harness.model import SagaModel

    out = ["## [model]", "", " ".join((SagaModel.__doc__ or "The saga model the checkers judge by.").split()), ""]
    seen: set[type[BaseModel]] = set()
    todo: list[tuple[str, type[BaseModel]]] = [("model", SagaModel)]
    while todo:
        where, model = todo.pop(0)
        if model in seen:
            continue
        seen.add(model)
        out += [f"### {where}", "", " ".join((model.__doc__ or "").split()), "", "| key | type | meaning |"]
        out.append("| --- | --- | --- |")
        for name, field in model.model_fields.items():
            desc = " ".join((field.description or "").split()).replace("|", "\\|")
            out.append(f"| `{field.alias or name}` | {_type_name(field.annotation)} | {desc} |")
            todo += [(f"{where}.{field.alias or name}", m) for m in _models_in(field.annotation)]
        out.append("")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m saga_harness.config [--check] [PATH]``: write the reference (default docs/config.md),
    or with ``--check`` exit 1 when it is stale."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    target = Path(paths[0] if paths else "docs/config.md")
    text = reference()
    if check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is stale: run `saga-harness config reference --out {target}`")
            return 1
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
