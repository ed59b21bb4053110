"""Chaos: fault scenarios (YAML data) and the nemesis that applies them.

What users may import from here::

    from saga_harness.chaos import catalogue, load_scenario

    scenario, path = load_scenario("duplicate-deliveries")   # or the path of your own YAML file

Scenarios run through ``saga-harness chaos run`` and the pytest plugin's
``saga_scenario`` marker. Names are imported on first use: the embedded
Toxiproxy server (``saga_harness.chaos.server``) starts without the scenario
machinery (pydantic, YAML).
"""

from typing import TYPE_CHECKING

from saga_harness.lazy import exports

_WHERE = {
    "Fault": "saga_harness.chaos.scenario",
    "Scenario": "saga_harness.chaos.scenario",
    "catalogue": "saga_harness.chaos.scenario",
    "load_scenario": "saga_harness.chaos.scenario",
}

__all__ = [
    "Fault",
    "Scenario",
    "catalogue",
    "load_scenario",
]

__getattr__, __dir__ = exports(__name__, _WHERE)

if TYPE_CHECKING:  # what type checkers and editors see; at run time, exports() imports on first use
    from saga_harness.chaos.scenario import Fault, Scenario, catalogue, load_scenario
