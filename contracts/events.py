"""CloudEvent schemas: a registry of JSON Schemas and the validation of events as received.

An event is validated in its structured-mode JSON form exactly as it came over
the wire (see :func:`saga_harness.sink.event_from_wire` for binary mode), never
after an SDK has parsed it: the ``cloudevents`` SDK's HTTP parser fills in a
missing ``id``, ``specversion`` and ``time``, which would hide the very faults
a contract check is for.

Two schemas apply to each event:

- the **envelope** (``schemas/cloudevents-envelope.json``): CloudEvents 1.0's
  required attributes, their types, extension attribute names and values, and
  ``data`` / ``data_base64`` being mutually exclusive;
- the **data schema** of its ``type`` (or of its ``dataschema`` URI, when that
  names a loaded schema's ``$id``), which validates ``data``.

A schema directory holds ``index.json`` (``{"<type>": "<file>.json"}``) and the
schema files; any other ``*.json`` in it is a shared resource that schemas can
``$ref`` by its ``$id`` (or by file name, relative to the referring file). The
bundled directory describes the reference system; :meth:`SchemaRegistry.load`
merges a user's directories over it.

A failing subschema's ``title`` (when it is not the root of a schema file) is
used in the reason: ``expected <title>, got <value>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import ValidationError
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import Draft202012Validator, validator_for
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from saga_harness.errors import ConfigError

BUNDLED = Path(__file__).parent / "schemas"
ENVELOPE_FILE = "cloudevents-envelope.json"
INDEX_FILE = "index.json"

Status = Literal["valid", "invalid", "unknown"]
NO_TYPE = "(no type)"  # the summary's key for events without a usable ``type``


@dataclass(frozen=True, slots=True)
class Failure:
    """One reason an event is invalid: where (a JSON pointer into the event) and why."""

    pointer: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"pointer": self.pointer, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class EventReport:
    """The verdict on one event: ``valid``, ``invalid`` (with failures) or ``unknown``
    (a valid envelope whose type has no data schema)."""

    id: str | None
    type: str | None
    status: Status
    failures: tuple[Failure, ...] = ()
    schema: str | None = None  # the data schema's URI, when one applied

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "failures": [f.to_json() for f in self.failures],
            "schema": self.schema,
        }


def invalid(reason: str, pointer: str = "") -> EventReport:
    """The report for something that is not an event at all (a line that is not JSON, say)."""
    return EventReport(None, None, "invalid", (Failure(pointer, reason),))


class SchemaRegistry:
    """Compiled-once JSON Schemas: the envelope and one data schema per event type.

    Immutable: :meth:`merged` returns a new registry. Build one with :meth:`load`.
    """

    def __init__(
        self,
        envelope: dict[str, Any],
        by_type: dict[str, str],
        resources: dict[str, dict[str, Any]],
        origins: dict[str, Path] | None = None,
    ) -> None:
        self._envelope_schema = envelope
        self._by_type = dict(by_type)  # event type -> schema URI
        self._resources = dict(resources)  # schema URI -> schema
        self._origins = dict(origins or {})  # schema URI -> file it came from (for messages)
        self._indexed = frozenset(self._by_type.values())
        registry: Registry = Registry().with_resources(
            (uri, Resource.from_contents(schema, default_specification=DRAFT202012))
            for uri, schema in self._resources.items()
        )
        self._registry = registry
        self._envelope = Draft202012Validator(envelope, registry=registry)
        self._validators: dict[str, Validator] = {}

    # -- building -----------------------------------------------------------
    @classmethod
    def load(cls, *directories: str | Path, bundled: bool = True) -> SchemaRegistry:
        """The bundled schemas (unless ``bundled=False``) with each directory merged over them in turn.

        Raises :class:`~saga_harness.errors.ConfigError` naming the file for a missing
        directory or index, a file that is not JSON, or a schema that is not one.
        """
        envelope = _read_json(BUNDLED / ENVELOPE_FILE)
        by_type: dict[str, str] = {}
        resources: dict[str, dict[str, Any]] = {}
        origins: dict[str, Path] = {}
        for directory in ([BUNDLED] if bundled else []) + [Path(d) for d in directories]:
            types, found = _load_directory(directory)
            by_type.update(types)
            for uri, (schema, path) in found.items():
                resources[uri] = schema
                origins[uri] = path
        return cls(envelope, by_type, resources, origins)

    def merged(self, directory: str | Path) -> SchemaRegistry:
        """A new registry: this one with ``directory``'s schemas merged over it (its types win)."""
        types, found = _load_directory(Path(directory))
        resources = {**self._resources, **{uri: schema for uri, (schema, _path) in found.items()}}
        origins = {**self._origins, **{uri: path for uri, (_schema, path) in found.items()}}
        return SchemaRegistry(self._envelope_schema, {**self._by_type, **types}, resources, origins)

    # -- reading ------------------------------------------------------------
    @property
    def types(self) -> frozenset[str]:
        """Every event type with a data schema."""
        return frozenset(self._by_type)

    def schema_uri(self, event_type: str | None, dataschema: Any = None) -> str | None:
        """The URI of the data schema that applies: the event's ``dataschema`` if it names a
        loaded type schema, else its type's; ``None`` when there is none."""
        if isinstance(dataschema, str) and dataschema in self._indexed:
            return dataschema
        return self._by_type.get(event_type) if isinstance(event_type, str) else None

    def _validator(self, uri: str) -> Validator:
        validator = self._validators.get(uri)
        if validator is None:
            schema = self._resources[uri]
            cls = validator_for(schema, default=Draft202012Validator)
            validator = self._validators[uri] = cls(schema, registry=self._registry)
        return validator

    # -- validating ---------------------------------------------------------
    def validate(self, event: Any) -> EventReport:
        """Validate one structured-mode event, exactly as received."""
        if not isinstance(event, dict):
            return invalid(f"an event must be a JSON object, got {_kind(event)}")
        eid, etype = event.get("id"), event.get("type")
        failures = list(_failures(self._envelope, event, ""))
        uri = self.schema_uri(etype, event.get("dataschema"))
        if uri is not None:
            if "data" in event:
                failures.extend(_failures(self._validator(uri), event["data"], "/data"))
            elif "data_base64" in event:
                failures.append(Failure("/data_base64", f"type {etype!r} has a JSON data schema; got binary data"))
            else:
                failures.append(Failure("/data", f"required member 'data' is missing (type {etype!r} has a schema)"))
        status: Status = "invalid" if failures else ("valid" if uri is not None else "unknown")
        return EventReport(
            eid if isinstance(eid, str) else None,
            etype if isinstance(etype, str) else None,
            status,
            tuple(failures),
            uri,
        )


def validate_event(event: Any, registry: SchemaRegistry | None = None) -> EventReport:
    """Validate one structured-mode event (a dict exactly as received) with ``registry``
    (default: the bundled schemas)."""
    return (registry or bundled_registry()).validate(event)


@cache
def bundled_registry() -> SchemaRegistry:
    """The bundled schemas, loaded and compiled once per process."""
    return SchemaRegistry.load()


# -- the summary -------------------------------------------------------------
@dataclass
class _TypeCounts:
    valid: int = 0
    invalid: int = 0
    unknown: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    omitted: int = 0


@dataclass
class EventSummary:
    """Counts by event type (valid / invalid / unknown) and the first ``cap`` invalid events
    of each type with their failures. ``to_json()`` is what ``contracts.json`` holds."""

    cap: int = 50
    _by_type: dict[str, _TypeCounts] = field(default_factory=dict)

    def add(self, report: EventReport, where: str | None = None) -> None:
        """Count ``report``; ``where`` (a line number, a history ref) is kept with its failures."""
        counts = self._by_type.get(report.type or NO_TYPE)
        if counts is None:
            counts = self._by_type[report.type or NO_TYPE] = _TypeCounts()
        if report.status == "valid":
            counts.valid += 1
        elif report.status == "unknown":
            counts.unknown += 1
        else:
            counts.invalid += 1
            if len(counts.failures) < self.cap:
                counts.failures.append(
                    {"id": report.id, "where": where, "failures": [f.to_json() for f in report.failures]}
                )
            else:
                counts.omitted += 1

    def total(self, status: Status) -> int:
        """How many events had ``status``."""
        return sum(getattr(c, status) for c in self._by_type.values())

    @property
    def events(self) -> int:
        return sum(c.valid + c.invalid + c.unknown for c in self._by_type.values())

    @property
    def unknown_types(self) -> list[str]:
        """Types seen with no data schema, sorted."""
        return sorted(t for t, c in self._by_type.items() if c.unknown)

    def by_type(self) -> dict[str, dict[str, int]]:
        """``{type: {"valid": n, "invalid": n, "unknown": n}}``, types sorted."""
        return {
            t: {"valid": c.valid, "invalid": c.invalid, "unknown": c.unknown} for t, c in sorted(self._by_type.items())
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "valid": self.total("valid"),
            "invalid": self.total("invalid"),
            "unknown": self.total("unknown"),
            "unknown_types": self.unknown_types,
            "by_type": self.by_type(),
            "failures": {
                t: {"events": c.failures, "omitted": c.omitted} for t, c in sorted(self._by_type.items()) if c.invalid
            },
        }


# -- internals ----------------------------------------------------------------
def _load_directory(directory: Path) -> tuple[dict[str, str], dict[str, tuple[dict[str, Any], Path]]]:
    """A directory's type index (type -> schema URI) and its schemas (URI -> (schema, file))."""
    if not directory.is_dir():
        raise ConfigError(
            f"schema directory {directory} does not exist or is not a directory; pass a directory holding "
            f"{INDEX_FILE} and the JSON Schema files it names"
        )
    index_path = directory / INDEX_FILE
    if not index_path.is_file():
        raise ConfigError(
            f"schema directory {directory} has no {INDEX_FILE}; add one mapping each CloudEvent type to "
            f'its data schema file, e.g. {{"com.example.order.created": "order.created.json"}}'
        )
    index = _read_json(index_path)
    if not isinstance(index, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in index.items()):
        raise ConfigError(f"{index_path} must be a JSON object mapping event types to schema file names")
    found: dict[str, tuple[dict[str, Any], Path]] = {}
    uri_of: dict[Path, str] = {}
    for path in sorted(directory.glob("*.json")):
        if path.name in (INDEX_FILE, ENVELOPE_FILE):
            continue
        schema = _read_json(path)
        if not isinstance(schema, dict):
            raise ConfigError(f"{path} is not a JSON Schema: its top level must be an object")
        if "$id" not in schema:
            # Without an $id the file's own URI is its base, so "other.json#/$defs/x" refs resolve.
            schema = {"$id": path.resolve().as_uri(), **schema}
        try:
            validator_for(schema, default=Draft202012Validator).check_schema(schema)
        except SchemaError as exc:
            raise ConfigError(f"{path} is not a valid JSON Schema: {exc.message}") from None
        found[schema["$id"]] = (schema, path)
        uri_of[path.resolve()] = schema["$id"]
    types: dict[str, str] = {}
    for etype, name in index.items():
        uri = uri_of.get((directory / name).resolve())
        if uri is None:
            raise ConfigError(f"{index_path}: the schema file {name!r} for type {etype!r} is not in {directory}")
        types[etype] = uri
    return types, found


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read schema file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"schema file {path} is not valid JSON: {exc}") from None


def _failures(validator: Validator, instance: Any, prefix: str) -> Iterator[Failure]:
    # Most events are valid: one fast pass first, the error walk only for the rest.
    if validator.is_valid(instance):
        return
    for error in validator.iter_errors(instance):
        yield from _explain(error, prefix)


def _explain(error: ValidationError, prefix: str) -> Iterable[Failure]:
    path = prefix + "".join("/" + _escape(str(p)) for p in error.absolute_path)
    kind = error.validator
    if kind == "required":
        # One error per missing member: point at the member itself.
        member = next(
            (
                m
                for m in error.validator_value
                if isinstance(m, str) and m not in error.instance and repr(m) in error.message
            ),
            None,
        )
        if member is not None:
            noun = "attribute" if path == "" else "field"
            return [Failure(f"{path}/{_escape(member)}", f"required {noun} {member!r} is missing")]
    if "propertyNames" in error.schema_path:
        # The instance is the offending member *name*; point at that member.
        title = error.schema.get("title") if isinstance(error.schema, dict) else None
        name = str(error.instance)
        reason = f"invalid member name: expected {title}, got {_show(name)}" if title else error.message
        return [Failure(f"{path}/{_escape(name)}", reason)]
    if kind == "not" and isinstance(error.validator_value, dict) and error.validator_value.get("title"):
        return [Failure(path, str(error.validator_value["title"]))]
    if kind == "const":
        return [Failure(path, f"must be {_show(error.validator_value)}, got {_show(error.instance)}")]
    if kind == "minLength" and error.instance == "":
        return [Failure(path, "must not be empty")]
    title = error.schema.get("title") if isinstance(error.schema, dict) and "$id" not in error.schema else None
    if title and kind in ("pattern", "type", "anyOf", "oneOf", "minimum", "maximum", "format", "enum"):
        return [Failure(path, f"expected {title}, got {_show(error.instance)}")]
    return [Failure(path, error.message)]


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


__all__ = [
    "BUNDLED",
    "EventReport",
    "EventSummary",
    "Failure",
    "SchemaRegistry",
    "Status",
    "bundled_registry",
    "invalid",
    "validate_event",
]
