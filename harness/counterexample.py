"""Counterexamples: what a failing run needs to be run again, written into its run directory.

Every run that ends violated (chaos, plain, explore) writes ``counterexample.json``: the SUT's identity
(plugin name, or its description's path and a SHA-256 of that file, so a replay can say when the system's
description changed), the seed, the seeded bugs and environment, the workload, the scenario as data and
its fault schedule (HTTP faults keyed on calls, so the same seed hits the same calls), and the findings
the run produced. ``saga-harness replay FILE`` runs it again and says whether the same findings came back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from saga_harness.checkers.findings import Finding
from saga_harness.errors import ConfigError

FILE = "counterexample.json"
VERSION = 1


def finding_key(f: Finding) -> str:
    """A finding's identity across runs: its checker, step and cause (not its counts)."""
    return f"{f.checker} · {f.step or '-'} · {f.cause}"


def file_sha256(path: Path | str | None) -> str | None:
    """The SHA-256 of a file's bytes (None: no file, or unreadable)."""
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass(frozen=True)
class Counterexample:
    """A failing run, as data: enough to run it again (see the module's docstring)."""

    driver: str  # "chaos" (a scenario), "run" (a plain workload), "explore" (one fault at one call)
    sut: str | None
    config: str | None  # the SUT's description (absolute path), if any
    config_sha256: str | None
    seed: int
    bugs: str | None
    env: dict[str, str] = field(default_factory=dict)
    database_url: str | None = None
    workload: dict[str, Any] = field(default_factory=dict)  # sagas, concurrency, mix, duplicates, deadline_s
    scenario: dict[str, Any] | None = None  # the scenario as data (driver chaos, explore)
    faults: list[dict[str, Any]] = field(default_factory=list)  # the fault schedule, each window described
    findings: list[str] = field(default_factory=list)  # finding_key of each violated finding
    command: str = ""
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, run_dir: Path) -> Path:
        path = Path(run_dir) / FILE
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return path


def violated_keys(findings: Iterable[Finding]) -> list[str]:
    """The keys of the violated findings, sorted (what a replay compares)."""
    return sorted({finding_key(f) for f in findings if f.status == "violated"})


def load(path: Path | str) -> Counterexample:
    """Read a counterexample (a file, or a run directory holding one); a clear error if it is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such counterexample; a failing run writes {FILE} into its run directory"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable counterexample ({exc}); give the {FILE} a run wrote") from None
    if not isinstance(data, Mapping) or data.get("version") != VERSION or "driver" not in data:
        raise ConfigError(
            f"{path}: not a counterexample of this version (expected a JSON object with version {VERSION} "
            f"and a driver); give the {FILE} a failing run wrote"
        )
    known = set(Counterexample.__dataclass_fields__)
    try:
        return Counterexample(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise ConfigError(f"{path}: a counterexample lacks a field ({exc})") from None
