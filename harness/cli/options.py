"""Options several commands share: which SUT (``--sut``, ``--config``), its switches (``--env``),
and the command line that reproduces a run."""

from __future__ import annotations

import shlex
import sys

from saga_harness.errors import ConfigError

SUT_HELP = "a SUT plugin by name: reference (the default), fake (in-process, for fast tests), …"
CONFIG_HELP = "saga-harness.toml describing your SUT"
ENV_HELP = "KEY=VALUE for the SUT (its processes' environment; the fake's options); repeatable"


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    """``["A=1", "B=x"]`` → ``{"A": "1", "B": "x"}``; anything else is a ConfigError naming it."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--env {pair!r}: write KEY=VALUE, e.g. --env FAKE_STEP_S=0.01")
        out[key.strip()] = value
    return out


def command_line() -> str:
    """This invocation as a shell command (``saga-harness …``), to print as the way to reproduce it."""
    return " ".join(shlex.quote(a) for a in ["saga-harness", *sys.argv[1:]])
