"""The task queue's per-queue limits hold, batched pushes or not: a rate in tasks per
second, a concurrency in tasks in flight."""

from __future__ import annotations


def _landed(shop, queue: str) -> list[float]:
    tasks = shop.get("taskqueue", f"/tasks?queue_name={queue}&state=done&limit=1000")["tasks"]
    return sorted(t["updated_at"] for t in tasks)


def test_a_rate_limited_queue_pushes_no_faster_than_its_rate(make_shop):
    shop = make_shop(extra_env={"SAGASHOP_TASKQUEUE_RATE": "4", "SAGASHOP_STEP_TIMEOUT_S": "30"})
    ids = [shop.start("ok") for _ in range(12)]
    shop.wait(ids, timeout=120)
    landed = _landed(shop, "order")  # 12 create-order commands queued at once, then 12 confirms
    assert len(landed) == 24
    first_twelve = landed[:12]
    assert first_twelve[-1] - first_twelve[0] >= 2.0, "12 tasks at 4/s take 2.75 s, not less"
    # No second holds more than the rate, plus the bucket's first token, plus a flush's slack.
    assert max(sum(1 for t in landed if s <= t < s + 1.0) for s in landed) <= 6


def test_a_queue_never_has_more_tasks_in_flight_than_its_concurrency(make_shop):
    # With the seeded race, each reservation takes a second (a slow "pricing lookup"):
    # one in flight at a time means the reservations land a second apart.
    shop = make_shop(
        bugs="inventory.unchecked_reservation",
        extra_env={"SAGASHOP_TASKQUEUE_CONCURRENCY": "1", "SAGASHOP_STEP_TIMEOUT_S": "30"},
    )
    ids = [shop.start("ok") for _ in range(4)]
    views = shop.wait(ids, timeout=120)
    assert {v["outcome"] for v in views.values()} == {"completed"}
    landed = _landed(shop, "inventory")
    assert len(landed) == 4
    gaps = [b - a for a, b in zip(landed, landed[1:], strict=False)]
    assert min(gaps) >= 0.9, gaps
