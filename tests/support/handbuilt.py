"""Two hand-built saga models and history builders for the checkers' tests."""

from __future__ import annotations

SHOP = {
    "steps": [
        {
            "name": "reserve",
            "compensation": "release",
            "done": {"event": "shop.reserved"},
            "undone": {"event": "shop.released", "where": {"/data/applied": True}},
        },
        {
            "name": "charge",
            "compensation": "refund",
            "done": {"event": "shop.charged"},
            "undone": {"event": "shop.refunded", "where": {"/data/applied": True}},
        },
        {"name": "confirm", "done": {"event": "shop.confirmed"}},
    ],
    "states": {
        "initial": ["RESERVING"],
        "terminal": {"DONE": "completed", "UNDONE": "compensated", "FAILED": "failed"},
        "transitions": {
            "RESERVING": ["CHARGING", "UNDONE"],
            "CHARGING": ["CONFIRMING", "RELEASING"],
            "CONFIRMING": ["DONE", "REFUNDING"],
            "REFUNDING": ["RELEASING", "FAILED"],
            "RELEASING": ["UNDONE", "FAILED"],
        },
    },
    "quantities": [
        {
            "name": "money",
            "plus": [{"event": "shop.charged", "value": "/data/amount"}],
            "minus": [{"event": "shop.refunded", "value": "/data/amount", "where": {"/data/applied": True}}],
            "completed_equals": {"event": "shop.reserved", "value": "/data/total"},
        },
        {
            "name": "stock",
            "plus": [{"event": "shop.reserved", "items": "/data/items", "key": "/sku", "value": "/qty"}],
            "minus": [
                {
                    "event": "shop.released",
                    "items": "/data/items",
                    "key": "/sku",
                    "value": "/qty",
                    "where": {"/data/applied": True},
                }
            ],
        },
    ],
    "projections": [{"name": "receipt", "service": "mail", "items": "/mails", "unique": "/event_id"}],
    "agreements": [
        {
            "name": "order status",
            "service": "orders",
            "items": "/orders",
            "field": "/status",
            "completed": ["confirmed"],
            "compensated": ["cancelled"],
        }
    ],
    "non_negative": [{"name": "stock", "service": "stock", "items": "/stock", "field": "/available", "key": "/sku"}],
    "balances": [
        {
            "name": "stock levels",
            "service": "stock",
            "quantity": "stock",
            "items": "/stock",
            "key": "/sku",
            "plus": "/initial",
            "minus": "/available",
        }
    ],
    "triggers": {"ok": "completed", "declined": "compensated", "race": "any"},
}

TRIP = {
    "steps": [
        {
            "name": "flight",
            "compensation": "cancel flight",
            "done": {"event": "travel.flight.booked", "saga_id": "/data/trip_id"},
            "undone": {"event": "travel.flight.cancelled", "saga_id": "/data/trip_id"},
        },
        {
            "name": "hotel",
            "compensation": "cancel hotel",
            "done": {"event": "travel.hotel.booked", "saga_id": "/data/trip_id"},
            "undone": {"event": "travel.hotel.cancelled", "saga_id": "/data/trip_id"},
        },
        {"name": "car", "done": {"event": "travel.car.booked", "saga_id": "/data/trip_id"}},
    ],
    "states": {"terminal": {"CONFIRMED": "completed", "CANCELLED": "compensated", "STUCK": "failed"}},
    "triggers": {"ok": "completed", "no_car": "compensated"},
}


def completed_shop_saga(b, sid: str = "s1", total: int = 100, trigger: str = "ok") -> None:
    """A saga of the shop model that did everything right."""
    b.saga(sid, trigger=trigger)
    b.status(sid, "RESERVING")
    b.event("shop.reserved", sid, total=total, items=[{"sku": "A", "qty": 1}])
    b.status(sid, "CHARGING")
    b.event("shop.charged", sid, amount=total)
    b.status(sid, "CONFIRMING")
    b.event("shop.confirmed", sid)
    b.status(sid, "DONE", "completed")


def compensated_shop_saga(b, sid: str = "s2", trigger: str = "declined") -> None:
    """Reserved, charged, then failed to confirm: refund, then release."""
    b.saga(sid, trigger=trigger)
    b.status(sid, "RESERVING")
    b.event("shop.reserved", sid, total=50, items=[{"sku": "A", "qty": 2}], time="2026-01-01T00:00:01+00:00")
    b.status(sid, "CHARGING")
    b.event("shop.charged", sid, amount=50, time="2026-01-01T00:00:02+00:00")
    b.status(sid, "CONFIRMING")
    b.status(sid, "REFUNDING")
    b.event("shop.refunded", sid, amount=50, applied=True, time="2026-01-01T00:00:03+00:00")
    b.status(sid, "RELEASING")
    b.event("shop.released", sid, items=[{"sku": "A", "qty": 2}], applied=True, time="2026-01-01T00:00:04+00:00")
    b.status(sid, "UNDONE", "compensated")


def snapshots(b, mails=None, orders=None, stock=None) -> None:
    b.snapshot("mail", {"mails": mails if mails is not None else [{"saga_id": "s1", "event_id": "m1"}]})
    b.snapshot(
        "orders",
        {
            "orders": orders
            if orders is not None
            else [{"saga_id": "s1", "status": "confirmed"}, {"saga_id": "s2", "status": "cancelled"}]
        },
    )
    b.snapshot("stock", {"stock": stock if stock is not None else [{"sku": "A", "initial": 10, "available": 9}]})
