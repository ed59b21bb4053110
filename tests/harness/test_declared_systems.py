"""Saga systems nobody wrote for the harness, described in a saga-harness.toml alone, run for real
through the command line (#14): minishop (a start of several requests with pools, ids in URL paths,
text answers, the checkout alone resent, tcp readiness, outcomes from answers, per-saga and
per-member reads, the system's own switches), hotelbus (its bus given ${sink_url}, states announced
by events), a blocking orchestrator (states seen while the start is in flight; a lost answer found
later; an HTML error page counted, never a crash), and mistakes that stop a run before it starts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from saga_cli import saga_harness

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = ROOT / "tests" / "harness" / "systems"


def history(run_dir: Path) -> list[dict]:
    lines = []
    for path in [run_dir / "history.jsonl", *sorted((run_dir / "history.d").glob("*.jsonl"))]:
        if path.exists():
            lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def snapshot(lines: list[dict], name: str, baseline: bool = False) -> list[dict]:
    found = [x for x in lines if x["type"] == "snapshot" and x["service"] == name and x["baseline"] == baseline]
    assert found, f"no {'baseline ' if baseline else ''}snapshot {name!r}"
    return found[-1]["data"]


def test_minishop_from_its_description_alone(tmp_path):
    out = tmp_path / "run"
    proc = saga_harness(
        "run", "--config", str(SYSTEMS / "minishop.toml"), "--sagas", "24", "--concurrency", "6", "--seed", "3",
        "--duplicates", "0.5", "--env", "MINISHOP_BUGS=", "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = history(out)
    meta = lines[0]
    assert meta["type"] == "meta" and meta["env"] == {"MINISHOP_BUGS": ""}  # [env] and --env, recorded
    # Pools: each member set up once, before the workload (users: 4 rich + 2 poor; items: 2 + 1).
    setup = Counter(x["step"] for x in lines if x["type"] == "invoke" and x["f"] == "setup")
    assert setup["create_user"] == 6 and setup["add_funds"] == 6 and setup["create_item"] == 3
    assert setup["add_stock"] == 2  # the sold-out item gets none (when = "item.stock")
    # Text answers recorded as text, with their content type.
    funds = [x for x in lines if x["type"] == "ok" and x.get("step") == "add_funds"]
    assert funds and all(x["content_type"] == "text/html" and "credit updated to" in x["value"] for x in funds)
    # Ids captured from earlier answers travel in later URL paths.
    invokes = [x for x in lines if x["type"] == "invoke" and x["f"] == "start_saga"]
    orders = {x["saga_id"] for x in lines if x["type"] == "ok" and x.get("step") == "create_order"}
    assert len(orders) == 24
    checkouts = [x for x in invokes if x["step"] == "checkout"]
    assert all(x["call"]["path"].rsplit("/", 1)[1] in orders for x in checkouts)
    # A resend replays the checkout alone: more checkouts than orders, never a second create_order per key.
    per_key = Counter((x["key"], x["step"]) for x in invokes)
    assert len(checkouts) > 24 and all(n == 1 for (k, step), n in per_key.items() if step == "create_order")
    # No idempotency key is sent: minishop has none.
    assert not any("Idempotency-Key" in json.dumps(x.get("call")) for x in invokes)
    # The outcome comes from the checkout's answer; the recorded reason with it.
    said = [x for x in lines if x["type"] == "status" and x["source"] == "answer"]
    assert {x["outcome"] for x in said} == {"completed", "compensated"}
    assert {x["fields"].get("reason") for x in said if x["outcome"] == "compensated"} <= {
        "insufficient credit",
        "out of stock",
    }
    # Per-saga reads and per-member reads, with a baseline of the members before the workload.
    orders_read = snapshot(lines, "orders")
    assert {r["saga_id"] for r in orders_read} == orders and all(r["status"] == 200 for r in orders_read)
    paid = {r["saga_id"]: r["body"]["paid"] for r in orders_read}
    users_before, users_after = snapshot(lines, "users", baseline=True), snapshot(lines, "users")
    assert len(users_before) == len(users_after) == 6
    spent = sum(b["body"]["credit"] for b in users_before) - sum(a["body"]["credit"] for a in users_after)
    paid_total = sum(r["body"]["total_cost"] for r in orders_read if r["body"]["paid"])
    assert spent == paid_total > 0  # the clean system charges each paid order once, resends or not
    # The terminal states are JSON booleans, and they matched.
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert verdicts["stats"]["by_outcome"].get("completed") == sum(paid.values())
    assert verdicts["stats"]["starts"] == {
        "sagas": 24, "started": 24, "failed": 0, "unanswered": 0, "found_later": 0, "lost": 0,
    }  # fmt: skip


def test_a_seeded_bug_switched_on_with_env_shows_in_what_the_run_recorded(tmp_path):
    # orders.no_paid_check: a resent checkout charges again. Only --env reaches it (minishop has no plugin).
    out = tmp_path / "run"
    proc = saga_harness(
        "run", "--config", str(SYSTEMS / "minishop.toml"), "--sagas", "12", "--seed", "2", "--mix", "ok=1",
        "--duplicates", "1", "--env", "MINISHOP_BUGS=orders.no_paid_check", "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = history(out)
    assert lines[0]["env"]["MINISHOP_BUGS"] == "orders.no_paid_check"
    assert "--env MINISHOP_BUGS=orders.no_paid_check" in lines[0]["command"]  # the reproduce line carries it
    users_before, users_after = snapshot(lines, "users", baseline=True), snapshot(lines, "users")
    spent = sum(b["body"]["credit"] for b in users_before) - sum(a["body"]["credit"] for a in users_after)
    paid_total = sum(r["body"]["total_cost"] for r in snapshot(lines, "orders") if r["body"]["paid"])
    assert spent > paid_total  # charged twice for one paid order: the evidence the checkers judge


def test_hotelbus_pushes_to_the_sink_given_in_its_env_and_its_events_announce_states(tmp_path):
    out = tmp_path / "run"
    proc = saga_harness(
        "run", "--config", str(SYSTEMS / "hotelbus.toml"), "--sagas", "10", "--concurrency", "5", "--seed", "1",
        "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = history(out)
    events = [x for x in lines if x["type"] == "event"]
    assert len(events) >= 10 * 5  # requested, charged, held, … for every booking
    announced = [x for x in lines if x["type"] == "status" and x["source"] == "event"]
    by_saga: dict[str, list] = {}
    for x in announced:
        by_saga.setdefault(x["saga_id"], []).append(x["state"])
    assert len(by_saga) == 10 and all(states[0] == "PENDING" and len(states) == 2 for states in by_saga.values())
    cancelled = [x for x in announced if x["state"] == "CANCELLED"]
    assert all(x["outcome"] == "compensated" and x["fields"]["failed_step"] == "shuttle" for x in cancelled)
    polled = [x for x in lines if x["type"] == "status" and x["source"] == "status"]
    read = [x for x in polled if x["outcome"]]
    # The events usually announce the outcome before a poll reads it (0–2 of 10 read it so): whenever
    # a poll did, it recorded [saga.status] record's fields.
    assert polled and all("failed_step" in x["fields"] for x in read)
    holds = snapshot(lines, "hold")  # a per-saga read
    assert len(holds) == 10 and {h["status"] for h in holds} == {200}
    rooms = snapshot(lines, "rooms")
    assert set(rooms) == {"holds", "rooms"}  # answers stored under the names given


def test_a_blocking_orchestrator_is_seen_passing_through_its_states_inside_the_request(tmp_path):
    out = tmp_path / "run"
    proc = saga_harness(
        "run", "--config", str(SYSTEMS / "blocking.toml"), "--sagas", "3", "--mix", "late_fail=1", "--out", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = history(out)
    for saga_id in {x["saga_id"] for x in lines if x["type"] == "ok"}:
        answered = next(n for n, x in enumerate(lines) if x["type"] == "ok" and x["saga_id"] == saga_id)
        seen = [x["state"] for x in lines[:answered] if x["type"] == "status" and x["saga_id"] == saga_id]
        assert seen == ["BOOKING", "CONFIRMED", "CANCELLED"], seen  # all while the start was in flight
        cancelled = next(
            x for x in lines if x["type"] == "status" and x["saga_id"] == saga_id and x["state"] == "CANCELLED"
        )
        assert cancelled["fields"] == {"reason": "card refused at capture"}


def test_lost_answers_are_found_later_and_an_html_error_page_is_a_counted_failed_start(tmp_path):
    out = tmp_path / "run"
    proc = saga_harness(
        "run", "--config", str(SYSTEMS / "lookup.toml"), "--sagas", "6", "--mix", "ok=1,lose=1,broken=1",
        "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    verdicts = json.loads((out / "verdicts.json").read_text())
    starts = verdicts["stats"]["starts"]
    lines = history(out)
    triggers = Counter(x["trigger"] for x in lines if x["type"] == "invoke" and x["f"] == "start_saga")
    assert starts["sagas"] == 6 and starts["failed"] == triggers["broken"] and starts["found_later"] == triggers["lose"]
    assert starts["lost"] == triggers["broken"] and "starts: 6 sagas" in proc.stdout
    page = next(x for x in lines if x["type"] == "fail")
    assert page["status"] == 500 and page["content_type"] == "text/html" and "<h1>" in page["value"]
    # Every saga found later was followed to its end.
    assert verdicts["stats"]["by_outcome"] == {"completed": triggers["ok"] + triggers["lose"]}


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--bugs", "orders.no_paid_check"], ["--env KEY=VALUE", "[env] declares MINISHOP_BUGS"]),
        (["--mix", "ok=1,nope=1"], ["nope", "declared triggers"]),
    ],
)
def test_mistakes_stop_before_anything_starts_with_one_paragraph_and_no_run_directory(tmp_path, args, needles):
    proc = saga_harness("run", "--config", str(SYSTEMS / "minishop.toml"), *args, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())
    for needle in needles:
        assert needle in message, message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_broken_description_is_exit_2_naming_file_and_key_and_leaves_no_run_directory(tmp_path):
    bad = tmp_path / "saga-harness.toml"
    text = (SYSTEMS / "minishop.toml").read_text().replace('cwd = "../../../fixtures"', f'cwd = "{ROOT / "fixtures"}"')
    bad.write_text(text.replace('true = "completed"', 'True = "completed"'))
    proc = saga_harness("run", "--sagas", "1", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())
    assert str(bad) in message and "did you mean 'true'" in message
    assert not (tmp_path / "runs").exists()


def test_readiness_by_status_set_and_what_a_service_that_never_gets_ready_says(tmp_path):
    text = (SYSTEMS / "blocking.toml").read_text()
    ready = text.replace('"blocking.py", "${port}"]', f'"blocking.py", "${{port}}"]\ncwd = "{SYSTEMS}"')
    ok = tmp_path / "ok.toml"
    ok.write_text(ready.replace("[services.trips]", '[services.trips]\nhealth = "/trips/none"\nhealth_status = [404]'))
    proc = saga_harness(
        "run", "--config", str(ok), "--sagas", "1", "--mix", "ok=1", "--out", str(tmp_path / "a"), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]  # a 404 there means ready, as declared
    never = tmp_path / "never.toml"
    never.write_text(ready.replace("[services.trips]", '[services.trips]\nhealth = "/trips/none"\nready_timeout_s = 2'))
    proc = saga_harness("run", "--config", str(never), "--sagas", "1", "--out", str(tmp_path / "b"), cwd=tmp_path)
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "did not give HTTP 200 from" in message and "/trips/none within 2 s" in message, message


def test_config_check_and_the_reference_on_the_command_line(tmp_path):
    ok = saga_harness("config", "check", str(SYSTEMS / "minishop.toml"), cwd=tmp_path)
    assert ok.returncode == 0 and "create_order, add_item, add_second_item, checkout" in " ".join(ok.stdout.split())
    bad = tmp_path / "bad.toml"
    bad.write_text((SYSTEMS / "minishop.toml").read_text().replace('step = "checkout"\n', 'step = "chekout"\n', 1))
    proc = saga_harness("config", "check", str(bad), cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean 'checkout'" in " ".join(proc.stderr.split())
    stale = tmp_path / "config.md"
    stale.write_text("old\n")
    assert saga_harness("config", "reference", "--out", str(stale), "--check", cwd=tmp_path).returncode == 1
    assert saga_harness("config", "reference", "--out", str(stale), cwd=tmp_path).returncode == 0
    assert saga_harness("config", "reference", "--out", str(stale), "--check", cwd=tmp_path).returncode == 0
    assert "[[saga.start]]" in stale.read_text()
