"""One HTTP request of a saga's start, lookup or read, sent with aiohttp and its answer decoded.

The runner and the declarative adapter send requests the start plan rendered
(:class:`~saga_harness.startplan.Request`) through :func:`send`; the answer comes back
as an :class:`~saga_harness.startplan.Answer` whatever it holds (JSON, text, an HTML
error page, nothing), so no answer can end a run with a decoding error.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from saga_harness.startplan import Answer, Request, decode_answer

__all__ = ["get", "send"]


async def send(http: aiohttp.ClientSession, urls: Mapping[str, str], request: Request) -> Answer:
    """Send ``request`` to its service's URL in ``urls``; its answer (aiohttp's errors pass through:
    no answer is the caller's to record)."""
    timeout = aiohttp.ClientTimeout(total=request.timeout_s) if request.timeout_s else None
    kwargs: dict = {"headers": dict(request.headers)}
    if request.body is not None:
        kwargs["json"] = request.body
    if timeout is not None:
        kwargs["timeout"] = timeout
    async with http.request(request.method, urls[request.service] + request.path, **kwargs) as resp:
        body = await resp.read()
        return decode_answer(resp.status, resp.headers.get("Content-Type"), body)


async def get(http: aiohttp.ClientSession, url: str) -> Answer:
    """GET ``url``; its answer, decoded."""
    async with http.get(url) as resp:
        return decode_answer(resp.status, resp.headers.get("Content-Type"), await resp.read())
