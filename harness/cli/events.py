"""``saga-harness contracts validate-events`` and ``contracts sink``: CloudEvents against their schemas."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from saga_harness.cli.contracts import contracts_app
from saga_harness.errors import HarnessError

if TYPE_CHECKING:
    from saga_harness.contracts.events import SchemaRegistry

console = Console(highlight=False, soft_wrap=True)

SCHEMAS_HELP = "Extra schema directory (index.json + schema files) merged over the bundled one; repeatable."


def _registry(schemas: list[Path] | None) -> SchemaRegistry:
    # Imported here: `saga-harness --help` should not pay for loading jsonschema.
    from saga_harness.contracts.events import SchemaRegistry

    return SchemaRegistry.load(*(schemas or []))


@contracts_app.command("validate-events")
def validate_events(
    file: Path = typer.Argument(
        ...,
        help="a JSON-lines file of structured-mode CloudEvents (one per line), a run directory (its events.jsonl, "
        "else its history), or a history.jsonl (its event lines)",
    ),
    schemas: list[Path] | None = typer.Option(None, "--schemas", help=SCHEMAS_HELP),
    strict: bool = typer.Option(False, "--strict", help="An event type with no schema is an error, not a warning."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document (summary and problems) instead."),
) -> None:
    """Validate recorded CloudEvents: exit 1 if any is invalid, 0 if all are valid."""
    from saga_harness.contracts.events import EventSummary, invalid  # jsonschema: not for `--help`

    registry = _registry(schemas)
    summary = EventSummary()
    problems: list[dict[str, Any]] = []
    for number, event, error in _events(file):
        report = invalid(error) if error is not None else registry.validate(event)
        summary.add(report, where=f"line {number}")
        if report.status == "invalid" or report.status == "unknown":
            problems.append({"line": number, **report.to_json()})
    failed = summary.total("invalid") + (summary.total("unknown") if strict else 0)
    if as_json:
        console.print_json(
            data={"ok": not failed, "strict": strict, "summary": summary.to_json(), "problems": problems}
        )
    else:
        _print_problems(problems, strict)
        console.print(
            f"{summary.events} event(s): {summary.total('valid')} valid, {summary.total('invalid')} invalid, "
            f"{summary.total('unknown')} of a type with no schema"
        )
    raise typer.Exit(1 if failed else 0)


def _events(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, event, why it is not one) for each event ``path`` holds: an events file, a run
    directory (its events.jsonl, else its history's event lines) or a history (its event lines)."""
    from saga_harness.history.log import MAIN
    from saga_harness.rundir import EVENTS_FILE

    if path.is_dir():
        path = path / EVENTS_FILE if (path / EVENTS_FILE).exists() else path / MAIN
        if not path.exists():
            raise HarnessError(
                f"{path.parent}: no {EVENTS_FILE} and no {MAIN} in this directory; give a run directory, a "
                f"history.jsonl or a JSON-lines file of CloudEvents"
            )
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(
            f"cannot read the events file {path}: {exc.strerror or exc}. Pass a JSON-lines file holding one "
            f"structured-mode CloudEvent (a JSON object) per line, a run directory or its history.jsonl."
        ) from None
    history: bool | None = None  # a history's lines are envelopes: only its event lines are events
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except ValueError as exc:
                    yield number, None, f"line is not JSON: {exc}"
                    continue
                if history is None:
                    history = isinstance(doc, dict) and "mono" in doc and "type" in doc and "process" in doc
                if history:
                    if isinstance(doc, dict) and doc.get("type") == "event":
                        yield number, doc.get("event"), None
                    continue
                yield number, doc, None
        except UnicodeDecodeError as exc:
            raise HarnessError(
                f"the events file {path} is not UTF-8 text ({exc.reason}); pass a JSON-lines file"
            ) from None


def _print_problems(problems: list[dict[str, Any]], strict: bool) -> None:
    for p in problems:
        where = f"line {p['line']}: id {p['id'] or '(none)'} type {p['type'] or '(none)'}"
        if p["status"] == "unknown":
            label = "[bold red]error[/]" if strict else "[yellow]warning[/]"
            console.print(f"{label} {escape(where)}: no schema for this type")
            continue
        console.print(f"[bold red]invalid[/] {escape(where)}")
        for f in p["failures"]:
            console.print(f"  {escape(f['pointer'] or '(event)')}: {escape(f['reason'])}")


@contracts_app.command("sink")
def sink(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on (0: any free port)."),
    out: Path | None = typer.Option(None, "--out", help="Append each event and its report to this JSON-lines file."),
    schemas: list[Path] | None = typer.Option(None, "--schemas", help=SCHEMAS_HELP),
    strict: bool = typer.Option(False, "--strict", help="Refuse (422) events of a type with no schema."),
) -> None:
    """Run a validating CloudEvents push endpoint in the foreground (Ctrl-C stops it).

    POST /events takes one event (binary or structured mode): 204 valid, 422 invalid (with the
    failures), 400 not one event. GET /summary gives the counts so far.
    """
    from saga_harness.contracts.sink import ValidatingSink  # jsonschema and aiohttp: not for `--help`

    validating = ValidatingSink(_registry(schemas), host=host, port=port, out=out, strict=strict)

    async def serve() -> None:
        try:
            await validating.start()
        except OSError as exc:
            raise HarnessError(
                f"the contracts sink cannot listen on {host}:{port}: {exc.strerror or exc}; "
                f"pick another --port (0 picks a free one)"
            ) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # SIGTERM stops as cleanly as Ctrl-C (asyncio.run turns SIGINT into a cancellation).
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        console.print(f"contracts sink listening on {validating.url}  (summary: GET /summary; Ctrl-C stops)")
        try:
            await stop.wait()
        finally:
            await validating.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    s = validating.summary
    console.print(
        f"stopped: {s.events} event(s), {s.total('valid')} valid, {s.total('invalid')} invalid, "
        f"{s.total('unknown')} of a type with no schema, {validating.refused} refused"
    )
