"""Adapters that start and describe a system under test, and the one loader that picks one.

- ``reference``: the bundled reference system (``sagashop``), through the
  :class:`~saga_harness.supervisor.Supervisor`;
- ``declarative``: any HTTP saga system a ``saga-harness.toml`` describes;
- ``fake``: an in-process saga engine for fast tests (no process, no port but the sink's).

SUT plugins (``reference``, ``fake`` and third parties') are registered under the
entry-point group :data:`~saga_harness.sut.ENTRY_POINT_GROUP`; :func:`load_sut` picks one.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path

from saga_harness.adapters.declarative import DeclarativeSystem
from saga_harness.config import find_config, load_config
from saga_harness.errors import ConfigError
from saga_harness.sut import ENTRY_POINT_GROUP, SystemUnderTest

__all__ = ["load_sut", "sut_names"]

DEFAULT_SUT = "reference"


def sut_names() -> list[str]:
    """The SUT plugins installed (entry-point names), sorted."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_sut(
    run_dir: str | Path,
    *,
    sut: str | None = None,
    config: str | Path | None = None,
    bugs: str | None = None,
    database_url: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> SystemUnderTest:
    """The SUT to test, not started: the plugin named ``sut``; else the one ``config``
    describes, else a ``saga-harness.toml`` (or ``[tool.saga-harness]``) in the current
    directory; else the reference system. Mistakes are :class:`ConfigError` (exit 2)."""
    if sut and config:
        raise ConfigError(
            f"--sut {sut} and --config {config} both name the system under test; give one of them "
            f"(--config for a saga-harness.toml, --sut for an installed SUT plugin)"
        )
    path = None if sut else (Path(config) if config else find_config())
    if path is not None:
        if bugs:
            switches = ""
            try:
                own = sorted(load_config(path).env)
                switches = f" (its [env] declares {', '.join(own)})" if own else ""
            except ConfigError:
                pass
            raise ConfigError(
                f"--bugs {bugs} switches on the seeded bugs of an installed SUT plugin (the reference system, "
                f"the fake); {path} describes another system, whose own switches go in its environment: give "
                f"them with --env KEY=VALUE (repeatable){switches}, or set them under [env] in {path}. They reach "
                "every service the harness starts, are recorded with the run and appear in its reproduce line."
            )
        if database_url:
            raise ConfigError(f"--database-url configures the reference system; {path} describes another SUT")
        return DeclarativeSystem.from_file(path, run_dir, extra_env=extra_env)
    name = sut or DEFAULT_SUT
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name not in eps:
        close = difflib.get_close_matches(name, eps, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"--sut: no SUT plugin named {name!r}.{hint} Installed: {', '.join(sorted(eps)) or 'none'} "
            f"(entry-point group {ENTRY_POINT_GROUP}); or describe your system with --config saga-harness.toml"
        )
    factory = eps[name].load()
    return factory(run_dir=run_dir, bugs=bugs or (), database_url=database_url, extra_env=extra_env)
