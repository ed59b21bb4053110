"""The same system on PostgreSQL: one schema per component."""

from __future__ import annotations

import uuid

import pytest
from postgres import PG_URL, pg_available
from shopclient import EXPECTED, TRIGGERS

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not pg_available(), reason="PostgreSQL is not running on 127.0.0.1:5432 (user postgres)"),
]


def test_sagas_on_postgres(make_shop):
    import psycopg

    prefix = f"t{uuid.uuid4().hex[:8]}"
    shop = make_shop(database_url=PG_URL, schema_prefix=prefix)
    try:
        ids = {shop.start(trigger): trigger for trigger in TRIGGERS for _ in range(2)}
        views = shop.wait(list(ids), timeout=60)
        for sid, view in views.items():
            assert view["outcome"] == EXPECTED[ids[sid]]
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test") as conn:
            schemas = {
                r[0]
                for r in conn.execute(
                    "select schema_name from information_schema.schemata where schema_name like %s", (prefix + "_%",)
                )
            }
            assert f"{prefix}_payment" in schemas and f"{prefix}_orchestrator" in schemas
            n = conn.execute(f'select count(*) from "{prefix}_orchestrator".sagas').fetchone()[0]
            assert n == len(ids)
    finally:
        shop.sut.stop()
        shop.sut.drop_schemas()
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test") as conn:
        left = conn.execute(
            "select count(*) from information_schema.schemata where schema_name like %s", (prefix + "_%",)
        ).fetchone()[0]
    assert left == 0
