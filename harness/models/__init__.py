"""Saga models: loading one from a description, and the reference system's."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from pydantic import ValidationError
from saga_harness.model import SagaModel


def load_model(data: dict[str, Any], triggers: dict[str, str] | None = None) -> SagaModel:
    """Validate a ``[model]`` table; ``triggers`` (name → outcome) from the SUT fill in the oracle."""
    data = dict(data)
    if triggers:
        data["triggers"] = {**triggers, **data.get("triggers", {})}
    try:
        return SagaModel.model_validate(data)
    except ValidationError as exc:
        msgs = "; ".join(f"[{'.'.join(str(p) for p in e['loc'])}] {e['msg']}" for e in exc.errors())
        raise ValueError(msgs) from None


@cache
def reference_description() -> dict[str, Any]:
    """The reference system's declarative description (``sagashop/saga-harness.toml``)."""
    text = resources.files("sagashop").joinpath("saga-harness.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def reference_model() -> SagaModel:
    desc = reference_description()
    return load_model(desc["model"], {n: t["outcome"] for n, t in desc.get("triggers", {}).items()})
