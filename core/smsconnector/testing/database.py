"""Test databases: a SQLite file or a private PostgreSQL schema, and a synchronous way to look inside."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
#: the tables the host writes
HOST_TABLES = ("consumers", "conversations", "messages", "outbox", "segment_groups", "segment_parts", "delivery_parts",
               "held_statuses", "agents", "agent_skills", "skills", "events", "inbox", "idempotency_keys",
               "agent_sessions")


def postgres_url() -> str:
    return os.environ.get("SMSCONNECTOR_TEST_POSTGRES_URL", DEFAULT_POSTGRES)


@cache
def postgres_available() -> str | None:
    """``None`` when PostgreSQL answers, else why not (for the skip reason)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    url = make_url(postgres_url())
    try:
        with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
                             password=url.password, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {url.render_as_string(hide_password=True)}: {exc}".strip()


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections live in a new, private schema; the schema is dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(postgres_url()).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    # Connections are named after the schema too, so a test can find (and drop) its own in pg_stat_activity.
    url = make_url(postgres_url()).update_query_dict({"options": f"-csearch_path={schema}", "application_name": schema})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Database:
    """A synchronous connection to the test database, for assertions about what was stored."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        if url.get_backend_name() == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        self.engine: Engine = create_engine(url)

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql), params)]

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def execute(self, sql: str, **params: Any) -> None:
        """Change something behind the app's back (to stage a situation), committed at once."""
        with self.engine.begin() as connection:
            connection.execute(text(sql), params)

    def count(self, table: str, where: str = "1=1", **params: Any) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {table} WHERE {where}", **params))

    def snapshot(self) -> dict[str, int]:
        """Row counts of every table the host writes: compare before and after to show nothing changed."""
        return {t: self.count(t) for t in HOST_TABLES}

    def contents(self, *extra_tables: str) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table the host writes (and of ``extra_tables``, a plugin's), in a stable order:
        compare before and after to show that nothing was added, removed *or changed*."""
        with self.engine.connect() as conn:
            return {t: sorted((tuple(r) for r in conn.execute(text(f"SELECT * FROM {t}"))), key=repr)
                    for t in (*HOST_TABLES, *extra_tables)}

    def close(self) -> None:
        self.engine.dispose()
