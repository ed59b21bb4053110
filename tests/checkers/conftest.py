"""Two hand-built saga models, so nothing in a checker can be specific to one system."""

from __future__ import annotations

import copy

import pytest
from handbuilt import SHOP, TRIP
from saga_harness.model import SagaModel
from saga_harness.models import load_model


@pytest.fixture
def shop() -> SagaModel:
    return SagaModel.model_validate(SHOP)


@pytest.fixture
def trip() -> SagaModel:
    return SagaModel.model_validate(TRIP)


# A checkout saga with no events, modelled from what the harness sees: the answers to its
# start steps (create_order, then checkout, a text answer), per-saga reads (reservation,
# order) and the status history. Reserve → charge → confirm; a refused charge releases.
CHECKOUT = {
    "steps": [
        {
            "name": "reserve",
            "compensation": "release",
            "done": {"read": "reservation", "pointer": "/status", "in": ["held", "released"]},
            "undone": {"read": "reservation", "pointer": "/status", "equals": "released"},
        },
        {
            "name": "charge",
            "done": {"answer": "checkout", "status": 200, "text": "re:^Checkout successful", "repeats": "effect"},
        },
        {"name": "confirm", "done": {"state": "PAID"}},
    ],
    "states": {
        "initial": ["NEW"],
        "terminal": {"PAID": "completed", "REFUSED": "compensated", "BROKEN": "failed"},
        "transitions": {"NEW": ["PAID", "REFUSED", "BROKEN"]},
    },
    "quantities": [
        {
            "name": "money",
            "plus": [{"answer": "checkout", "status": 200, "value": "re:charged (\\d+)", "repeats": "effect"}],
            "completed_equals": {"read": "order", "value": "/total"},
        },
        {"name": "stock", "plus": [{"read": "reservation", "pointer": "/status", "equals": "held", "value": "/qty"}]},
    ],
    "balances": [{"name": "wallet", "service": "wallet", "quantity": "money", "value": "/spent"}],
}
CHECKOUT_TRIGGERS = {
    "ok": {"outcome": "completed", "under_faults": ["completed", "compensated"]},
    "poor": {
        "outcome": "compensated",
        "fails_at": "charge",
        "reason": "insufficient credit",
        "error_type": "PaymentRefused",
    },
    "race": {"outcome": ["completed", "compensated"]},
}


class Checkout:
    """Builds checkout sagas as the harness would record them (no events)."""

    def completed(self, b, sid: str = "c1", total: int = 30, trigger: str = "ok") -> None:
        b.step("create_order", sid, body={"order_id": sid}, trigger=trigger)
        b.status(sid, "NEW")
        b.step("checkout", sid, body=f"Checkout successful: charged {total}", trigger=trigger)
        b.status(sid, "PAID")

    def refused(self, b, sid: str = "c2", trigger: str = "poor", **fields) -> None:
        b.step("create_order", sid, body={"order_id": sid}, trigger=trigger)
        b.status(sid, "NEW")
        b.step("checkout", sid, body="Checkout failed: insufficient credit", status=400, trigger=trigger)
        fields = {"failed_step": "charge", "reason": "insufficient credit", "error_type": "PaymentRefused", **fields}
        b.status(sid, "REFUSED", **fields)

    def reads(self, b, reservations: dict, totals: dict) -> None:
        """The per-saga reads at the end: each saga's reservation and order."""
        b.read("reservation", reservations)
        b.read("order", {sid: {"total": t} for sid, t in totals.items()})


@pytest.fixture
def checkout() -> SagaModel:
    return load_model(CHECKOUT, CHECKOUT_TRIGGERS)


@pytest.fixture
def sagas() -> Checkout:
    return Checkout()


@pytest.fixture
def checkout_data() -> tuple[dict, dict]:
    """The checkout model's [model] table and its triggers, as the config passes them (copies)."""
    return copy.deepcopy(CHECKOUT), copy.deepcopy(CHECKOUT_TRIGGERS)
