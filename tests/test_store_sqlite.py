"""SQLite specifics: group commit isolates a failing write; a lock held by another process never stalls the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from sqlalchemy import text

from smsconnector.store import Store
from smsconnector.store import sqlite as sqlite_store


@pytest.fixture
def store(make_app, database_url):
    make_app()  # migrated schema
    return Store(database_url)


def insert(number: str):
    async def work(session):
        await session.exec(text("INSERT INTO consumers (number, created_at) VALUES (:n, '2026-01-01')"),
                           params={"n": number})
        return number
    return work


def test_concurrent_writes_share_commits_and_a_failing_one_takes_no_other_with_it(store, db):
    async def fail(session):
        await session.exec(text("INSERT INTO consumers (number, created_at) VALUES ('+1', '2026-01-01')"))
        raise RuntimeError("a bug in one write")

    async def run():
        try:
            return await asyncio.gather(*(store.write(insert(f"+1555000{i:04d}")) for i in range(20)),
                                        store.write(fail), return_exceptions=True)
        finally:
            await store.close()

    results = asyncio.run(run())

    assert results[:20] == [f"+1555000{i:04d}" for i in range(20)]
    assert isinstance(results[20], RuntimeError)
    assert db.count("consumers") == 20  # the failing write's row is not there; all the others are


def test_write_waiting_for_another_process_lock_keeps_the_event_loop_running(store, db, database_url):
    other = sqlite3.connect(database_url.removeprefix("sqlite:///"), check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    release = threading.Timer(0.5, other.commit)

    async def run():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(ticker())
        release.start()
        try:
            result = await store.write(insert("+15550001111"))
        finally:
            beat.cancel()
            await store.close()
        return result, ticks

    result, ticks = asyncio.run(run())
    other.close()

    assert result == "+15550001111" and db.count("consumers") == 1
    assert ticks > 5  # the loop kept serving other work while the write waited for the lock


def test_only_the_connection_opening_committing_and_closing_go_to_the_worker_thread():
    connection = sqlite3.connect(":memory:")
    cursor = connection.cursor()
    try:
        assert sqlite_store._in_thread(connection.commit) and sqlite_store._in_thread(connection.close)
        # a cursor's close runs once per statement: a thread hop there cost more than the statement
        assert not sqlite_store._in_thread(cursor.close) and not sqlite_store._in_thread(cursor.execute)
    finally:
        connection.close()
