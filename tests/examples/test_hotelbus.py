"""hotelbus over real HTTP: five real processes, a choreographed saga correct and with each seeded bug.

An event sink in this test process plays the outside observer: the bus pushes
every event to it (``HOTELBUS_EVENT_SINK``), and the sink notes when each one
arrived by its own clock, since the events' ``time`` is only to the second.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from saga_harness.ports import free_ports

PROCESSES = ("bus", "bookings", "payments", "rooms", "shuttles")
SUBSCRIPTIONS = {
    # subscriber: (topics, push mode) — both CloudEvents modes are in use
    "bookings": ("hotel.payment.*,hotel.room.*,hotel.shuttle.*", "binary"),
    "payments": (
        "hotel.booking.requested,hotel.room.unavailable,hotel.room.released,hotel.shuttle.unavailable",
        "binary",
    ),
    "rooms": ("hotel.payment.charged,hotel.shuttle.unavailable", "structured"),
    "shuttles": ("hotel.room.held", "binary"),
}
SECOND = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
TERMINAL = ("CONFIRMED", "CANCELLED")


@dataclass(frozen=True)
class Arrival:
    """One push the sink received, stamped with the sink's clock."""

    at: float
    event: dict[str, Any]

    @property
    def type(self) -> str:
        return self.event["type"]


class Sink:
    """An HTTP endpoint that keeps every CloudEvent pushed to it (structured or binary mode)."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-type", "").startswith("application/cloudevents+json"):
                    event = json.loads(body)
                else:
                    event = {k[3:].lower(): unquote(v) for k, v in self.headers.items() if k.lower().startswith("ce-")}
                    event["data"] = json.loads(body) if body else None
                with sink._lock:
                    sink.arrivals.append(Arrival(time.monotonic(), event))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the bus pushes side by side: a backlog of 5 would refuse some

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def of(self, booking_id: str) -> list[Arrival]:
        """What arrived about one booking, in arrival order (redeliveries included)."""
        with self._lock:
            return [a for a in self.arrivals if a.event.get("subject") == booking_id]

    def types(self, booking_id: str) -> list[str]:
        """Event types of one booking in arrival order, each event once."""
        seen, types = set(), []
        for arrival in self.of(booking_id):
            key = (arrival.event["source"], arrival.event["id"])
            if key not in seen:
                seen.add(key)
                types.append(arrival.type)
        return types

    def first(self, booking_id: str, type_: str) -> Arrival:
        return next(a for a in self.of(booking_id) if a.type == type_)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def eventually(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Hotel:
    """A running hotelbus, a client of its services, and the sink that watches its events."""

    procs: Any  # conftest.Processes
    ports: dict[str, int]
    sink: Sink
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def url(self, process: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[process]}{path}"

    def book(self, key: str | None = None, **request: Any) -> str:
        body = {"guest": "Ada", "nights": 2, "room_type": "standard", "card": "VISA", "shuttle": "bus", **request}
        headers = {"Idempotency-Key": key} if key else {}
        answer = self.http.post(self.url("bookings", "/bookings"), json=body, headers=headers)
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "PENDING"
        return answer.json()["booking_id"]

    def booking(self, booking_id: str) -> dict:
        return self.http.get(self.url("bookings", f"/bookings/{booking_id}")).json()

    def read(self, process: str, path: str) -> dict | None:
        answer = self.http.get(self.url(process, path))
        return None if answer.status_code == 404 else answer.json()

    def settle(self, booking_id: str, timeout: float = 20.0) -> dict:
        """Wait until the booking is final and its final fact reached the sink."""

        def done() -> dict | None:
            booking = self.booking(booking_id)
            final = {"hotel.booking.confirmed", "hotel.booking.cancelled"} & set(self.sink.types(booking_id))
            return booking if booking["status"] in TERMINAL and final else None

        return eventually(done, timeout, f"booking {booking_id} to end")

    def duplicate(self, copies: int) -> None:
        """The bus operator's switch: push every delivery ``copies`` more times (0: stop)."""
        if copies:
            answer = self.http.post(self.url("bus", "/admin/duplicate"), json={"topic": "*", "copies": copies})
        else:
            answer = self.http.delete(self.url("bus", "/admin/duplicate"))
        assert answer.status_code == 200, answer.text


def start_hotel(launcher: Any, log_dir: Path, bugs: str = "") -> Hotel:
    """Start the bus and the four services on fresh ports and SQLite files, with a sink on the bus."""
    sink = Sink()
    procs = launcher.processes(log_dir)
    ports = dict(zip(PROCESSES, free_ports(len(PROCESSES)), strict=True))
    bus_env = {"HOTELBUS_EVENT_SINK": sink.url}
    for name, (topics, mode) in SUBSCRIPTIONS.items():
        prefix = f"HOTELBUS_SUB_{name.upper()}"
        bus_env |= {f"{prefix}_URL": f"http://127.0.0.1:{ports[name]}/events", f"{prefix}_TOPICS": topics}
        bus_env[f"{prefix}_MODE"] = mode
    try:
        for name in PROCESSES:
            env = {
                "HOTELBUS_PORT": str(ports[name]),
                "HOTELBUS_DB": str(log_dir / f"{name}.db"),
                "HOTELBUS_BUS_URL": f"http://127.0.0.1:{ports['bus']}",
                # payments publishes in binary mode, the others in structured mode
                "HOTELBUS_PUBLISH_MODE": "binary" if name == "payments" else "structured",
                **(bus_env if name == "bus" else {}),
            }
            if bugs:
                env["HOTELBUS_BUGS"] = bugs
            procs.start(name, [launcher.python, "-m", "hotelbus", name], env, ports[name])
        procs.wait_ready()
    except BaseException:
        procs.stop_all()
        sink.close()
        raise
    return Hotel(procs, ports, sink)


def stop_hotel(hotel: Hotel) -> None:
    hotel.http.close()
    try:
        hotel.procs.stop_all()
    finally:
        hotel.sink.close()


@pytest.fixture(scope="module")
def hotel(launcher: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotel]:
    """The correct system, shared by the module's tests (each test makes its own bookings)."""
    running = start_hotel(launcher, tmp_path_factory.mktemp("hotelbus"))
    try:
        yield running
    finally:
        stop_hotel(running)


@pytest.fixture
def buggy_hotel(launcher: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hotel]:
    """A system with the seeded bug named by the test's parameter switched on in every process."""
    running = start_hotel(launcher, tmp_path, bugs=request.param)
    try:
        yield running
    finally:
        stop_hotel(running)


# --- the correct system ------------------------------------------------------------------------

FLOWS = {
    "ok": (
        {},
        "CONFIRMED",
        ["booking.requested", "payment.charged", "room.held", "shuttle.booked", "booking.confirmed"],
    ),
    "declined": (
        {"card": "DECLINED"},
        "CANCELLED",
        ["booking.requested", "payment.declined", "booking.cancelled"],
    ),
    "penthouse": (
        {"room_type": "penthouse"},
        "CANCELLED",
        ["booking.requested", "payment.charged", "room.unavailable", "payment.refunded", "booking.cancelled"],
    ),
    "helicopter": (
        {"shuttle": "helicopter"},
        "CANCELLED",
        [
            "booking.requested",
            "payment.charged",
            "room.held",
            "shuttle.unavailable",
            "room.released",
            "payment.refunded",
            "booking.cancelled",
        ],
    ),
}


def facts(hotel: Hotel, booking_id: str) -> list[str]:
    """The booking's event types in the order they reached the sink, without the ``hotel.`` prefix."""
    return [t.removeprefix("hotel.") for t in hotel.sink.types(booking_id)]


def test_each_trigger_ends_the_saga_as_it_demands(hotel: Hotel) -> None:
    ids = {name: hotel.book(**request) for name, (request, _, _) in FLOWS.items()}
    final = {name: hotel.settle(booking_id) for name, booking_id in ids.items()}

    for name, (_, status, chain) in FLOWS.items():
        booking = final[name]
        assert booking["status"] == status, name
        assert [h["status"] for h in booking["history"]] == ["PENDING", status], name
        assert all(SECOND.fullmatch(h["at"]) for h in booking["history"])
        assert facts(hotel, ids[name]) == chain, name  # cause before effect, each fact once

    ok, declined, penthouse, helicopter = (final[n] for n in FLOWS)
    assert ok["steps"] == {"payment": "charged", "room": "held", "shuttle": "booked"} and ok["failed_step"] is None
    assert (declined["failed_step"], declined["reason"]) == ("payment", "card declined")
    assert (penthouse["failed_step"], penthouse["reason"]) == ("room", "no penthouse room free")
    assert (helicopter["failed_step"], helicopter["reason"]) == ("shuttle", "no helicopter available")
    assert helicopter["steps"] == {"payment": "refunded", "room": "released", "shuttle": "unavailable"}

    money = {name: hotel.read("payments", f"/payments/{ids[name]}") for name in FLOWS}
    assert (money["ok"]["charged"], money["ok"]["refunded"]) == (ok["amount"], 0)
    assert (money["declined"]["charged"], money["declined"]["refunded"]) == (0, 0)
    assert money["penthouse"]["charged"] == money["penthouse"]["refunded"] == penthouse["amount"]
    assert money["helicopter"]["charged"] == money["helicopter"]["refunded"] == helicopter["amount"]
    assert hotel.read("rooms", f"/holds/{ids['ok']}")["status"] == "held"
    assert hotel.read("rooms", f"/holds/{ids['helicopter']}")["status"] == "released"
    assert hotel.read("rooms", f"/holds/{ids['penthouse']}") is None
    assert hotel.read("shuttles", f"/rides/{ids['ok']}")["status"] == "booked"
    assert hotel.read("shuttles", f"/rides/{ids['helicopter']}")["status"] == "unavailable"


def test_events_are_cloudevents_with_one_second_timestamps(hotel: Hotel) -> None:
    booking_id = hotel.book(shuttle="helicopter")
    hotel.settle(booking_id)
    arrivals = hotel.sink.of(booking_id)
    assert arrivals
    for arrival in arrivals:
        event = arrival.event
        assert event["specversion"] == "1.0" and event["id"] and event["type"].startswith("hotel.")
        assert event["source"] in {f"/hotelbus/{s}" for s in ("bookings", "payments", "rooms", "shuttles")}
        assert SECOND.fullmatch(event["time"]), event["time"]
        assert event["data"]["booking_id"] == booking_id


def test_a_late_failure_is_undone_last_step_first(hotel: Hotel) -> None:
    ids = [hotel.book(shuttle="helicopter", room_type="suite") for _ in range(3)]
    for booking_id in ids:
        hotel.settle(booking_id)
        released = hotel.sink.first(booking_id, "hotel.room.released")
        refunded = hotel.sink.first(booking_id, "hotel.payment.refunded")
        assert released.at < refunded.at
        # Timestamps to the second cannot tell this order: the whole saga fits in one or two seconds.
        assert released.event["time"] <= refunded.event["time"]
        hold = hotel.read("rooms", f"/holds/{booking_id}")
        payment = hotel.read("payments", f"/payments/{booking_id}")["payments"][0]
        assert hold["released_at"] < payment["refunded_at"]


def test_duplicated_deliveries_charge_once(hotel: Hotel) -> None:
    hotel.duplicate(copies=1)
    try:
        ids = [hotel.book(), hotel.book(), hotel.book(shuttle="helicopter")]
        final = [hotel.settle(booking_id) for booking_id in ids]
    finally:
        hotel.duplicate(copies=0)
    for booking_id, booking in zip(ids, final, strict=True):
        arrivals = hotel.sink.of(booking_id)
        assert len(arrivals) > len({(a.event["source"], a.event["id"]) for a in arrivals}), "nothing was duplicated"
        assert len(hotel.read("payments", f"/payments/{booking_id}")["payments"]) == 1
        assert [h["status"] for h in booking["history"]] == ["PENDING", booking["status"]]
    assert [b["status"] for b in final] == ["CONFIRMED", "CONFIRMED", "CANCELLED"]


def test_the_same_idempotency_key_gives_the_same_booking(hotel: Hotel) -> None:
    first = hotel.book(key="guest-42-try-1", guest="Grace")
    assert hotel.book(key="guest-42-try-1", guest="Grace") == first
    other = hotel.http.post(
        hotel.url("bookings", "/bookings"),
        json={"guest": "Grace", "nights": 9, "room_type": "suite", "card": "VISA", "shuttle": "bus"},
        headers={"Idempotency-Key": "guest-42-try-1"},
    )
    assert other.status_code == 409
    hotel.settle(first)
    assert len(hotel.read("payments", f"/payments/{first}")["payments"]) == 1


def test_concurrent_bookings_all_end_and_money_and_rooms_add_up(hotel: Hotel) -> None:
    mix = [
        ({}, "CONFIRMED"),
        ({"card": "DECLINED"}, "CANCELLED"),
        ({"room_type": "penthouse"}, "CANCELLED"),
        ({"shuttle": "helicopter"}, "CANCELLED"),
        ({"room_type": "deluxe", "shuttle": "limo"}, "CONFIRMED"),
    ]
    wanted = [
        (mix[i % len(mix)][0] | {"guest": f"guest-{i}", "nights": 1 + i % 4}, mix[i % len(mix)][1]) for i in range(30)
    ]
    rooms_before = hotel.read("rooms", "/rooms")
    with ThreadPoolExecutor(10) as pool:
        ids = list(pool.map(lambda w: hotel.book(**w[0]), wanted))
    final = [hotel.settle(booking_id, timeout=40) for booking_id in ids]

    assert [b["status"] for b in final] == [status for _, status in wanted]
    money = [hotel.read("payments", f"/payments/{b['booking_id']}") for b in final]
    net = sum(m["charged"] - m["refunded"] for m in money)
    assert net == sum(b["amount"] for b in final if b["status"] == "CONFIRMED")
    rooms_after = hotel.read("rooms", "/rooms")
    for room_type in ("standard", "deluxe"):
        confirmed = sum(b["status"] == "CONFIRMED" and b["room_type"] == room_type for b in final)
        assert rooms_after[room_type]["held"] - rooms_before[room_type]["held"] == confirmed


def test_nothing_is_lost_while_the_bus_or_a_subscriber_is_down(launcher: Any, tmp_path: Path) -> None:
    running = start_hotel(launcher, tmp_path)
    try:
        # The bus is down: bookings still accepts, its outbox keeps the request until the bus is back.
        running.procs.stop("bus")
        first = running.book()
        time.sleep(1.0)
        assert running.booking(first)["status"] == "PENDING"
        running.procs.restart("bus")
        # Backoff grew while the bus was down (up to 5 s for the outbox, 10 s for a push).
        assert running.settle(first, timeout=60)["status"] == "CONFIRMED"

        # Shuttles is down: the bus retries room.held with backoff until it answers.
        running.procs.stop("shuttles")
        second = running.book()
        eventually(lambda: running.booking(second)["steps"].get("room") == "held", what="the room hold")
        time.sleep(1.0)
        assert running.booking(second)["status"] == "PENDING"
        running.procs.restart("shuttles")
        assert running.settle(second, timeout=60)["status"] == "CONFIRMED"
        stats = running.read("bus", "/admin/stats")["deliveries"]
        assert "dead" not in stats.get("shuttles", {}) and "pending" not in stats.get("shuttles", {})
    finally:
        stop_hotel(running)


def test_an_unknown_bug_name_refuses_to_start(launcher: Any) -> None:
    done = launcher.run_to_exit([launcher.python, "-m", "hotelbus", "payments"], {"HOTELBUS_BUGS": "payments.no_dedup"})
    assert done.returncode == 2
    assert "unknown bug 'payments.no_dedup'" in done.stderr and "Did you mean 'payments.no_dedupe'?" in done.stderr


def test_a_subscription_without_topics_refuses_to_start(launcher: Any) -> None:
    done = launcher.run_to_exit(
        [launcher.python, "-m", "hotelbus", "bus"], {"HOTELBUS_SUB_ROOMS_URL": "http://127.0.0.1:9/events"}
    )
    assert done.returncode == 2 and "HOTELBUS_SUB_ROOMS_TOPICS is missing" in done.stderr


# --- each seeded bug shows its effect -------------------------------------------------------------


@pytest.mark.parametrize("buggy_hotel", ["payments.refund_before_release"], indirect=True)
def test_bug_refund_before_release_undoes_in_the_wrong_order(buggy_hotel: Hotel) -> None:
    ids = [buggy_hotel.book(shuttle="helicopter") for _ in range(3)]
    for booking_id in ids:
        assert buggy_hotel.settle(booking_id)["status"] == "CANCELLED"
        eventually(lambda b=booking_id: "hotel.room.released" in buggy_hotel.sink.types(b), what="the release")
        released = buggy_hotel.sink.first(booking_id, "hotel.room.released")
        refunded = buggy_hotel.sink.first(booking_id, "hotel.payment.refunded")
        assert refunded.at < released.at, "the payment was refunded before the room was released"
        hold = buggy_hotel.read("rooms", f"/holds/{booking_id}")
        payment = buggy_hotel.read("payments", f"/payments/{booking_id}")["payments"][0]
        assert payment["refunded_at"] < hold["released_at"]


@pytest.mark.parametrize("buggy_hotel", ["payments.no_dedupe"], indirect=True)
def test_bug_no_dedupe_charges_a_redelivered_request_again(buggy_hotel: Hotel) -> None:
    buggy_hotel.duplicate(copies=1)
    booking_id = buggy_hotel.book()
    booking = buggy_hotel.settle(booking_id)
    money = eventually(
        lambda: (m := buggy_hotel.read("payments", f"/payments/{booking_id}")) and len(m["payments"]) >= 2 and m,
        what="a second charge",
    )
    assert booking["status"] == "CONFIRMED"
    assert money["charged"] == 2 * booking["amount"] and money["refunded"] == 0
    assert buggy_hotel.sink.types(booking_id).count("hotel.payment.charged") == 2


@pytest.mark.parametrize("buggy_hotel", ["rooms.no_release"], indirect=True)
def test_bug_no_release_leaves_the_room_held(buggy_hotel: Hotel) -> None:
    before = buggy_hotel.read("rooms", "/rooms")["suite"]["held"]
    booking_id = buggy_hotel.book(shuttle="helicopter", room_type="suite")
    booking = buggy_hotel.settle(booking_id)
    assert booking["status"] == "CANCELLED" and booking["steps"]["room"] == "released"  # so the events say
    assert "hotel.room.released" in buggy_hotel.sink.types(booking_id)
    assert buggy_hotel.read("rooms", f"/holds/{booking_id}")["status"] == "held"  # so the room says
    assert buggy_hotel.read("rooms", "/rooms")["suite"]["held"] == before + 1


@pytest.mark.parametrize("buggy_hotel", ["bookings.confirm_before_shuttle"], indirect=True)
def test_bug_confirm_before_shuttle_confirms_a_failed_saga(buggy_hotel: Hotel) -> None:
    booking_id = buggy_hotel.book(shuttle="helicopter")
    buggy_hotel.settle(booking_id)
    eventually(lambda: "hotel.payment.refunded" in buggy_hotel.sink.types(booking_id), what="the refund")
    booking = buggy_hotel.booking(booking_id)
    assert booking["status"] == "CONFIRMED"  # the helicopter trigger demands CANCELLED
    assert booking["steps"] == {"payment": "refunded", "room": "released", "shuttle": "unavailable"}
    assert [h["event"] for h in booking["history"]] == [None, "hotel.room.held"]
    chain = facts(buggy_hotel, booking_id)
    assert chain.index("booking.confirmed") < chain.index("shuttle.unavailable")
