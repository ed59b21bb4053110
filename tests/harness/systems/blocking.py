"""A blocking orchestrator for the harness's tests: the whole saga runs inside ``POST /trips``.

Not a worked example, only what the tests need that the examples lack: a saga that passes
through CONFIRMED and then CANCELLED inside one request (``card = "LATE_FAIL"``), an answer
that never comes in time (``LOSE``, found later by ``GET /trips?ref=KEY``), an HTML error page
(``BROKEN``). ``python blocking.py PORT``.
"""

import asyncio
import sys
import uuid

from aiohttp import web

TRIPS: dict[str, dict] = {}
STEP_S = 0.3


async def book(request: web.Request) -> web.Response:
    body = await request.json()
    card = body.get("card", "VISA")
    if card == "BROKEN":
        page = "<html><body><h1>500 Internal Server Error</h1></body></html>"
        return web.Response(status=500, text=page, content_type="text/html")
    trip_id = body.get("trip_id") or f"trip-{uuid.uuid4().hex[:8]}"
    ref = request.headers.get("X-Ref")
    trip = TRIPS[trip_id] = {"trip_id": trip_id, "status": "BOOKING", "ref": ref, "paid": None}
    await asyncio.sleep(STEP_S)
    trip["status"], trip["paid"] = "CONFIRMED", True
    await asyncio.sleep(STEP_S)
    if card == "LATE_FAIL":
        trip["status"], trip["paid"], trip["reason"] = "CANCELLED", False, "card refused at capture"
        await asyncio.sleep(STEP_S)
    if card == "LOSE":
        await asyncio.sleep(3)
    return web.json_response({"trip_id": trip_id, "status": trip["status"]})


async def read(request: web.Request) -> web.Response:
    trip = TRIPS.get(request.match_info["trip_id"])
    if trip is None:
        return web.Response(status=404, text="no such trip")
    return web.json_response(trip)


async def find(request: web.Request) -> web.Response:
    found = [t for t in TRIPS.values() if t["ref"] == request.query.get("ref")]
    return web.json_response({"trips": found}) if found else web.Response(status=404, text="none")


app = web.Application()
app.router.add_post("/trips", book)
app.router.add_get("/trips/{trip_id}", read)
app.router.add_get("/trips", find)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
