"""minishop over real HTTP: four real processes, the checkout saga correct and with each seeded bug.

The client talks to the gateway only, as a shop's frontend would. Each scenario
returns what it observed; the correct system must keep the invariant, and each
seeded bug must break exactly the one its declaration names (a test fails if a
bug did nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from saga_harness.ports import free_ports

SERVICES = ("gateway", "orders", "payment", "stock")


@dataclass
class Shop:
    """A running minishop and a client of its gateway."""

    procs: Any  # conftest.Processes
    ports: dict[str, int]
    http: httpx.Client

    def post(self, path: str) -> httpx.Response:
        return self.http.post(path)

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def user(self, credit: int) -> str:
        user_id = self.post("/payment/create_user").json()["user_id"]
        if credit:
            answer = self.post(f"/payment/add_funds/{user_id}/{credit}")
            assert answer.status_code == 200, answer.text
        return user_id

    def item(self, price: int, stock: int) -> str:
        item_id = self.post(f"/stock/item/create/{price}").json()["item_id"]
        if stock:
            assert self.post(f"/stock/add/{item_id}/{stock}").status_code == 200
        return item_id

    def order(self, user_id: str, *lines: tuple[str, int]) -> str:
        order_id = self.post(f"/orders/create/{user_id}").json()["order_id"]
        for item_id, quantity in lines:
            answer = self.post(f"/orders/addItem/{order_id}/{item_id}/{quantity}")
            assert answer.status_code == 200, answer.text
        return order_id

    def credit(self, user_id: str) -> int:
        return self.get(f"/payment/find_user/{user_id}").json()["credit"]

    def stock(self, item_id: str) -> int:
        return self.get(f"/stock/find/{item_id}").json()["stock"]

    def paid(self, order_id: str) -> bool:
        return self.get(f"/orders/find/{order_id}").json()["paid"]

    def checkout(self, order_id: str) -> httpx.Response:
        return self.post(f"/orders/checkout/{order_id}")

    def checkout_all(self, order_ids: list[str]) -> list[httpx.Response]:
        """Check out every order at once, one thread each (as many browsers would)."""
        with ThreadPoolExecutor(len(order_ids)) as pool:
            return list(pool.map(self.checkout, order_ids))


def start_shop(launcher: Any, log_dir: Path, bugs: str = "") -> Shop:
    """Start gateway, orders, payment and stock on fresh ports and fresh SQLite files."""
    procs = launcher.processes(log_dir)
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    urls = {
        f"MINISHOP_{name.upper()}_URL": f"http://127.0.0.1:{ports[name]}" for name in ("orders", "payment", "stock")
    }
    try:
        for name in SERVICES:
            env = {"MINISHOP_PORT": str(ports[name]), "MINISHOP_DB": str(log_dir / f"{name}.db"), **urls}
            if bugs:
                env["MINISHOP_BUGS"] = bugs
            procs.start(name, [launcher.python, "-m", "minishop", name], env, ports[name])
        procs.wait_ready()
    except BaseException:
        procs.stop_all()
        raise
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    return Shop(procs, ports, httpx.Client(base_url=f"http://127.0.0.1:{ports['gateway']}", timeout=60, limits=limits))


@pytest.fixture(scope="module")
def shop(launcher: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The correct system, shared by the module's tests (each test makes its own users, items and orders)."""
    running = start_shop(launcher, tmp_path_factory.mktemp("minishop"))
    try:
        yield running
    finally:
        running.http.close()
        running.procs.stop_all()


@pytest.fixture
def buggy_shop(launcher: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    """A system with the seeded bug named by the test's parameter switched on in every process."""
    running = start_shop(launcher, tmp_path, bugs=request.param)
    try:
        yield running
    finally:
        running.http.close()
        running.procs.stop_all()


# --- scenarios: each drives the saga and returns what it saw --------------------------------


@dataclass
class Resend:
    answers: list[httpx.Response]
    credit_spent: int
    stock_taken: int
    total_cost: int
    quantity: int


def resend_checkout(shop: Shop) -> Resend:
    """One order checked out, then the same checkout sent again (a client that did not trust its first answer)."""
    user = shop.user(credit=1000)
    item = shop.item(price=25, stock=10)
    order = shop.order(user, (item, 2))
    answers = [shop.checkout(order), shop.checkout(order)]
    return Resend(answers, 1000 - shop.credit(user), 10 - shop.stock(item), total_cost=50, quantity=2)


@dataclass
class Rush:
    units: int
    sold: int
    refused: list[httpx.Response]
    stock_left: int
    money_taken: int
    paid_orders: int


def rush_on_scarce_item(shop: Shop, buyers: int = 20, units: int = 5, price: int = 10) -> Rush:
    """``buyers`` users each check out one unit of an item that has ``units`` in stock, all at once."""
    item = shop.item(price=price, stock=units)
    users = [shop.user(credit=100) for _ in range(buyers)]
    orders = [shop.order(user, (item, 1)) for user in users]
    answers = shop.checkout_all(orders)
    sold = sum(a.status_code == 200 for a in answers)
    return Rush(
        units=units,
        sold=sold,
        refused=[a for a in answers if a.status_code != 200],
        stock_left=shop.stock(item),
        money_taken=sum(100 - shop.credit(u) for u in users),
        paid_orders=sum(shop.paid(o) for o in orders),
    )


def rush_on_one_wallet(shop: Shop, orders_count: int = 20, credit: int = 100, price: int = 10) -> Rush:
    """One user with ``credit`` checks out ``orders_count`` orders of ``price`` each, all at once."""
    item = shop.item(price=price, stock=1000)
    user = shop.user(credit=credit)
    orders = [shop.order(user, (item, 1)) for _ in range(orders_count)]
    answers = shop.checkout_all(orders)
    return Rush(
        units=1000,
        sold=sum(a.status_code == 200 for a in answers),
        refused=[a for a in answers if a.status_code != 200],
        stock_left=shop.stock(item),
        money_taken=credit - shop.credit(user),
        paid_orders=sum(shop.paid(o) for o in orders),
    )


@dataclass
class Refused:
    answer: httpx.Response
    stock_before: dict[str, int]
    stock_after: dict[str, int]
    credit_before: int
    credit_after: int
    paid: bool


def checkout_without_credit(shop: Shop) -> Refused:
    """Stock is taken, then the charge is refused: the stock must come back."""
    user = shop.user(credit=5)
    first, second = shop.item(price=10, stock=3), shop.item(price=20, stock=4)
    order = shop.order(user, (first, 1), (second, 2))
    answer = shop.checkout(order)
    after = {first: shop.stock(first), second: shop.stock(second)}
    return Refused(answer, {first: 3, second: 4}, after, 5, shop.credit(user), shop.paid(order))


def checkout_out_of_stock(shop: Shop) -> Refused:
    """The first item is taken, the second has too little stock: the first must come back, nothing charged."""
    user = shop.user(credit=500)
    plenty, scarce = shop.item(price=10, stock=6), shop.item(price=20, stock=1)
    order = shop.order(user, (plenty, 2), (scarce, 3))
    answer = shop.checkout(order)
    after = {plenty: shop.stock(plenty), scarce: shop.stock(scarce)}
    return Refused(answer, {plenty: 6, scarce: 1}, after, 500, shop.credit(user), shop.paid(order))


# --- the correct system ------------------------------------------------------------------------


def test_a_checkout_takes_stock_and_money_once_and_answers_in_text(shop: Shop) -> None:
    user = shop.post("/payment/create_user")
    assert user.status_code == 200 and user.headers["content-type"].startswith("application/json")
    user_id = user.json()["user_id"]
    funds = shop.post(f"/payment/add_funds/{user_id}/300")
    assert funds.headers["content-type"].startswith("text/html")  # payment answers as Flask did
    assert funds.text == f"User: {user_id} credit updated to: 300"
    item_id = shop.post("/stock/item/create/40").json()["item_id"]
    added = shop.post(f"/stock/add/{item_id}/7")
    assert added.headers["content-type"].startswith("text/plain") and added.text.endswith("stock updated to: 7")
    order_id = shop.post(f"/orders/create/{user_id}").json()["order_id"]
    line = shop.post(f"/orders/addItem/{order_id}/{item_id}/3")
    assert line.status_code == 200 and line.text.endswith("price updated to: 120")

    answer = shop.checkout(order_id)

    assert (answer.status_code, answer.text) == (200, "Checkout successful")
    assert shop.get(f"/orders/find/{order_id}").json() == {
        "order_id": order_id,
        "paid": True,
        "items": [{"item_id": item_id, "quantity": 3}],
        "user_id": user_id,
        "total_cost": 120,
    }
    assert shop.get(f"/stock/find/{item_id}").json() == {"item_id": item_id, "stock": 4, "price": 40}
    assert shop.get(f"/payment/find_user/{user_id}").json() == {"user_id": user_id, "credit": 180}


def test_a_resent_checkout_charges_nothing_and_says_so(shop: Shop) -> None:
    seen = resend_checkout(shop)
    first, again = seen.answers
    assert (first.status_code, first.text) == (200, "Checkout successful")
    assert again.status_code == 200 and "already paid, nothing charged" in again.text
    assert (seen.credit_spent, seen.stock_taken) == (seen.total_cost, seen.quantity)


def test_concurrent_resends_of_one_checkout_have_one_effect(shop: Shop) -> None:
    user = shop.user(credit=1000)
    item = shop.item(price=30, stock=10)
    order = shop.order(user, (item, 1))
    answers = shop.checkout_all([order] * 6)
    assert sorted(a.text for a in answers).count("Checkout successful") == 1
    assert all(a.status_code == 200 for a in answers)
    assert (shop.credit(user), shop.stock(item)) == (970, 9)


def test_twenty_checkouts_on_five_units_sell_exactly_five(shop: Shop) -> None:
    rush = rush_on_scarce_item(shop)
    assert rush.sold == 5 and rush.paid_orders == 5
    assert rush.stock_left == 0
    assert rush.money_taken == 5 * 10
    assert all(a.status_code == 400 and "out of stock" in a.text for a in rush.refused)


def test_twenty_checkouts_on_one_wallet_spend_it_exactly(shop: Shop) -> None:
    rush = rush_on_one_wallet(shop)
    assert rush.sold == 10 and rush.paid_orders == 10
    assert rush.money_taken == 100  # every charge counted, none lost
    assert rush.stock_left == rush.units - 10  # the ten refused checkouts gave their unit back
    assert all(a.text == "Checkout failed: insufficient credit" for a in rush.refused)


def test_a_refused_charge_gives_the_stock_back(shop: Shop) -> None:
    seen = checkout_without_credit(shop)
    assert (seen.answer.status_code, seen.answer.text) == (400, "Checkout failed: insufficient credit")
    assert seen.answer.headers["content-type"].startswith("text/plain")
    assert seen.stock_after == seen.stock_before and seen.credit_after == seen.credit_before and not seen.paid


def test_an_item_out_of_stock_gives_the_earlier_items_back(shop: Shop) -> None:
    seen = checkout_out_of_stock(shop)
    assert seen.answer.status_code == 400 and re.fullmatch(
        r"Checkout failed: out of stock on item \S+", seen.answer.text
    )
    assert seen.stock_after == seen.stock_before and seen.credit_after == seen.credit_before and not seen.paid


def test_a_refused_order_can_be_checked_out_once_funded(shop: Shop) -> None:
    user = shop.user(credit=10)
    item = shop.item(price=50, stock=1)
    order = shop.order(user, (item, 1))
    assert shop.checkout(order).status_code == 400
    shop.post(f"/payment/add_funds/{user}/40")
    assert shop.checkout(order).text == "Checkout successful"
    assert (shop.credit(user), shop.stock(item), shop.paid(order)) == (0, 0, True)


def test_client_mistakes_are_text_and_internal_errors_are_html_pages(launcher: Any, tmp_path: Path) -> None:
    running = start_shop(launcher, tmp_path)
    try:
        missing = running.get("/orders/find/no-such-order")
        assert (missing.status_code, missing.text) == (404, "Order: no-such-order not found!")
        bad = running.post("/payment/add_funds/someone/lots")
        assert bad.status_code == 400 and bad.headers["content-type"].startswith("text/plain")

        user = running.user(credit=100)
        item = running.item(price=5, stock=5)
        order = running.order(user)
        running.procs.stop("stock")
        broken = running.post(f"/orders/addItem/{order}/{item}/1")  # orders cannot reach stock
        assert broken.status_code == 500 and broken.headers["content-type"].startswith("text/html")
        assert "<h1>Internal Server Error</h1>" in broken.text and "ConnectError" in broken.text

        running.procs.stop("orders")
        gone = running.post(f"/orders/checkout/{order}")  # the gateway cannot reach orders
        assert gone.status_code == 502 and "<h1>Bad Gateway</h1>" in gone.text
    finally:
        running.http.close()
        running.procs.stop_all()


def test_an_unknown_bug_name_refuses_to_start(launcher: Any) -> None:
    done = launcher.run_to_exit(
        [launcher.python, "-m", "minishop", "orders"], {"MINISHOP_BUGS": "orders.no_paid_chek", "MINISHOP_PORT": "1"}
    )
    assert done.returncode == 2
    assert "unknown bug 'orders.no_paid_chek'" in done.stderr and "Did you mean 'orders.no_paid_check'?" in done.stderr


# --- each seeded bug shows its effect ---------------------------------------------------------------


@pytest.mark.parametrize("buggy_shop", ["orders.no_paid_check"], indirect=True)
def test_bug_no_paid_check_charges_a_resent_checkout_again(buggy_shop: Shop) -> None:
    seen = resend_checkout(buggy_shop)
    assert [a.text for a in seen.answers] == ["Checkout successful", "Checkout successful"]
    assert seen.credit_spent == 2 * seen.total_cost and seen.stock_taken == 2 * seen.quantity


@pytest.mark.parametrize("buggy_shop", ["stock.lost_update"], indirect=True)
def test_bug_stock_lost_update_oversells(buggy_shop: Shop) -> None:
    rush = rush_on_scarce_item(buggy_shop)
    assert rush.sold > 5, "more units sold than were in stock"
    assert rush.stock_left != rush.units - rush.sold, "the stock left does not match what was sold"
    assert rush.money_taken == 10 * rush.sold  # payment is right: only stock is wrong


@pytest.mark.parametrize("buggy_shop", ["payment.lost_update"], indirect=True)
def test_bug_payment_lost_update_loses_money(buggy_shop: Shop) -> None:
    rush = rush_on_one_wallet(buggy_shop)
    assert rush.sold > 10, "more paid orders than the credit covers"
    assert rush.money_taken < 10 * rush.paid_orders, "charges overwrote each other"


@pytest.mark.parametrize("buggy_shop", ["orders.no_compensation_on_payment_failure"], indirect=True)
def test_bug_no_compensation_on_payment_failure_loses_stock(buggy_shop: Shop) -> None:
    seen = checkout_without_credit(buggy_shop)
    assert seen.answer.text == "Checkout failed: insufficient credit"
    (first, first_before), (second, second_before) = seen.stock_before.items()
    assert seen.stock_after == {first: first_before - 1, second: second_before - 2}  # taken, never given back


@pytest.mark.parametrize("buggy_shop", ["orders.no_compensation_on_out_of_stock"], indirect=True)
def test_bug_no_compensation_on_out_of_stock_loses_the_earlier_items(buggy_shop: Shop) -> None:
    seen = checkout_out_of_stock(buggy_shop)
    assert seen.answer.status_code == 400 and "out of stock" in seen.answer.text
    (plenty, before), (scarce, scarce_before) = seen.stock_before.items()
    assert seen.stock_after == {plenty: before - 2, scarce: scarce_before}
    assert seen.credit_after == seen.credit_before
