"""Chaos scenarios: YAML files with a workload, a fault schedule, checkers and a deadline.

A scenario is data. It is validated fully on load; a mistake is a
:class:`~saga_harness.errors.ScenarioError` naming the file and the key.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from saga_harness.config import describe_validation
from saga_harness.durations import parse_duration
from saga_harness.errors import ConfigError, ScenarioError

CATALOGUE = Path(__file__).parent / "scenarios"

LINK_FAULTS = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "cut")
PROCESS_FAULTS = ("kill", "pause", "restart")
DELIVERY_FAULTS = ("duplicate", "delay", "drop", "redeliver")
# Request-level faults on a link, keyed on the call (method, path, which occurrence), not the clock:
# the kind -> the HTTP fault proxy's action (saga_harness.chaos.httpfaults).
HTTP_FAULTS = {
    "http_error": "status",
    "lose_answer": "lose_answer",
    "duplicate_request": "duplicate",
    "delay_request": "delay_request",
    "delay_answer": "delay_answer",
    "cut_body": "cut_body",
}
KINDS = LINK_FAULTS + PROCESS_FAULTS + DELIVERY_FAULTS + tuple(HTTP_FAULTS)


def _seconds(v: Any) -> float:
    try:
        return parse_duration(v, "duration")
    except ConfigError as exc:  # inside validation: pydantic reports it with the key
        raise ValueError(str(exc)) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fault(_Strict):
    """One fault window: ``kind`` on ``link`` / ``process`` / ``target`` from ``at`` for ``duration``."""

    kind: Literal[KINDS]  # type: ignore[valid-type]
    at: float = 0.0
    duration: float = 0.0
    link: str | None = None
    process: str | None = None
    target: str | None = Field(default=None, description="delivery faults: whose pushes (taskqueue, eventbus)")
    queue: str = Field(default="*", description="delivery faults: queue or subscription, '*' for all")
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(default=1.0, ge=0.0, le=1.0)
    attributes: dict[str, float] = Field(default_factory=dict)
    copies: int = Field(default=1, ge=0, le=10)
    delay_s: float = Field(default=0.0, ge=0.0, le=60.0)
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    # HTTP faults: which calls on the link (method, a glob on the path) and which occurrences.
    method: str = Field(default="*", description="HTTP faults: the method of the calls hit ('*': any)")
    path: str = Field(default="*", description="HTTP faults: a glob on the path of the calls hit, e.g. /payments/*")
    nth: list[int] = Field(default_factory=list, description="HTTP faults: hit the Nth matching calls (1-based)")
    first: int | None = Field(default=None, ge=1, description="HTTP faults: hit the first N matching calls")
    status: int = Field(default=503, ge=200, le=599, description="http_error: the status answered")
    lose: Literal["reset", "close"] = Field(default="reset", description="lose_answer: how the answer is lost")
    body_fraction: float = Field(default=0.5, ge=0.0, le=1.0, description="cut_body: share of the body sent")
    after_answer: bool = Field(
        default=False,
        description="duplicate_request: send the copy after the first answer, not racing it on a second connection",
    )

    _at = field_validator("at", "duration", mode="before")(classmethod(lambda cls, v: _seconds(v)))

    @model_validator(mode="after")
    def _target_for_kind(self) -> Fault:
        if (self.kind in LINK_FAULTS or self.kind in HTTP_FAULTS) and not self.link:
            raise ValueError(f"a {self.kind} fault needs `link` (e.g. link: taskqueue->payment)")
        if any(n < 1 for n in self.nth):
            raise ValueError("`nth` counts matching calls from 1 (nth: [1] is the first)")
        if self.kind in PROCESS_FAULTS and not self.process:
            raise ValueError(f"a {self.kind} fault needs `process` (e.g. process: payment)")
        if self.kind in DELIVERY_FAULTS and not self.target:
            raise ValueError(f"a {self.kind} fault needs `target` (the component whose pushes: taskqueue, eventbus)")
        return self


class RandomFaults(_Strict):
    """Draw ``count`` faults of ``kinds`` on ``links``/``processes`` within ``window`` (from the seed)."""

    count: int = Field(ge=1, le=100)
    kinds: list[Literal[KINDS]]  # type: ignore[valid-type]
    window: float = 10.0
    max_duration: float = 3.0
    links: list[str] = Field(default_factory=list)
    processes: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=lambda: ["taskqueue", "eventbus"])

    _w = field_validator("window", "max_duration", mode="before")(classmethod(lambda cls, v: _seconds(v)))


class Sometimes(_Strict):
    """What the run must see at least once, or it proved nothing (it fails as vacuous): a step some saga
    undid (``compensated``), an outcome some saga reached (``outcome``), or an HTTP fault of a kind that
    hit a call (``fault``, narrowed by ``link``, ``method``, ``path``)."""

    compensated: str | None = None
    outcome: str | None = None
    fault: str | None = Field(default=None, description="an HTTP fault kind (lose_answer, http_error, ...)")
    link: str | None = None
    method: str = "*"
    path: str = "*"

    @model_validator(mode="after")
    def _one(self) -> Sometimes:
        given = [k for k in ("compensated", "outcome", "fault") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a `sometimes` entry names exactly one of `compensated`, `outcome`, `fault`")
        if self.fault is not None and self.fault not in HTTP_FAULTS:
            raise ValueError(f"`fault` is an HTTP fault kind: one of {', '.join(HTTP_FAULTS)}")
        return self


class Workload(_Strict):
    sagas: int = Field(default=200, ge=0, le=1_000_000)
    concurrency: int = Field(default=20, ge=1, le=1000)
    mix: dict[str, float] = Field(default_factory=dict)
    duplicates: float = Field(default=0.0, ge=0.0, le=1.0)
    rate: float | None = Field(default=None, gt=0, description="sagas per second (default: as fast as allowed)")


class Scenario(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str
    grounded_in: str = Field(default="", description="the real failure of saga systems it reproduces")
    workload: Workload = Field(default_factory=Workload)
    faults: list[Fault] = Field(default_factory=list)
    random: RandomFaults | None = None
    checkers: list[str] = Field(default_factory=list, description="empty: every checker")
    record_calls: list[str] = Field(
        default_factory=list,
        description="links whose calls are recorded in the history (behind the HTTP fault proxy) even with no "
        "HTTP fault on them; ['*']: every link the SUT routes",
    )
    sometimes: list[Sometimes] = Field(
        default_factory=list, description="what must happen at least once, or the run is vacuous (it fails)"
    )
    deadline: float = 60.0
    requires: list[Literal["postgres"]] = Field(default_factory=list)
    soak: bool = Field(
        default=False,
        description="a long soak (thousands of sagas, minutes): run by `make bench` and the full calibration, "
        "never by `make test` nor `calibrate --quick`",
    )

    _d = field_validator("deadline", mode="before")(classmethod(lambda cls, v: _seconds(v)))


def _error(path: Path, exc: ValidationError) -> ScenarioError:
    return ScenarioError(f"{path}: invalid scenario: {describe_validation(exc, Scenario)}")


def load_scenario(name_or_file: str | Path) -> tuple[Scenario, Path]:
    """A catalogue scenario by name, or a YAML file by path."""
    path = Path(name_or_file)
    if not path.suffix:
        path = CATALOGUE / f"{name_or_file}.yaml"
        if not path.exists():
            names = [p.stem for p in sorted(CATALOGUE.glob("*.yaml"))]
            close = difflib.get_close_matches(str(name_or_file), names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ScenarioError(
                f"unknown scenario {name_or_file!r}.{hint} `saga-harness chaos list` shows the "
                f"catalogue; or give the path of a YAML file."
            )
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a YAML mapping with at least `name` and `description`")
    try:
        return Scenario.model_validate(data), path
    except ValidationError as exc:
        raise _error(path, exc) from None


def catalogue() -> list[tuple[Scenario, Path]]:
    return [load_scenario(p) for p in sorted(CATALOGUE.glob("*.yaml"))]
