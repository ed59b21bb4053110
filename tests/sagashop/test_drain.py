"""The reference system's drain signal: each push queue says what it has not delivered yet
(``GET /admin/pending``), and the adapter sums it up for the harness (real processes, real HTTP)."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
from saga_harness.sut import Drain, RetryInterval


def _pending(shop) -> dict[str, int]:
    async def read() -> dict[str, int]:
        async with aiohttp.ClientSession() as http:
            return await shop.sut.pending(http)

    return asyncio.run(read())


def test_a_consumer_down_leaves_deliveries_pending_in_retry_until_it_is_back(make_shop):
    shop = make_shop()
    assert isinstance(shop.sut, Drain) and isinstance(shop.sut, RetryInterval)
    assert shop.sut.retry_interval_s() == 2.0
    shop.wait([shop.start("ok")])
    deadline = time.monotonic() + 30
    while any(_pending(shop).values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(_pending(shop).values()) == {0}
    shop.sut.kill("loyalty", signal.SIGSTOP)  # loyalty takes nothing: its deliveries wait and retry
    try:
        shop.wait([shop.start("ok")])
        deadline = time.monotonic() + 30
        while shop.get("eventbus", "/admin/pending")["retrying"] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        bus = shop.get("eventbus", "/admin/pending")
        assert bus["retrying"] >= 1 and bus["queues"].get("loyalty-order", 0) >= 1, bus
        assert _pending(shop)["eventbus"] == bus["pending"] >= 1
    finally:
        shop.sut.kill("loyalty", signal.SIGCONT)
    deadline = time.monotonic() + 30  # the retry backs off at most 2 s
    while _pending(shop)["eventbus"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _pending(shop)["eventbus"] == 0 and shop.get("eventbus", "/admin/pending")["retrying"] == 0


def test_a_paused_component_cannot_say_and_the_adapter_raises(make_shop):
    shop = make_shop()
    shop.sut.kill("taskqueue", signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        try:
            _pending(shop)
        except (aiohttp.ClientError, TimeoutError):
            pass
        else:
            raise AssertionError("a paused task queue cannot say what it has pending")
        assert time.monotonic() - t0 < 5  # a short read timeout: the harness asks again soon
    finally:
        shop.sut.kill("taskqueue", signal.SIGCONT)
