"""An aiosqlite connection that keeps the event loop free of disk waits without a thread hop per statement.

aiosqlite runs every call in a worker thread; each hop costs more than the statement itself (about 0.15 ms
against 0.01 ms), and a message takes several statements, so the hops, not SQLite, bound throughput. Here
statements run on the calling thread -- in WAL mode they touch the page cache -- and only what waits on
the disk or on another process goes to the worker thread: opening, the commit (its fsync), closing, and a
statement that found the database locked by another process, tried again there until it gets the lock.
A hot write that needs no ORM can go further: :meth:`InlineConnection.transact` runs a whole transaction in
the worker thread, one hop in all.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite

#: how long an inline statement waits for another process's lock: not at all, since it would wait on the event
#: loop; it moves to the worker thread at once
INLINE_BUSY_MS = 0
#: how long it may then wait there
PATIENT_BUSY_MS = 10_000
#: how often it tries for the lock meanwhile. SQLite's own busy handler sleeps longer and longer between tries
#: (up to 100 ms), so it mostly missed the moments another process let go: a worker routes transaction after
#: transaction with gaps of a few milliseconds, and the web process's webhooks waited up to 360 ms (p99).
RETRY_BUSY_MS = 1
#: the connection's calls that go to the worker thread (a cursor's ``close`` only finalizes its statement)
_IN_THREAD = frozenset({"connector", "commit", "close"})

T = TypeVar("T")


def _in_thread(fn: Callable[..., Any]) -> bool:
    return getattr(fn, "__name__", "") in _IN_THREAD and not isinstance(getattr(fn, "__self__", None), sqlite3.Cursor)


class InlineConnection(aiosqlite.Connection):
    """See the module docstring."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if _in_thread(fn) or self._connection is None:
            return await super()._execute(fn, *args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            return await super()._execute(self._patiently, fn, *args, **kwargs)

    async def transact(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` in one immediate transaction in the worker thread, committed there (rolled back
        if it raises): the event loop waits once for the whole write instead of running each statement and then
        waiting for the commit. Another process's lock is waited for there too."""
        return await super()._execute(self._transaction, work)

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        assert self._connection is not None
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            self._patiently(connection.execute, "BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            connection.rollback()
            raise
        connection.commit()
        return result

    def stop(self) -> asyncio.Future[Any] | None:
        """Close the connection and end its worker thread (SQLAlchemy's forced close).

        SQLAlchemy also calls this for a connection dropped as garbage after the event loop it served has
        ended. aiosqlite would then hand the thread a future of whatever loop was last set, closed or not, and
        the thread would die raising "Event loop is closed"; with no loop running, nobody awaits the close, so
        the thread gets none.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._running = False
            self._tx.put_nowait((None, self._close_and_stop))
            return None
        return super().stop()

    def _close_and_stop(self) -> object:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return aiosqlite.core._STOP_RUNNING_SENTINEL

    def _patiently(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        assert self._connection is not None
        deadline = time.monotonic() + PATIENT_BUSY_MS / 1000
        self._connection.execute(f"PRAGMA busy_timeout={RETRY_BUSY_MS}")
        try:
            while True:
                try:
                    return fn(*args, **kwargs)
                except sqlite3.OperationalError as exc:
                    # Only a lock another connection holds is worth waiting for; a stale snapshot
                    # (SQLITE_BUSY_SNAPSHOT) stays stale until its transaction starts again.
                    if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                        raise
        finally:
            self._connection.execute(f"PRAGMA busy_timeout={INLINE_BUSY_MS}")


def connect(database: str, **kwargs: Any) -> InlineConnection:
    """What SQLAlchemy's aiosqlite dialect calls (``async_creator_fn``) to open a connection."""
    kwargs["check_same_thread"] = False  # opened in the worker thread, used from the event loop's thread

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(database, **kwargs)

    connection = InlineConnection(connector, iter_chunk_size=64)
    connection._thread.daemon = True
    return connection
