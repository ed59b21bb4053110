"""Lazy exports for a package's ``__init__``: a name is imported from its module on first use.

``import saga_harness`` runs at every pytest start-up (the plugin is registered
by an entry point), so the package must not import pydantic, jinja2 or jsonschema
until a user asks for something that needs them. Each package lists its public
names and where they live; :func:`exports` returns the module-level
``__getattr__`` and ``__dir__`` that resolve them (PEP 562).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose public name ``n`` lives in module ``where[n]``."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later uses skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
