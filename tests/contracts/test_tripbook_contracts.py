"""The second SUT's contracts, through its saga-harness.toml alone: pacts, fuzzing, event schemas.

Tripbook knows nothing of the harness: its consumers' pacts live in
``fixtures/tripbook/pacts`` and its event schemas in ``fixtures/tripbook/schemas``,
both named by the ``[contracts]`` table of its config.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from pact import Pact, match
from saga_cli import saga_harness

ROOT = Path(__file__).resolve().parents[2]
TRIPBOOK = ROOT / "fixtures" / "tripbook"
CONFIG = TRIPBOOK / "saga-harness.toml"


def test_tripbook_consumers_write_their_pacts():
    trip = {"traveller": "ada", "flight": "LH1", "hotel": "Grand", "car": "Fiat", "card": "VISA"}
    client = Pact("client", "trips").with_specification("V4")
    (
        client.upon_receiving("a trip request")
        .with_request("POST", "/trips")
        .with_header("X-Request-Id", match.str("req-1"))
        .with_body(trip, "application/json")
        .will_respond_with(201)
        .with_body(
            {
                "trip": {
                    "id": match.regex("trip-0123456789abcdef", regex=r"^trip-[0-9a-f]{16}$"),
                    "status": match.str("BOOKING_FLIGHT"),
                }
            }
        )
    )
    (
        client.upon_receiving("a status request for an unknown trip")
        .with_request("GET", "/trips/trip-unknown")
        .will_respond_with(404)
        .with_body({"detail": "no such trip"})
    )
    with client.serve() as srv:
        base = str(srv.url).rstrip("/")
        assert httpx.post(f"{base}/trips", json=trip, headers={"X-Request-Id": "req-1"}).status_code == 201
        assert httpx.get(f"{base}/trips/trip-unknown").status_code == 404
    client.write_file(TRIPBOOK / "pacts", overwrite=True)

    trips = Pact("trips", "suppliers").with_specification("V4")
    booking = {"trip": "trip-0123456789abcdef", "item": "LH1", "card": "VISA"}
    (
        trips.upon_receiving("a flight booking")
        .with_request("POST", "/flights")
        .with_body(booking, "application/json")
        .will_respond_with(201)
        .with_body({"trip": booking["trip"], "status": "booked", "price": match.int(300)})
    )
    (
        trips.upon_receiving("a flight booking with a declined card")
        .with_request("POST", "/flights")
        .with_body({**booking, "trip": "trip-00000000000000d1", "card": "DECLINED"}, "application/json")
        .will_respond_with(409)
        .with_body({"detail": {"reason": match.str("card declined")}})
    )
    with trips.serve() as srv:
        base = str(srv.url).rstrip("/")
        assert httpx.post(f"{base}/flights", json=booking).status_code == 201
        declined = {**booking, "trip": "trip-00000000000000d1", "card": "DECLINED"}
        assert httpx.post(f"{base}/flights", json=declined).status_code == 409
    trips.write_file(TRIPBOOK / "pacts", overwrite=True)


def test_tripbook_providers_honour_their_pacts_through_config_alone(tmp_path):
    proc = saga_harness("contracts", "verify", "--config", str(CONFIG), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    pacts = json.loads((tmp_path / "run" / "contracts.json").read_text())["pacts"]
    assert {i["provider"] for i in pacts["interactions"]} == {"trips", "suppliers"} and pacts["failed"] == 0


def test_tripbook_services_survive_bounded_fuzzing_through_config_alone(tmp_path):
    proc = saga_harness(
        "contracts",
        "fuzz",
        "--config",
        str(CONFIG),
        "--max-examples",
        "5",
        "--out",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    fuzz = json.loads((tmp_path / "run" / "contracts.json").read_text())["fuzz"]
    assert {s["service"] for s in fuzz["services"]} == {"trips", "suppliers", "notify"}


def test_tripbook_events_are_judged_by_its_own_schemas(tmp_path):
    proc = saga_harness(
        "run", "--config", str(CONFIG), "--sagas", "20", "--seed", "3", "--out", str(tmp_path / "run"), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    verdicts = json.loads((tmp_path / "run" / "verdicts.json").read_text())
    contracts = next(c for c in verdicts["checks"] if c["name"] == "contracts")
    assert contracts["ok"] and contracts["stats"]["valid"] > 0
    assert contracts["stats"]["unknown"] == 0, contracts["stats"]["unknown_types"]
