"""OpenAPI fuzzing: schemathesis against every service's ``/openapi.json``.

Each service is fuzzed by schemathesis's own command line in a child process
(its engine's public interface), through a :class:`~saga_harness.contracts.signing.SigningProxy`
when the service checks push signatures, so generated bodies reach the code
behind the signature check. Checks: no server errors, response schema, status
code and content type conformance; phases: examples, fuzzing and stateful
(link-following) testing, plus the coverage phase when asked.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saga_harness.contracts.signing import SigningProxy
from saga_harness.errors import ConfigError
from saga_harness.lifecycle import Lifecycle, RunRequest
from saga_harness.progress import Listener, PhaseStarted, ignore
from saga_harness.rundir import write_contracts_section
from saga_harness.sut import ContractProviders, ProviderInfo

CHECKS = ("not_a_server_error", "response_schema_conformance", "status_code_conformance", "content_type_conformance")
PHASES = ("examples", "fuzzing", "stateful")


@dataclass(frozen=True)
class FuzzFailure:
    code: str  # schemathesis's failure code, e.g. ST103
    title: str
    operations: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class ServiceFuzz:
    """One service's fuzzing run."""

    service: str
    operations: int
    test_cases: int
    failures: tuple[FuzzFailure, ...]
    errors: tuple[str, ...]
    seconds: float
    report: str  # schemathesis's JSON report

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "ok": self.ok,
            "operations": self.operations,
            "test_cases": self.test_cases,
            "failures": [f.__dict__ | {"operations": list(f.operations)} for f in self.failures],
            "errors": list(self.errors),
            "seconds": round(self.seconds, 2),
            "report": self.report,
        }


def _schemathesis() -> list[str]:
    exe = Path(sys.executable).parent / "schemathesis"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "schemathesis.cli"]


def fuzz_service(
    service: ProviderInfo,
    out_dir: Path,
    *,
    max_examples: int = 25,
    seed: int = 0,
    phases: tuple[str, ...] = PHASES,
    timeout_s: float = 600,
) -> ServiceFuzz:
    """Fuzz one service's OpenAPI operations; its reports go under ``out_dir/<service>``."""
    report_dir = out_dir / service.name
    report_dir.mkdir(parents=True, exist_ok=True)
    report = report_dir / "schemathesis.json"
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        base = service.url
        if service.signing is not None:
            base = stack.enter_context(SigningProxy(service.url, service.signing)).url
        argv = [
            *_schemathesis(),
            "run",
            f"{service.url}/openapi.json",
            "--url",
            base,
            "--checks",
            ",".join(CHECKS),
            "--phases",
            ",".join(phases),
            "--max-examples",
            str(max_examples),
            "--seed",
            str(seed),
            "--workers",
            "1",
            "--request-timeout",
            "10",
            # Generation's speed is the machine's, not the API's: on a busy runner Hypothesis's
            # too_slow check failed operations whose data was merely generated late.
            "--suppress-health-check",
            "too_slow",
            "--report",
            "json,junit",
            "--report-dir",
            str(report_dir),
            "--report-json-path",
            str(report),
            "--report-junit-path",
            str(report_dir / "junit.xml"),
        ]
        # subprocess.run kills the child on timeout, Ctrl-C or any error here.
        proc = subprocess.run(argv, cwd=report_dir, capture_output=True, text=True, timeout=timeout_s, check=False)
        (report_dir / "schemathesis.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    seconds = time.monotonic() - started
    try:
        doc = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return ServiceFuzz(service.name, 0, 0, (), (f"schemathesis did not run: {' '.join(tail)}",), seconds, "")
    failures = tuple(
        FuzzFailure(
            str(f.get("code", "")), str(f.get("title", "")), tuple(f.get("operations", [])), int(f.get("count", 1))
        )
        for f in doc.get("failures", [])
    )
    errors = tuple(str(e.get("title", e)) if isinstance(e, dict) else str(e) for e in doc.get("errors", []))
    return ServiceFuzz(
        service.name,
        int(doc.get("operations", {}).get("tested", 0)),
        int(doc.get("test_cases", {}).get("generated", 0)),
        failures,
        errors,
        seconds,
        str(report),
    )


@dataclass(frozen=True)
class FuzzResults:
    services: tuple[ServiceFuzz, ...]
    max_examples: int
    seed: int

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.services)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "max_examples": self.max_examples,
            "seed": self.seed,
            "checks": list(CHECKS),
            "services": [s.to_json() for s in self.services],
            "operations": sum(s.operations for s in self.services),
            "test_cases": sum(s.test_cases for s in self.services),
            "failures": sum(len(s.failures) for s in self.services),
        }


def fuzz(
    services: Mapping[str, ProviderInfo],
    out_dir: Path,
    *,
    only: list[str] | None = None,
    max_examples: int = 25,
    seed: int = 0,
    phases: tuple[str, ...] = PHASES,
    jobs: int = 2,
) -> FuzzResults:
    """Fuzz each service (or ``only`` these), ``jobs`` services at a time."""
    names = list(only) if only else sorted(services)
    unknown = [n for n in names if n not in services]
    if unknown:
        raise ConfigError(f"--service {', '.join(unknown)}: no such service; services: {', '.join(sorted(services))}")
    # Two at a time: each schemathesis process spends much of its life starting up and
    # waiting on the service; more would only fight over this machine's two cores.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = tuple(
            pool.map(
                lambda n: fuzz_service(services[n], out_dir, max_examples=max_examples, seed=seed, phases=phases),
                names,
            )
        )
    return FuzzResults(results, max_examples, seed)


def fuzz_sut(
    *,
    out: Path | None = None,
    sut: str | None = None,
    config: str | Path | None = None,
    bugs: str | None = None,
    only: list[str] | None = None,
    max_examples: int = 25,
    seed: int = 0,
    phases: tuple[str, ...] = PHASES,
    command: str = "",
    listener: Listener = ignore,
) -> tuple[FuzzResults, Path]:
    """Start the SUT, fuzz its services, stop it; the results (also in ``contracts.json``, section
    ``fuzz``) and the run directory."""
    bad = [p for p in phases if p not in ("examples", "coverage", "fuzzing", "stateful")]
    if bad:
        raise ConfigError(f"--phases: unknown phase(s) {bad}; use examples, coverage, fuzzing, stateful")
    life = Lifecycle(
        RunRequest(
            label="fuzz",
            out=out,
            sut=sut,
            config=Path(config) if config else None,
            bugs=bugs,
            seed=seed,
            command=command,
            observe=False,
        ),
        listener,
    )
    unknown = [n for n in only or [] if n not in life.sut.services()]
    if unknown:  # before anything starts
        raise ConfigError(
            f"--service {', '.join(unknown)}: no such service; services: {', '.join(sorted(life.sut.services()))}"
        )
    with life as run:
        run.emit(PhaseStarted(run.elapsed(), "fuzzing"))
        # Every service the SUT runs; the providers it names bring their signing along.
        named = run.sut.contract_providers() if isinstance(run.sut, ContractProviders) else {}
        providers = {n: named.get(n) or ProviderInfo(n, s.url) for n, s in run.sut.services().items()}
        results = fuzz(providers, run.run_dir / "fuzz", only=only, max_examples=max_examples, seed=seed, phases=phases)
    write_contracts_section(life.run_dir, "fuzz", results.to_json())
    return results, life.run_dir
