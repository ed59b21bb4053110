"""A described system's drain signal: ``[drain.pending]`` reads and ``[drain] retry_interval_s``
give the declarative adapter the Drain and RetryInterval abilities, checked when the file loads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from saga_harness.adapters.declarative import DeclarativeSystem
from saga_harness.errors import ConfigError, SutError
from saga_harness.sut import Drain, RetryInterval

ROOT = Path(__file__).resolve().parents[2]

BASE = """
name = "tiny"
[services.api]
external = true
url = "{url}"
[saga.start]
service = "api"
path = "/sagas"
saga_id = "/id"
[saga.status]
service = "api"
path = "/sagas/{{saga_id}}"
state = "/state"
[saga.terminal]
DONE = "completed"
[triggers.ok]
outcome = "completed"
request = {{}}
"""


def _system(tmp_path: Path, extra: str, url: str = "http://127.0.0.1:9") -> DeclarativeSystem:
    path = tmp_path / "saga-harness.toml"
    path.write_text(BASE.format(url=url) + extra)
    return DeclarativeSystem.from_file(path, tmp_path / "run")


def test_the_reference_description_declares_its_drain_signal(tmp_path):
    sut = DeclarativeSystem.from_file(ROOT / "fixtures/sagashop/saga-harness.toml", tmp_path)
    assert isinstance(sut, Drain) and isinstance(sut, RetryInterval) and sut.retry_interval_s() == 2.0


def test_without_drain_there_is_no_such_ability(tmp_path):
    sut = _system(tmp_path, "")
    assert not isinstance(sut, Drain) and not isinstance(sut, RetryInterval)
    only_retry = _system(tmp_path, "[drain]\nretry_interval_s = 1.5\n")
    assert isinstance(only_retry, RetryInterval) and not isinstance(only_retry, Drain)


def test_a_drain_read_naming_an_unknown_service_is_refused_when_the_file_loads(tmp_path):
    with pytest.raises(ConfigError, match=r"drain\.pending\.q\.service names service 'apj'.*did you mean 'api'"):
        _system(tmp_path, '[drain.pending]\nq = { service = "apj", path = "/pending" }\n')


def test_the_counts_are_read_at_their_pointers_and_a_bad_answer_is_an_error(tmp_path):
    counts = {"queue": {"backlog": {"n": 3}}, "bus": {"pending": 0}}

    async def go() -> tuple[dict[str, int], str]:
        def answer(body: dict) -> object:
            async def handler(_request: web.Request) -> web.Response:
                return web.json_response(body)

            return handler

        app = web.Application()
        app.router.add_get("/queue", answer(counts["queue"]))
        app.router.add_get("/bus", answer(counts["bus"]))
        app.router.add_get("/broken", answer({"nothing": True}))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        try:
            good = _system(
                tmp_path,
                '[drain.pending]\nqueue = { service = "api", path = "/queue", count = "/backlog/n" }\n'
                'bus = { service = "api", path = "/bus" }\n',
                url,
            )
            bad = _system(tmp_path, '[drain.pending]\nx = { service = "api", path = "/broken" }\n', url)
            async with aiohttp.ClientSession() as http:
                read = await good.pending(http)
                try:
                    await bad.pending(http)
                except SutError as exc:
                    return read, str(exc)
                return read, ""
        finally:
            await runner.cleanup()

    read, error = asyncio.run(go())
    assert read == {"queue": 3, "bus": 0}
    assert "drain.pending.x" in error and "/pending" in error and "fix [drain.pending.x]" in error
