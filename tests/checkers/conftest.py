"""Two hand-built saga models, so nothing in a checker can be specific to one system."""

from __future__ import annotations

import pytest
from handbuilt import SHOP, TRIP
from saga_harness.model import SagaModel


@pytest.fixture
def shop() -> SagaModel:
    return SagaModel.model_validate(SHOP)


@pytest.fixture
def trip() -> SagaModel:
    return SagaModel.model_validate(TRIP)
