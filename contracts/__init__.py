"""Contracts: CloudEvent schemas and the validation of events as they came over the wire.

What users may import from here::

    from saga_harness.contracts import SchemaRegistry, validate_event

    registry = SchemaRegistry.load("schemas")          # yours, merged over the bundled ones
    report = validate_event(event, registry)           # valid / invalid / unknown, with reasons

The ``contracts`` checker (every captured event against its schema) is registered
through the ``saga_harness.checkers`` entry point; pact verification and OpenAPI
fuzzing run through ``saga-harness contracts verify`` / ``fuzz``. Names are
imported on first use: the schemas' validator (jsonschema) is not needed by
every module of this package.
"""

from typing import TYPE_CHECKING

from saga_harness.lazy import exports

_WHERE = {
    "EventReport": "saga_harness.contracts.events",
    "EventSummary": "saga_harness.contracts.events",
    "SchemaRegistry": "saga_harness.contracts.events",
    "bundled_registry": "saga_harness.contracts.events",
    "validate_event": "saga_harness.contracts.events",
}

__all__ = [
    "EventReport",
    "EventSummary",
    "SchemaRegistry",
    "bundled_registry",
    "validate_event",
]

__getattr__, __dir__ = exports(__name__, _WHERE)

if TYPE_CHECKING:  # what type checkers and editors see; at run time, exports() imports on first use
    from saga_harness.contracts.events import (
        EventReport,
        EventSummary,
        SchemaRegistry,
        bundled_registry,
        validate_event,
    )
