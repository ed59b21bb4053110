"""Provider verification: replay consumer pacts against a running SUT.

For each provider named in the pact files, Pact's verifier (the Rust FFI,
through ``pact-python`` v3) replays every HTTP interaction against the
provider — through a :class:`~saga_harness.contracts.signing.SigningProxy` when the provider
checks push signatures — asks the provider for every asynchronous message
through its message endpoint, and sets provider states through its
state-change endpoint. The outcome is one :class:`InteractionResult` per
interaction, with the path and reason of every mismatch.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pact import Verifier
from saga_harness.config import load_config
from saga_harness.contracts.signing import SigningProxy
from saga_harness.errors import ConfigError
from saga_harness.lifecycle import Lifecycle, RunRequest
from saga_harness.progress import Listener, PhaseStarted, ignore
from saga_harness.rundir import write_contracts_section
from saga_harness.sut import ContractProviders, Needs, ProviderInfo

os.environ.setdefault("PACT_DO_NOT_TRACK", "true")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Mismatch:
    """One way the provider differs from what the consumer needs."""

    kind: str  # BodyMismatch, StatusMismatch, HeaderMismatch, MetadataMismatch, ...
    path: str  # "$.data" for a body; the header or metadata key otherwise
    reason: str


@dataclass(frozen=True)
class InteractionResult:
    provider: str
    consumer: str
    description: str
    kind: str  # "http" | "message"
    states: tuple[str, ...]
    ok: bool
    pending: bool = False
    mismatches: tuple[Mismatch, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "consumer": self.consumer,
            "description": self.description,
            "kind": self.kind,
            "states": list(self.states),
            "ok": self.ok,
            "pending": self.pending,
            "mismatches": [m.__dict__ for m in self.mismatches],
        }


@dataclass(frozen=True)
class PactResults:
    """Every interaction's result, plus providers the verifier could not run at all."""

    interactions: tuple[InteractionResult, ...]
    errors: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.errors and all(i.ok or i.pending for i in self.interactions)

    def to_json(self) -> dict[str, Any]:
        failed = [i for i in self.interactions if not (i.ok or i.pending)]
        return {
            "ok": self.ok,
            "sources": list(self.sources),
            "interactions": [i.to_json() for i in self.interactions],
            "passed": len(self.interactions) - len(failed),
            "failed": len(failed),
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class PactEntry:
    consumer: str
    description: str
    kind: str


def _kind(interaction: dict[str, Any]) -> str:
    # V4 types: "Synchronous/HTTP", "Asynchronous/Messages", "Synchronous/Messages".
    return "http" if "HTTP" in str(interaction.get("type", "HTTP")).upper() else "message"


def read_pacts(folder: str | Path) -> dict[str, list[PactEntry]]:
    """provider -> its interactions, from the pact files in ``folder`` (ConfigError if none)."""
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such folder of pact files; pass --pacts DIR (the consumer tests write them)")
    out: dict[str, list[PactEntry]] = {}
    files = sorted(path.glob("*.json"))
    for file in files:
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
            provider, consumer = doc["provider"]["name"], doc["consumer"]["name"]
            entries = [
                PactEntry(consumer, i["description"], _kind(i))
                for i in doc.get("interactions", doc.get("messages", []))
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{file}: not a pact file ({exc}); regenerate it with your consumer tests") from None
        out.setdefault(provider, []).extend(entries)
    if not files:
        raise ConfigError(f"{path}: holds no pact files (*.json); run the consumer tests that write them")
    return out


@contextlib.contextmanager
def _captured_stdout(log: Path | None) -> Iterator[None]:
    # The FFI prints its own report on fd 1; keep it in the run's log, not on the user's screen.
    if log is None:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as sink:
        saved = os.dup(1)
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def verify_provider(
    provider: ProviderInfo,
    expected: list[PactEntry],
    source: str | Path,
    *,
    broker_token: str | None = None,
    log: Path | None = None,
) -> list[InteractionResult]:
    """Verify one provider against the pacts at ``source`` (a folder or a Pact Broker URL)."""
    kinds = {(e.consumer, e.description): e.kind for e in expected}
    with contextlib.ExitStack() as stack:
        url = provider.url
        if provider.signing is not None:
            url = stack.enter_context(SigningProxy(provider.url, provider.signing)).url
        verifier = Verifier(provider.name, host="127.0.0.1").add_transport(url=url).set_coloured_output(enabled=False)
        if provider.messages_url:
            parts = urlsplit(provider.messages_url)
            verifier.add_transport(protocol="message", port=parts.port, path=parts.path, scheme=parts.scheme)
        if provider.states_url:
            verifier.state_handler(provider.states_url, body=True)
        if str(source).startswith(("http://", "https://")):
            verifier.broker_source(str(source), token=broker_token)
        else:
            verifier.add_source(Path(source))
        with _captured_stdout(log):
            with contextlib.suppress(RuntimeError):  # a failed verification raises; the results say why
                verifier.verify()
        results = verifier.results
    out = []
    for r in results.get("interactionResults", []):
        mismatches = ()
        if r.get("result") != "OK":
            raw = (r.get("mismatch") or {}).get("mismatches") or []
            if not raw and r.get("mismatch"):
                raw = [{"type": "Error", "mismatch": str(r["mismatch"].get("message", r["mismatch"]))}]
            mismatches = tuple(
                Mismatch(
                    str(m.get("type", "")),
                    str(m.get("path") or m.get("key") or ""),
                    _ANSI.sub("", str(m.get("mismatch", ""))),
                )
                for m in raw
            )
        out.append(
            InteractionResult(
                provider=provider.name,
                consumer=str(r.get("consumer", "")),
                description=str(r.get("description", "")),
                kind=kinds.get((str(r.get("consumer", "")), str(r.get("description", ""))), "http"),
                states=tuple(
                    str(s.get("name", s)) if isinstance(s, dict) else str(s) for s in r.get("providerStates", [])
                ),
                ok=r.get("result") == "OK",
                pending=bool(r.get("pending")),
                mismatches=mismatches,
            )
        )
    return out


def _state_name(state: Any) -> str:
    return str(state.get("name", state)) if isinstance(state, dict) else str(state)


def verify(
    pacts: str | Path,
    providers: Mapping[str, ProviderInfo],
    *,
    only: list[str] | None = None,
    broker_url: str | None = None,
    broker_token: str | None = None,
    log: Path | None = None,
) -> PactResults:
    """Verify every provider the pacts name (or ``only`` these) that ``providers`` can reach."""
    # With a broker the pacts are remote: verify the providers the SUT names.
    expected: dict[str, list[PactEntry]] = {n: [] for n in (only or providers)} if broker_url else read_pacts(pacts)
    names = sorted(only or expected)
    unknown = [n for n in names if n not in expected]
    if unknown:
        raise ConfigError(
            f"--provider {', '.join(unknown)}: no pact in {pacts} names it; providers: {sorted(expected)}"
        )
    interactions: list[InteractionResult] = []
    errors: list[str] = []
    for name in names:
        info = providers.get(name)
        if info is None:
            errors.append(
                f"provider {name!r} has pacts in {pacts} but the SUT does not expose it; "
                f"name it under [contracts.providers.{name}] in the SUT config"
            )
            continue
        got = verify_provider(info, expected[name], broker_url or pacts, broker_token=broker_token, log=log)
        if not got:
            errors.append(f"provider {name!r}: the verifier ran no interaction; see {log or 'its output'}")
        interactions.extend(got)
    return PactResults(tuple(interactions), tuple(errors), (str(broker_url or pacts),))


def bundled_pacts() -> Path:
    """The reference system's pact files (written by ``tests/contracts/test_pact_consumers.py``)."""
    return Path(__file__).resolve().parent / "pacts"


def contract_setup(config: str | Path | None) -> tuple[Path, dict[str, str]]:
    """The pact folder and the env that switches on provider-state hooks, for the SUT ``config`` describes."""
    if config is None:
        return bundled_pacts(), {"SAGASHOP_TEST_MODE": "1"}
    contracts = load_config(config).contracts
    if contracts is None:
        raise ConfigError(
            f"{config}: has no [contracts] table; add one naming your providers "
            "([contracts.providers.NAME] with states/messages paths) and the folder of pact files"
        )
    return (Path(config).resolve().parent / contracts.pacts), dict(contracts.env)


def verify_sut(
    *,
    out: Path | None = None,
    sut: str | None = None,
    config: str | Path | None = None,
    bugs: str | None = None,
    pacts: str | Path | None = None,
    only: list[str] | None = None,
    broker_url: str | None = None,
    broker_token: str | None = None,
    command: str = "",
    listener: Listener = ignore,
) -> tuple[PactResults, Path]:
    """Start the SUT with its contract hooks on, verify its providers, stop it; the results (also in
    the run directory's ``contracts.json``) and the run directory."""
    default, env = contract_setup(config)
    folder = Path(pacts) if pacts else default
    if not broker_url:  # a missing or empty folder, an unknown provider: usage errors before anything starts
        expected = read_pacts(folder)
        unknown = [n for n in only or [] if n not in expected]
        if unknown:
            raise ConfigError(
                f"--provider {', '.join(unknown)}: no pact in {folder} names it; providers: {sorted(expected)}"
            )
    life = Lifecycle(
        RunRequest(
            label="contracts",
            out=out,
            sut=sut,
            config=Path(config) if config else None,
            bugs=bugs,
            env=env,
            command=command,
            observe=False,
        ),
        listener,
    )
    life.require(Needs(contracts=True), "`saga-harness contracts verify`")
    with life as run:
        assert isinstance(run.sut, ContractProviders)  # require() refused the run otherwise
        run.emit(PhaseStarted(run.elapsed(), "verifying pacts"))
        results = verify(
            folder,
            run.sut.contract_providers(),
            only=only,
            broker_url=broker_url,
            broker_token=broker_token,
            log=run.run_dir / "pact.log",
        )
    write_contracts_section(life.run_dir, "pacts", results.to_json())
    return results, life.run_dir
