"""SQLite specifics: batched writes isolate a failing item; another process's lock never stalls the loop; the
inbox's plain SQL stores what the ORM would."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy import text
from sqlmodel import select

from smsconnector import inbox as inbox_module
from smsconnector.inbox import Inbox
from smsconnector.messages import InboundMessage
from smsconnector.store import Store
from smsconnector.store import sqlite as sqlite_store
from smsconnector.store.batching import Batcher
from smsconnector.store.models import InboxEntry


@pytest.fixture
def store(make_app, database_url):
    make_app()  # migrated schema
    return Store(database_url)


async def _insert_consumers(store: Store, numbers: list[str]) -> None:
    async with store.transaction() as session:
        for number in numbers:
            await session.exec(text("INSERT INTO consumers (number, created_at) VALUES (:n, '2026-01-01')"),
                               params={"n": number})


def test_concurrent_items_share_transactions_and_a_failing_one_takes_no_other_with_it(store, db):
    transactions = 0

    async def flush(numbers: list[str]) -> list[str]:
        nonlocal transactions
        transactions += 1
        async with store.transaction() as session:
            for number in numbers:
                await session.exec(text("INSERT INTO consumers (number, created_at) VALUES (:n, '2026-01-01')"),
                                   params={"n": number})
                if number == "+1bad":
                    raise RuntimeError("a bug in one item")
        return numbers

    async def run():
        batcher = Batcher(flush)
        try:
            return await asyncio.gather(*(batcher.submit(f"+1555000{i:04d}") for i in range(20)),
                                        batcher.submit("+1bad"), return_exceptions=True)
        finally:
            await batcher.close()
            await store.close()

    results = asyncio.run(run())

    assert results[:20] == [f"+1555000{i:04d}" for i in range(20)]
    assert isinstance(results[20], RuntimeError)
    assert db.count("consumers") == 20  # the failing item's row is not there; all the others are
    # one shared attempt, then each of the 21 alone: far fewer commits than items only when nothing fails
    assert transactions == 1 + 21


def test_items_submitted_together_share_one_transaction(store, db):
    sizes: list[int] = []

    async def flush(numbers: list[str]) -> list[None]:
        sizes.append(len(numbers))
        await _insert_consumers(store, numbers)
        return [None] * len(numbers)

    async def run():
        batcher = Batcher(flush)
        try:
            await asyncio.gather(*(batcher.submit(f"+1555000{i:04d}") for i in range(50)))
        finally:
            await batcher.close()
            await store.close()

    asyncio.run(run())

    assert db.count("consumers") == 50
    assert sum(sizes) == 50 and len(sizes) < 5


def test_a_submitter_that_stops_waiting_takes_no_other_write_with_it(store, db):
    """A webhook whose deadline passes mid-write gives up; the write it shared still commits for the others
    (and for its own item: the provider's retry is then recognised as a duplicate)."""
    release = asyncio.Event()

    async def flush(numbers: list[str]) -> list[str]:
        await release.wait()
        await _insert_consumers(store, numbers)
        return numbers

    async def run() -> list[object]:
        batcher = Batcher(flush)
        try:
            writes = [asyncio.create_task(batcher.submit(f"+1555000{i:04d}")) for i in range(3)]
            await asyncio.sleep(0.05)  # all three are in the flush under way
            writes[1].cancel()
            await asyncio.sleep(0)
            release.set()
            return await asyncio.wait_for(asyncio.gather(*writes, return_exceptions=True), 10)
        finally:
            await batcher.close()
            await store.close()

    results = asyncio.run(run())

    assert results[0] == "+15550000000" and results[2] == "+15550000002"
    assert isinstance(results[1], asyncio.CancelledError)
    assert db.count("consumers") == 3


def test_a_submitter_past_its_deadline_gives_up_and_its_item_is_still_written(store, db):
    """One timer serves every submitter's deadline: the early ones give up when theirs passes, a later one
    keeps waiting for its own, and the flush under way still writes all of them."""
    release = asyncio.Event()

    async def flush(numbers: list[str]) -> list[str]:
        await release.wait()
        await _insert_consumers(store, numbers)
        return numbers

    async def run() -> tuple[list[object], bool, object]:
        batcher = Batcher(flush, timeout=1.0)
        try:
            early = [asyncio.create_task(batcher.submit(f"+1555000{i:04d}")) for i in range(2)]
            await asyncio.sleep(0.6)
            late = asyncio.create_task(batcher.submit("+15550009999"))  # its deadline: 0.6 s after the others'
            await asyncio.sleep(0.6)
            late_waiting = not late.done()
            release.set()
            return (await asyncio.gather(*early, return_exceptions=True)), late_waiting, await late
        finally:
            await batcher.close()
            await store.close()

    early, late_waiting, late = asyncio.run(run())

    assert [type(result) for result in early] == [TimeoutError, TimeoutError]
    assert late_waiting and late == "+15550009999"
    assert db.count("consumers") == 3


def test_deadlines_still_hold_in_a_new_event_loop_after_one_ended_with_its_timer_armed():
    """An app called from one event loop after another (tests, embedding): the first loop ended with the timer
    of a deadline still armed in it; the second still gets its own."""
    stuck = False

    async def flush(items: list[int]) -> list[int]:
        if stuck:
            await asyncio.sleep(3600)
        return items

    batcher = Batcher(flush, timeout=0.2)

    async def submit() -> object:
        try:
            return await batcher.submit(1)
        except TimeoutError as exc:
            return exc

    first = asyncio.run(submit())
    stuck = True
    started = time.monotonic()
    second = asyncio.run(asyncio.wait_for(submit(), 5))

    assert first == 1
    assert isinstance(second, TimeoutError) and time.monotonic() - started < 2


def test_idle_returns_only_once_every_write_is_committed(store, db):
    """What the inbox processor waits for before it takes the store for a slice of routing."""
    release = asyncio.Event()

    async def flush(numbers: list[str]) -> list[None]:
        await release.wait()
        await _insert_consumers(store, numbers)
        return [None] * len(numbers)

    async def run() -> tuple[bool, bool, int]:
        batcher = Batcher(flush)
        try:
            await asyncio.wait_for(batcher.idle(), 1)  # nothing submitted yet
            writes = [asyncio.create_task(batcher.submit(f"+1555000{i:04d}")) for i in range(3)]
            await asyncio.sleep(0.05)
            busy_while_held = batcher.busy
            idle = asyncio.create_task(batcher.idle())
            await asyncio.sleep(0.05)
            idle_too_soon = idle.done()
            release.set()
            await asyncio.wait_for(idle, 5)
            return busy_while_held, idle_too_soon, sum(w.done() for w in writes)
        finally:
            await batcher.close()
            await store.close()

    busy_while_held, idle_too_soon, done = asyncio.run(run())

    assert busy_while_held and not idle_too_soon
    assert done == 3 and db.count("consumers") == 3  # idle: every write committed and answered


def test_inbox_write_waiting_for_another_process_lock_keeps_the_event_loop_running(store, db, database_url):
    other = sqlite3.connect(database_url.removeprefix("sqlite:///"), check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    release = threading.Timer(0.5, other.commit)
    message = InboundMessage(provider="simulator", provider_message_id="m-1", from_number="+14155550123",
                             to_number="+15555550100", text="hello")

    async def run():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(ticker())
        release.start()
        inbox = Inbox(store)
        try:
            result = await inbox.put("simulator", [message])
        finally:
            beat.cancel()
            await inbox.close()
            await store.close()
        return result, ticks

    result, ticks = asyncio.run(run())
    other.close()

    assert result == [1] and db.count("inbox") == 1
    assert ticks > 5  # the loop kept serving other work while the write waited for the lock



def test_a_transaction_in_one_hop_that_raises_stores_nothing_and_the_connection_serves_the_next(store, db):
    def insert_then_fail(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO consumers (number, created_at) VALUES ('+14155550001', '2026-01-01')")
        raise RuntimeError("a bug halfway through")

    def insert(connection: sqlite3.Connection) -> int:
        return connection.execute(
            "INSERT INTO consumers (number, created_at) VALUES ('+14155550002', '2026-01-01')").rowcount

    async def run():
        try:
            with pytest.raises(RuntimeError, match="halfway"):
                await store.sqlite_transaction(insert_then_fail)
            return await store.sqlite_transaction(insert)
        finally:
            await store.close()

    assert asyncio.run(run()) == 1
    assert [r["number"] for r in db.rows("SELECT number FROM consumers")] == ["+14155550002"]


def test_inbox_entries_are_stored_as_sqlalchemy_stores_them_and_read_back_unchanged(store, db, monkeypatch):
    """On SQLite the inbox writes plain SQL: its rows must be what the ORM would have written, since the ORM
    reads them (a timestamp's text format, the payload's JSON), and a batch of more rows than one statement
    takes is split, its duplicates still recognised."""
    monkeypatch.setattr(inbox_module, "SQLITE_ROWS_PER_STATEMENT", 2)
    messages = [InboundMessage(provider="simulator", provider_message_id=f"m-{n}", from_number="+14155550123",
                               to_number="+15555550100", text=f"hello {n} ✓") for n in range(4)]
    reference = InboxEntry(provider="orm", key=inbox_module.key(messages[0]), kind="message",
                           payload=inbox_module.encode(messages[0]), received_at=messages[0].received_at)

    async def run():
        async with store.transaction() as session:
            session.add(reference)
        inbox = Inbox(store)
        try:
            ids = await inbox.put("simulator", [*messages, messages[1]])
            async with store.session() as session:
                read = (await session.exec(select(InboxEntry).where(InboxEntry.provider == "simulator")
                                           .order_by(InboxEntry.id))).all()
            return ids, read
        finally:
            await inbox.close()
            await store.close()

    ids, read = asyncio.run(run())

    assert ids == [2, 3, 4, 5, None] and db.count("inbox") == 5  # the repeat within the batch stored once
    assert [inbox_module.decode(e.kind, e.payload) for e in read] == messages
    assert read[0].received_at.tzinfo is not None and read[0].attempts == 0 and read[0].processed_at is None
    columns = "kind, typeof(payload) AS payload_type, payload, received_at, attempts"
    orm, plain = db.rows(f"SELECT {columns} FROM inbox WHERE key = 'message:m-0' ORDER BY id")
    assert plain["payload_type"] == orm["payload_type"] == "text" and plain["payload"] == orm["payload"]
    assert len(plain["received_at"]) == len(orm["received_at"])  # the same text format
    assert (plain["kind"], plain["attempts"]) == (orm["kind"], orm["attempts"])


def test_a_write_from_a_stale_snapshot_fails_at_once_instead_of_waiting_for_the_lock(tmp_path, monkeypatch):
    """Waiting helps only while another connection holds the lock. A snapshot another connection's commit made
    stale stays stale until its transaction starts again, so that write fails at once, as SQLite reports it."""
    monkeypatch.setattr(sqlite_store, "PATIENT_BUSY_MS", 30_000)
    path = str(tmp_path / "stale.db")
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (n INTEGER)")

    async def write_from_a_stale_snapshot() -> float:
        connection = await sqlite_store.connect(path, isolation_level=None)
        try:
            await connection.execute("BEGIN")
            await connection.execute_fetchall("SELECT count(*) FROM t")  # this transaction's snapshot
            with sqlite3.connect(path) as other:
                other.execute("INSERT INTO t VALUES (1)")  # committed after the snapshot
            started = time.monotonic()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                await connection.execute("INSERT INTO t VALUES (2)")
            return time.monotonic() - started
        finally:
            await connection.close()

    assert asyncio.run(write_from_a_stale_snapshot()) < 5  # not the 30 s a held lock may be waited for

def test_only_the_connection_opening_committing_and_closing_go_to_the_worker_thread():
    connection = sqlite3.connect(":memory:")
    cursor = connection.cursor()
    try:
        assert sqlite_store._in_thread(connection.commit) and sqlite_store._in_thread(connection.close)
        # a cursor's close runs once per statement: a thread hop there cost more than the statement
        assert not sqlite_store._in_thread(cursor.close) and not sqlite_store._in_thread(cursor.execute)
    finally:
        connection.close()


def test_a_connection_closed_by_force_after_its_event_loop_ended_closes_without_an_error(tmp_path, monkeypatch):
    # SQLAlchemy closes a connection dropped as garbage this way, after the loop that used it has ended (a CLI
    # command's asyncio.run, a test's loop): the worker thread must not die telling that loop it is done.
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(sqlite_store.connect(str(tmp_path / "closed-loop.db")))
    loop.close()
    asyncio.set_event_loop(loop)  # the ended loop is still the thread's current one, as after asyncio.run
    died: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_value))
    try:
        connection.stop()
        connection._thread.join(timeout=5)
    finally:
        asyncio.set_event_loop(None)
    assert not connection._thread.is_alive() and died == []
    assert connection._connection is None  # closed
