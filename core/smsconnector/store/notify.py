"""Waking other processes when work is committed: PostgreSQL's LISTEN/NOTIFY.

Each process that works or serves keeps one :class:`Listener` connection. A transaction that stores work for
someone else notifies a channel as part of itself, so the notification goes out exactly when the work is
committed, and never for work rolled back:

- :data:`INBOX`: a webhook's inbox entries (the inbox's insert notifies); every inbox processor wakes.
- :data:`OUTBOX`: outbound messages queued (any transaction that emits ``outbox.queued``, see :func:`install`);
  every sender wakes.
- :data:`EVENTS`: live events for agent clients (written by :mod:`smsconnector.live`); every poller wakes.

A notification is only a wake-up, never the work itself: whoever is woken looks in the tables. So a missed one
(the connection dropped, the process was starting) costs time, not messages; every consumer of a channel also
looks on its own every so often, and the listener wakes them all each time it (re)connects. On SQLite, where
there is no such thing, the processes look on their own schedule.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from .db import Store

log = logging.getLogger(__name__)

INBOX = "smsconnector_inbox"
OUTBOX = "smsconnector_outbox"
EVENTS = "smsconnector_events"
#: seconds between two attempts to open the listening connection
RECONNECT_SECONDS = 1.0

#: run inside the transaction that stored inbox entries
INBOX_NOTIFY = select(func.pg_notify(INBOX, ""))
_OUTBOX_NOTIFY = select(func.pg_notify(OUTBOX, ""))

_notifying: weakref.WeakSet[Engine] = weakref.WeakSet()


def install(store: Store) -> None:
    """Make every transaction on ``store`` that queues outbound messages notify :data:`OUTBOX` (PostgreSQL)."""
    if store.dialect != "postgresql":
        return
    _notifying.add(store.engine.sync_engine)
    if not event.contains(Session, "before_commit", _notify_outbox):
        event.listen(Session, "before_commit", _notify_outbox)


def _notify_outbox(session: Session) -> None:
    """Before a commit: if the transaction queued outbound messages, notify the senders (same transaction)."""
    if session.in_nested_transaction() or session.get_bind() not in _notifying:
        return
    emitted = session.info.get("events") or ()
    done = session.info.get("outbox_notified", 0)
    session.info["outbox_notified"] = len(emitted)
    if any(e.kind == "outbox.queued" for e in emitted[done:]):
        session.connection().execute(_OUTBOX_NOTIFY)


class Listener:
    """This process's LISTEN connection: calls a channel's callbacks whenever a transaction that notified it
    commits, in any process. Callbacks are plain functions that must not block (they set an event)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._callbacks: dict[str, list[Callable[[], None]]] = {}
        self._task: asyncio.Task[None] | None = None
        #: set while the connection listens (for tests and health)
        self.listening = asyncio.Event()

    def on(self, channel: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` on each notification of ``channel`` (and whenever the connection is re-opened)."""
        self._callbacks.setdefault(channel, []).append(callback)

    def start(self) -> None:
        """Listen in the background (PostgreSQL only: elsewhere nothing notifies)."""
        if self._store.dialect == "postgresql" and self._callbacks and self._task is None:
            self._task = asyncio.create_task(self._run(), name="smsconnector-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.listening.clear()

    async def _run(self) -> None:
        import psycopg

        conninfo = self._store.sync_url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:
                    for channel in self._callbacks:
                        await connection.execute(f"LISTEN {channel}")
                    self.listening.set()
                    self._call_all()  # whatever was committed while nobody listened
                    async for notification in connection.notifies():
                        for callback in self._callbacks.get(notification.channel, ()):
                            callback()
            except Exception as exc:  # noqa: BLE001  (whatever broke the connection, the pollers carry on)
                self.listening.clear()
                log.warning("LISTEN connection failed (%s); looking for work on a timer until it is back", exc)
                await asyncio.sleep(RECONNECT_SECONDS)

    def _call_all(self) -> None:
        for callbacks in self._callbacks.values():
            for callback in callbacks:
                callback()
