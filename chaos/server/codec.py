"""Reading request bodies the way Toxiproxy's Go decoder does, so clients get the same answers.

Go's ``json.Decoder`` reads the first JSON value of the body and ignores what follows,
matches keys case-insensitively, leaves a field alone when it is ``null`` or absent,
and refuses a value of the wrong type (``1.5`` or ``"1"`` for an integer) with
``json: cannot unmarshal ...``. Every failure here is a 400 ``bad request body: ...``.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from saga_harness.chaos.server.errors import BAD_REQUEST_BODY, ApiError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Go type names, shown in type errors: a field declared "int64" refuses 1.5 and "1".
_GO_TYPES = {"string": "string", "bool": "bool", "float32": "float32", "int64": "int64", "int": "int"}


class _Float(float):
    """A JSON number written with a fraction or exponent; Go refuses it for integer fields."""

    text: str


def _parse_float(text: str) -> _Float:
    value = _Float(text)
    value.text = text
    return value


_DECODER = json.JSONDecoder(parse_float=_parse_float)


def decode_body(body: bytes) -> Any:
    """The first JSON value of ``body`` (what follows it is ignored, as in Go)."""
    text = body.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise BAD_REQUEST_BODY.joined("EOF")
    try:
        value, _end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise BAD_REQUEST_BODY.joined("unexpected EOF") from None
        raise BAD_REQUEST_BODY.joined(f"invalid character {text[exc.pos]!r} looking for beginning of value") from None
    return value


def json_kind(value: Any) -> str:
    """The JSON kind Go names in its type errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def type_error(value: Any, where: str, go_type: str) -> ApiError:
    """Go's ``UnmarshalTypeError`` for ``value`` landing in a field of ``go_type``."""
    kind = json_kind(value)
    if kind == "number" and go_type in ("int64", "int"):
        kind = f"number {value.text if isinstance(value, _Float) else value}"
    if where.startswith("Go value"):
        return BAD_REQUEST_BODY.joined(f"json: cannot unmarshal {kind} into {where} of type {go_type}")
    return BAD_REQUEST_BODY.joined(f"json: cannot unmarshal {kind} into Go struct field {where} of type {go_type}")


def _convert(value: Any, go_type: str, where: str) -> Any:
    if go_type == "string" and isinstance(value, str):
        return value
    if go_type == "bool" and isinstance(value, bool):
        return value
    if go_type == "float32" and isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and abs(number) <= 3.4028234663852886e38:
            return number
    if go_type in ("int64", "int") and isinstance(value, int) and not isinstance(value, bool | _Float):
        if INT64_MIN <= value <= INT64_MAX:
            return value
    raise type_error(value, where, _GO_TYPES.get(go_type, go_type))


def decode_fields(obj: Any, fields: dict[str, str], struct_name: str, go_value: str) -> dict[str, Any]:
    """The known ``fields`` (name -> Go type, or "raw") of the JSON object ``obj``, type-checked.

    Absent and ``null`` fields are left out, so callers keep their defaults, as Go does.
    Keys match case-insensitively; the last duplicate wins.
    """
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise type_error(obj, "Go value", go_value)
    by_lower = {name.lower(): name for name in fields}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = key if key in fields else by_lower.get(key.lower())
        if name is None or value is None:
            continue
        go_type = fields[name]
        out[name] = value if go_type == "raw" else _convert(value, go_type, f"{struct_name}.{name}")
    return out


def go_float32(value: float) -> int | float:
    """``value`` as Go prints a float32: the shortest decimal that reads back to the same float32."""
    f32 = struct.unpack("f", struct.pack("f", value))[0]
    if f32.is_integer() and abs(f32) < 1e21:
        return int(f32)
    for digits in range(1, 10):
        candidate = float(f"{f32:.{digits}g}")
        if struct.unpack("f", struct.pack("f", candidate))[0] == f32:
            return candidate
    return f32
