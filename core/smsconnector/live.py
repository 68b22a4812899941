"""Live events for agent clients: persisted with the change that made them, then fanned out to subscribers.

**Persisting.** Events that agent clients care about (:data:`LIVE_KINDS`, emitted anywhere with
:func:`smsconnector.events.emit`) are written to the ``events`` table by a listener that runs as the
emitting transaction commits, so an event exists exactly when its change does. Each row names the agent it
concerns (a message's status goes to whoever serves its conversation now); administrators see every row.

**Fan-out.** Each replica runs one :class:`LiveEvents` poller that reads new rows and hands them to its
subscribers (the SSE streams of ``GET /api/events``). While anyone listens it wakes when this process commits
an event and when PostgreSQL notifies that another replica did (:mod:`.store.notify`); in
any case every :data:`POLL_SECONDS`. With nobody listening that once a second is enough to keep its place (a
poll after every commit took about 5% of the sender's time for no one), and a first subscriber waits for it to
catch up, so a subscription starts exactly at what is committed when it is made. Ids are handed out before
commit, so on PostgreSQL a lower id can appear after a higher one; ids skipped over are looked for again for
:data:`GAP_SECONDS`. Rows older than :data:`RETENTION` are pruned: a client away for longer reloads its
conversations instead of replaying.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, event, func, insert, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .events import Event
from .messages import utcnow
from .store import bulk, notify
from .store.models import Conversation, EventRecord

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger(__name__)

LIVE_KINDS = frozenset({"conversation.assigned", "conversation.unassigned", "conversation.queued",
                        "conversation.closed", "message.received", "message.status"})
POLL_SECONDS = 1.0
GAP_SECONDS = 30.0
RETENTION = timedelta(days=1)
PRUNE_SECONDS = 600.0
#: events a slow subscriber may have waiting before it is dropped (its client reconnects and replays)
SUBSCRIBER_BACKLOG = 1000

_persisting: weakref.WeakSet[Engine] = weakref.WeakSet()
_EVENTS = EventRecord.__table__  # type: ignore[attr-defined]


def _persist(session: Session) -> None:
    """Before a commit: write the transaction's live events into the ``events`` table (same transaction)."""
    if session.in_nested_transaction():
        return
    emitted: list[Event] = session.info.get("events") or []
    done = session.info.get("live_persisted", 0)
    session.info["live_persisted"] = len(emitted)
    fresh = [e for e in emitted[done:] if e.kind in LIVE_KINDS]
    if not fresh or session.get_bind() not in _persisting:
        return
    connection = session.connection()
    current = _current_agents(connection, {e.data["conversation_id"] for e in fresh
                                           if e.kind == "message.status" and e.data.get("conversation_id")})
    rows = []
    for e in fresh:
        conversation_id = e.data.get("conversation_id")
        agent_id = current.get(conversation_id, e.data.get("agent_id")) if e.kind == "message.status" \
            else e.data.get("agent_id")
        # Through JSON and back: a plugin's event may carry a datetime or a decimal; it must not fail the commit.
        data = json.loads(json.dumps({k: v for k, v in e.data.items() if k not in ("agent_id", "conversation_id")},
                                     default=str))
        rows.append({"kind": e.kind, "agent_id": agent_id, "conversation_id": conversation_id, "data": data,
                     "created_at": e.at})
    if connection.dialect.name == "postgresql":
        numbered = [{**row, bulk.ORDINALITY: n} for n, row in enumerate(rows)]
        connection.execute(_INSERT_AND_NOTIFY, bulk.params(_EVENTS, numbered))
    else:
        connection.execute(insert(_EVENTS), rows)


_COLUMNS = ("kind", "agent_id", "conversation_id", "data", "created_at")
#: PostgreSQL: the rows, given as one JSON document (:mod:`.store.bulk`), and the wake-up of every replica's poller,
#: in one round trip (a data-modifying WITH runs to completion whether or not the query reads it); ids in the
#: order the events were emitted.
_ROWS = bulk.rows_of(_EVENTS, _COLUMNS, ordered=True)
_INSERT_AND_NOTIFY = select(func.pg_notify(notify.EVENTS, "")).add_cte(
    insert(_EVENTS).from_select(_COLUMNS, select(*(bulk.selected(_EVENTS, _ROWS, c) for c in _COLUMNS))
                                .order_by(_ROWS.c[bulk.ORDINALITY])).cte("written"))


def _current_agents(connection: Any, conversation_ids: set[int]) -> dict[int, int | None]:
    if not conversation_ids:
        return {}
    stmt = select(Conversation.id, Conversation.agent_id).where(Conversation.id.in_(conversation_ids))
    return {row.id: row.agent_id for row in connection.execute(stmt)}


@dataclass(eq=False)
class Subscription:
    """One client's feed: the rows it may see, in the order the poller found them; ``None`` ends it."""

    agent_id: int | None  #: ``None`` for an administrator, who sees everything
    queue: asyncio.Queue[EventRecord | None] = field(default_factory=asyncio.Queue)

    def wants(self, row: EventRecord) -> bool:
        return self.agent_id is None or row.agent_id == self.agent_id


class LiveEvents:
    """The poller of one replica and its subscribers."""

    def __init__(self, app: App) -> None:
        self.app = app
        _persisting.add(app.store.engine.sync_engine)
        if not event.contains(Session, "before_commit", _persist):
            event.listen(Session, "before_commit", _persist)
        self._subscribers: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._high = 0
        self._missing: dict[int, float] = {}  # id -> when it was first missed (loop time)
        self._polling = asyncio.Lock()  # two polls at once would both hand out the rows they both read
        self._tasks: list[asyncio.Task[None]] = []
        app.events.subscribe(self._on_commit)

    def _on_commit(self, event_: Event) -> None:
        if event_.kind in LIVE_KINDS and self._subscribers:
            self._wake.set()

    def on_notify(self) -> None:
        """Another process committed live events (:data:`~smsconnector.store.notify.EVENTS`): poll, if anyone
        listens."""
        if self._subscribers:
            self._wake.set()

    async def start(self) -> None:
        async with self.app.store.session() as session:
            self._high = int((await session.exec(select(func.coalesce(func.max(EventRecord.id), 0)))).scalar_one())
        self._tasks.append(asyncio.create_task(self._run(), name="smsconnector-live"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.end_streams()

    def end_streams(self) -> None:
        """End every subscriber's feed now: the server is shutting down, and a client reconnects (to another
        replica, or to this one once it is back) with ``Last-Event-ID``."""
        for subscription in list(self._subscribers):
            self.unsubscribe(subscription)
            subscription.queue.put_nowait(None)

    async def subscribe(self, agent_id: int | None) -> Subscription:
        """A feed of the rows committed from now on that ``agent_id`` may see (all of them for ``None``)."""
        if not self._subscribers:
            while await self.poll() >= 1000:  # nobody listened: the poller's place may be a second old
                pass
        subscription = Subscription(agent_id)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    async def replay(self, agent_id: int | None, after: int, limit: int = 1000) -> Sequence[EventRecord]:
        """Rows after ``after`` that the subscriber may see, oldest first."""
        stmt = select(EventRecord).where(EventRecord.id > after).order_by(EventRecord.id).limit(limit)
        if agent_id is not None:
            stmt = stmt.where(EventRecord.agent_id == agent_id)
        async with self.app.store.session() as session:
            return (await session.exec(stmt)).scalars().all()

    async def poll(self) -> int:
        """Read the rows committed since the last poll and hand them out, each once; how many."""
        async with self._polling:
            return await self._poll()

    async def _poll(self) -> int:
        loop = asyncio.get_running_loop()
        news = or_(EventRecord.id > self._high, EventRecord.id.in_(list(self._missing)))
        # With no one listening only the ids matter (to know where the next subscriber starts): loading whole
        # rows for no one cost the sender and the API a few percent of their time.
        listened = bool(self._subscribers)
        stmt = select(EventRecord if listened else EventRecord.id).where(news).order_by(EventRecord.id).limit(1000)
        async with self.app.store.session() as session:
            rows = (await session.exec(stmt)).scalars().all()
        now = loop.time()
        for row in rows:
            row_id = row.id if listened else row
            assert row_id is not None
            if self._missing.pop(row_id, None) is None and row_id > self._high:
                for gap in range(max(self._high + 1, row_id - 1000), row_id):
                    self._missing[gap] = now
                self._high = row_id
            if listened:
                self._deliver(row)
        self._missing = {i: t for i, t in self._missing.items() if now - t < GAP_SECONDS}
        return len(rows)

    def _deliver(self, row: EventRecord) -> None:
        for subscription in list(self._subscribers):
            if not subscription.wants(row):
                continue
            if subscription.queue.qsize() >= SUBSCRIBER_BACKLOG:
                self.unsubscribe(subscription)
                subscription.queue.put_nowait(None)
                continue
            subscription.queue.put_nowait(row)

    async def prune(self) -> int:
        async with self.app.store.transaction() as session:
            result = await session.exec(delete(EventRecord).where(EventRecord.created_at < utcnow() - RETENTION))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pruned_at = loop.time()
        while True:
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
                self._wake.clear()
                if await self.poll() >= 1000:
                    self._wake.set()  # more waiting
                if loop.time() - pruned_at >= PRUNE_SECONDS:
                    pruned_at = loop.time()
                    await self.prune()
            except Exception:
                log.exception("live events: polling failed; trying again")
                await asyncio.sleep(POLL_SECONDS)
