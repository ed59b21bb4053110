"""The suite's order: its longest tests first.

pytest-xdist hands tests to the two workers in collection order; a two-minute test collected last
(the README's walkthrough is `tests/test_readme.py`) would run alone at the end while the other
worker idles. Started first, the long ones overlap and the short ones fill in behind them.
"""

from __future__ import annotations

import pytest

# Tests of 20 s or more in `make test` (see its --durations list), longest first.
LONGEST_FIRST = (
    "tests/test_readme.py::test_every_readme_command_runs_as_documented",
    "tests/sagashop/test_bugs.py::test_event_before_commit_loses_the_fact_when_the_bus_is_down",
    "tests/contracts/test_fuzz.py::test_every_reference_service_survives_bounded_fuzzing",
    "tests/load/test_load.py::test_double_charge_is_caught_under_load_with_lost_acknowledgements",
    "tests/harness/test_run_cli.py::test_the_reference_system_holds_every_invariant",
    "tests/chaos/test_chaos_runs.py::test_scenario_is_green_on_the_reference_system",
    "tests/harness/test_cli_sut.py::test_detached_up_status_down",
    "tests/contracts/test_tripbook_contracts.py::test_tripbook_services_survive_bounded_fuzzing",
)


def _rank(item: pytest.Item) -> int:
    for i, prefix in enumerate(LONGEST_FIRST):
        if item.nodeid.startswith(prefix):
            return i
    return len(LONGEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the rest keep their order
