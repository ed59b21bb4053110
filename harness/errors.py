"""The harness's one error tree.

::

    HarnessError                 anything the user can fix; the CLI prints it, exit 2
    ├── ConfigError              a broken saga-harness.toml / [tool.saga-harness]
    ├── ScenarioError            a broken or unknown chaos scenario
    ├── SutError                 the system under test would not start / answer
    │   └── MissingAbilityError  a run needs an ability the SUT lacks (refused before it starts)
    └── UnsafeTargetError        a fault or load target outside the allowed hosts

Each message names the file and key (or the URL), the value, and the fix.
Catch ``HarnessError`` at the edge (CLI, pytest plugin); never inside.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can fix; shown as one paragraph, never a traceback."""


class ConfigError(HarnessError):
    """The SUT configuration is missing, malformed or inconsistent."""


class ScenarioError(HarnessError):
    """A chaos scenario is unknown or its file is invalid."""


class SutError(HarnessError):
    """The system under test failed to start, died, or does not answer."""


class UnsafeTargetError(HarnessError):
    """A fault or load target is not on loopback nor in ``allowed_hosts``."""


class MissingAbilityError(SutError):
    """A run needs an ability (process control, link routing, delivery hooks …) the SUT lacks."""
