"""JSON Pointers (RFC 6901): how configs and models say where a value sits."""

from __future__ import annotations

from typing import Any

MISSING = object()


def resolve(doc: Any, pointer: str, default: Any = MISSING) -> Any:
    """The value at ``pointer`` in ``doc``; ``default`` (or KeyError) when absent."""
    if pointer in ("", "/"):
        return doc
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/': {pointer!r}")
    node = doc
    for raw in pointer[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            if default is MISSING:
                raise KeyError(pointer)
            return default
    return node
