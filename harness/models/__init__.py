"""Saga models: loading one from a description, and the reference system's."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from saga_harness.model import EVIDENCE_KEYS, TERM_KEYS, Match, SagaModel, Term


class ModelError(ValueError):
    """A ``[model]`` (or a trigger's demand) that does not validate.

    ``str()`` is one ``[key.path] what is wrong`` per error, joined by ``"; "``, with a
    "did you mean" for a misspelt key; paths start at the config's top level
    (``model.steps.0.done.evnt``, ``triggers.poor.fails_at``). ``lines`` holds them one by
    one (path, message); ``validation_error`` is pydantic's own error."""

    def __init__(self, validation_error: ValidationError, lines: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"[{loc}] {msg}" for loc, msg in lines))
        self.validation_error = validation_error
        self.lines = lines


def load_model(data: Mapping[str, Any], triggers: Mapping[str, Any] | None = None) -> SagaModel:
    """Validate a ``[model]`` table; ``triggers`` from the SUT fill in the outcome oracle.

    A trigger's demand is an outcome (``"completed"``) or a dict ``{"outcome": one or a list
    ("any" allowed), "under_faults": list or None, "fails_at": step or None, "reason": text,
    "re:REGEX" or None, "error_type": text or None}``; ``[model.triggers]`` overrides them.
    Raises :class:`ModelError` (a ``ValueError``)."""
    data = dict(data)
    own = dict(data.get("triggers") or {})
    if triggers:
        data["triggers"] = {**triggers, **own}
    try:
        return SagaModel.model_validate(data)
    except ValidationError as exc:
        raise ModelError(exc, describe_model_error(exc, sut_triggers=set(triggers or ()) - set(own))) from None


def describe_model_error(
    exc: ValidationError, sut_triggers: set[str] | frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """Pydantic's errors for a :class:`SagaModel` as (path, message) pairs: paths from the
    config's top level (a trigger named in ``sut_triggers`` is under ``[triggers]``, the rest
    under ``[model]``), "did you mean" for unknown keys, no "Value error," prefix."""
    out = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not str(p).startswith("function-")]
        prefix = [] if (len(loc) >= 2 and loc[0] == "triggers" and loc[1] in sut_triggers) else ["model"]
        path = ".".join(str(p) for p in (*prefix, *loc))
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(tuple(loc[:-1]))
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            msg = "unknown key" + (f" — did you mean {close[0]!r}?" if close else f"; keys here: {', '.join(allowed)}")
        elif err["type"] not in ("saga_model",) and "input" in err and not isinstance(err["input"], (dict, list)):
            msg += f" (got {err['input']!r})"
        out.append((path, msg))
    return out


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a table at ``loc`` (within [model]) may have."""
    model: Any = SagaModel
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(str(part))
        if field is None:
            # a dict's key (a trigger's name): the values' model
            continue
        model = _model_of(field.annotation)
    if model in (Match, Term):
        return [*EVIDENCE_KEYS, *(TERM_KEYS if model is Term else ())]
    fields = getattr(model, "model_fields", {})
    return [f.alias or name for name, f in fields.items()]


def _model_of(annotation: Any) -> Any:
    """The pydantic model inside an annotation (``list[Step]``, ``Match | None``, ``dict[str, X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation) if get_origin(annotation) is not None or get_args(annotation) else ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


@cache
def reference_description() -> dict[str, Any]:
    """The reference system's declarative description (``sagashop/saga-harness.toml``)."""
    text = resources.files("sagashop").joinpath("saga-harness.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def reference_model() -> SagaModel:
    """The reference system's model, with the outcome each of its triggers demands."""
    desc = reference_description()
    return load_model(desc["model"], {n: t["outcome"] for n, t in desc.get("triggers", {}).items()})


__all__ = ["ModelError", "describe_model_error", "load_model", "reference_description", "reference_model"]
