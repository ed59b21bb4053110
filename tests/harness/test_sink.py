"""The event sink records what came over the wire, in both content modes."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from saga_harness.sink import EventSink


def _run(scenario):
    got: list[dict] = []

    async def main():
        sink = EventSink(got.append)
        await sink.start()
        try:
            async with aiohttp.ClientSession() as http:
                return await scenario(http, sink.url)
        finally:
            await sink.stop()

    return asyncio.run(main()), got


def test_binary_and_structured_modes_are_recorded_as_sent():
    async def scenario(http, url):
        statuses = []
        async with http.post(
            url,
            data=b'{"a": 1}',
            headers={
                "ce-specversion": "1.0",
                "ce-id": "e1",
                "ce-source": "/s",
                "ce-type": "t.one",
                "ce-sagaid": "s1",
                "Content-Type": "application/json",
            },
        ) as r:
            statuses.append(r.status)
        body = {"specversion": "1.0", "id": "e2", "source": "/s", "type": "t.two", "data": {"b": 2}}
        async with http.post(url, data=json.dumps(body), headers={"Content-Type": "application/cloudevents+json"}) as r:
            statuses.append(r.status)
        return statuses

    statuses, got = _run(scenario)
    assert statuses == [204, 204]
    assert got[0] == {
        "specversion": "1.0",
        "id": "e1",
        "source": "/s",
        "type": "t.one",
        "sagaid": "s1",
        "datacontenttype": "application/json",
        "data": {"a": 1},
    }
    assert got[1]["id"] == "e2" and got[1]["data"] == {"b": 2}


def test_missing_attributes_are_not_filled_in():
    async def scenario(http, url):
        async with http.post(
            url, data=b"{}", headers={"ce-type": "t", "ce-source": "/s", "Content-Type": "application/json"}
        ) as r:
            return r.status

    status, got = _run(scenario)
    assert status == 204 and "id" not in got[0] and "specversion" not in got[0]


def test_batched_mode_and_garbage_are_refused():
    async def scenario(http, url):
        out = []
        async with http.post(url, data=b"[]", headers={"Content-Type": "application/cloudevents-batch+json"}) as r:
            out.append((r.status, (await r.json())["reason"]))
        async with http.post(url, data=b"{nope", headers={"Content-Type": "application/cloudevents+json"}) as r:
            out.append((r.status, (await r.json())["reason"]))
        return out

    out, got = _run(scenario)
    assert out[0][0] == 400 and "batched" in out[0][1]
    assert out[1][0] == 400 and "not valid JSON" in out[1][1]
    assert got == []
