"""The store on SQLite and PostgreSQL: migrations, and the constraint that dedupes provider retries."""

from __future__ import annotations

import asyncio
import functools

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from smsconnector import InboundMessage, inbound
from smsconnector.messages import utcnow
from smsconnector.store import Store
from smsconnector.store.db import alembic_config

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@both_databases
def test_migrations_build_exactly_the_models_schema(make_app, db):
    app = make_app()
    app.upgrade_database()  # a second upgrade is a no-op

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)

    assert diff == []
    assert {r["version_num"] for r in db.rows("SELECT version_num FROM alembic_version")} == applied_heads(app)


def applied_heads(app) -> set[str]:
    """What alembic_version holds when every branch is applied: a head another head depends on is implied."""
    script = ScriptDirectory.from_config(alembic_config(app.hooks.migrations()))
    heads = set(script.get_heads())
    depended: set[str] = set()
    for head in heads:
        dependencies = script.get_revision(head).dependencies or ()
        depended |= {dependencies} if isinstance(dependencies, str) else set(dependencies)
    return heads - depended


@both_databases
def test_the_same_provider_message_is_inserted_once(database_url, make_app):
    make_app()
    store = Store(database_url)
    message = InboundMessage(provider="twilio", provider_message_id="SM1", from_number="+14155550123",
                             to_number="+15555550100", text="hi")

    async def insert_twice() -> list[int | None]:
        ids = []
        for _ in range(2):
            async with store.transaction() as session:
                ids.append(await inbound.insert_once(session, message))
        await store.close()
        return ids

    first, second = asyncio.run(insert_twice())
    assert isinstance(first, int) and second is None


def test_sqlite_store_is_durable_and_writes_ahead(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")

    async def pragmas() -> tuple[str, int]:
        async with store.session() as session:
            mode = (await session.exec(text("PRAGMA journal_mode"))).scalar()
            sync = (await session.exec(text("PRAGMA synchronous"))).scalar()
        await store.close()
        return mode, sync

    assert asyncio.run(pragmas()) == ("wal", 2)  # 2 = FULL: a committed message survives a power cut


@both_databases
def test_migration_0006_copies_each_queued_messages_recipient_into_its_outbox_row(database_url, db):
    engine = create_engine(Store(database_url).sync_url)
    upgrade = functools.partial(_upgrade, engine)

    upgrade("0005")
    db.execute("INSERT INTO messages (direction, provider, from_number, to_number, body, media, message_class, status, "
               "incomplete, notes, details, created_at, updated_at) VALUES ('outbound', 'twilio', '+15555550100', "
               "'+14155550123', 'queued before the upgrade', '[]', 'conversational', 'queued', false, '[]', '{}', "
               ":now, :now)", now=utcnow())
    message_id = db.scalar("SELECT id FROM messages")
    db.execute("INSERT INTO outbox (message_id, provider, from_number, due_at, attempts, created_at) "
               "VALUES (:id, 'twilio', '+15555550100', :now, 0, :now)", id=message_id, now=utcnow())
    upgrade("heads")
    engine.dispose()

    assert db.rows("SELECT to_number, attempted_at FROM outbox") == [
        {"to_number": "+14155550123", "attempted_at": None}]
    assert db.count("send_rates") == 0


@both_databases
def test_migration_0005_gives_each_pending_inbox_entry_its_lane_even_one_with_a_nul(database_url, db):
    engine = create_engine(Store(database_url).sync_url)
    upgrade = functools.partial(_upgrade, engine)

    upgrade("0004")
    for key, kind, payload, processed in [
        ("message:SM1", "message", '{"from_number": "+14155550123", "text": "hello"}', None),
        ("message:SM2", "message", '{"from_number": "+14155550124", "text": "a\\u0000b"}', None),
        ("status:SM3:sent", "status", '{"provider_message_id": "SM3", "status": "sent"}', None),
        ("message:SM4", "message", None, utcnow()),
    ]:
        db.execute("INSERT INTO inbox (provider, key, kind, payload, received_at, processed_at, attempts) "
                   "VALUES ('twilio', :key, :kind, :payload, :now, :processed, 0)", key=key, kind=kind,
                   payload=payload, now=utcnow(), processed=processed)
    upgrade("heads")
    engine.dispose()

    assert db.rows("SELECT key, lane FROM inbox ORDER BY id") == [
        {"key": "message:SM1", "lane": "message:+14155550123"},
        {"key": "message:SM2", "lane": "message:+14155550124"},
        {"key": "status:SM3:sent", "lane": "status:SM3"},
        {"key": "message:SM4", "lane": None},  # routed already: no order left to keep
    ]


def _upgrade(engine: Engine, revision: str) -> None:
    """Migrate the database behind ``engine`` up to ``revision`` (or ``"heads"``), as `db upgrade` would."""
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
