"""saga-harness: contract testing and chaos for distributed sagas.

What users may import from here — the errors, the verdicts, the saga model, the
checker registry, and the means to read a history or build one by hand::

    from saga_harness import HistoryBuilder, SagaModel

    b = HistoryBuilder()
    b.saga("s1")
    b.status("s1", "DONE", "completed")
    b.check(SagaModel.model_validate(description)).assert_ok()

The rest of the public surface is in ``saga_harness.checkers``,
``saga_harness.history``, ``saga_harness.reports``, ``saga_harness.contracts``
and ``saga_harness.chaos``; any other module may change without notice.

``import saga_harness`` is cheap (the pytest plugin imports it at every pytest
start-up): each name below is imported from its module on first use.
"""

from typing import TYPE_CHECKING

from saga_harness.lazy import exports

_WHERE = {
    "ConfigError": "saga_harness.errors",
    "HarnessError": "saga_harness.errors",
    "HistoryBuilder": "saga_harness.testing",
    "MissingAbilityError": "saga_harness.errors",
    "SagaModel": "saga_harness.model",
    "ScenarioError": "saga_harness.errors",
    "SutError": "saga_harness.errors",
    "UnsafeTargetError": "saga_harness.errors",
    "Verdict": "saga_harness.checkers.verdict",
    "Verdicts": "saga_harness.checkers.verdict",
    "Violation": "saga_harness.checkers.verdict",
    "read_history": "saga_harness.history.reader",
    "register": "saga_harness.checkers",
    "run_checks": "saga_harness.checkers",
}

__all__ = [
    "ConfigError",
    "HarnessError",
    "HistoryBuilder",
    "MissingAbilityError",
    "SagaModel",
    "ScenarioError",
    "SutError",
    "UnsafeTargetError",
    "Verdict",
    "Verdicts",
    "Violation",
    "read_history",
    "register",
    "run_checks",
]

__getattr__, __dir__ = exports(__name__, _WHERE)

if TYPE_CHECKING:  # what type checkers and editors see; at run time, exports() imports on first use
    from saga_harness.checkers import register, run_checks
    from saga_harness.checkers.verdict import Verdict, Verdicts, Violation
    from saga_harness.errors import (
        ConfigError,
        HarnessError,
        MissingAbilityError,
        ScenarioError,
        SutError,
        UnsafeTargetError,
    )
    from saga_harness.history.reader import read_history
    from saga_harness.model import SagaModel
    from saga_harness.testing import HistoryBuilder
