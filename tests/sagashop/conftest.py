"""Fixtures for testing the reference system as real processes over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from saga_harness.adapters.reference import ReferenceSystem
from shopclient import Shop, start_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """One clean reference system (SQLite) shared by a test module."""
    sut = start_shop(tmp_path_factory.mktemp("shop"))
    try:
        yield Shop(sut)
    finally:
        sut.stop()


@pytest.fixture
def make_shop(tmp_path: Path) -> Iterator[Any]:
    """Start a reference system with options (bugs, env, database) for one test."""
    started: list[ReferenceSystem] = []

    def make(**kw: Any) -> Shop:
        sut = start_shop(tmp_path / f"sut{len(started)}", **kw)
        started.append(sut)
        return Shop(sut)

    try:
        yield make
    finally:
        for sut in started:
            sut.stop()
