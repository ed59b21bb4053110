"""The PostgreSQL server on this machine, for tests of the reference system's real-database mode."""

from __future__ import annotations

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def pg_available() -> bool:
    """Whether PostgreSQL answers on 127.0.0.1:5432 (user postgres, database test)."""
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=2):
            return True
    except Exception:
        return False
