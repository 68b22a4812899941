"""The inbox: a webhook's events are committed here before the provider is answered, and routed from here.

Answering a provider only once its events were routed ties its wait to the slowest part of the pipeline: a
burst of replies to a campaign then keeps providers waiting until they time out and retry, which adds to
the burst. So the webhook does the least that keeps the promise "persisted before acknowledged": each
event, serialized, is inserted with a key unique per provider (a retry inserts nothing), concurrent
webhooks share one multi-row insert and one commit (:mod:`.store.batching`; on SQLite run in one hop to the
driver's thread, :meth:`.store.Store.sqlite_transaction`), and the
:class:`~smsconnector.processing.InboxProcessor` routes the entries right after, in arrival order.
"""

from __future__ import annotations

import base64
import functools
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from .messages import DeliveryStatus, InboundMessage, Media, SegmentInfo, StatusUpdate, utcnow
from .store import Store, bulk, notify
from .store.batching import Batcher
from .store.models import InboxEntry

Item = InboundMessage | StatusUpdate

#: the columns a webhook's entry is inserted with
COLUMNS = ("provider", "key", "kind", "lane", "payload", "received_at", "attempts")
#: rows to one SQLite statement at most (a statement takes at most 32,766 values)
SQLITE_ROWS_PER_STATEMENT = 1_000


def key(item: Item) -> str:
    """What makes an event the same event when a provider sends it again."""
    if isinstance(item, InboundMessage):
        return f"message:{item.provider_message_id}"
    part = f":{item.segment.sequence}" if item.segment else ""
    return f"status:{item.provider_message_id}:{item.status.value}{part}"


def lane(item: Item) -> str:
    """What ``item`` is routed in arrival order with: its consumer's other messages, or its message's other
    status reports (see :class:`~smsconnector.store.models.InboxEntry`)."""
    if isinstance(item, InboundMessage):
        return f"message:{item.from_number}"
    return f"status:{item.provider_message_id}"[:250]


def encode(item: Item) -> dict[str, Any]:
    """``item`` as JSON-ready data (see :func:`decode`)."""
    segment = item.segment and {
        "reference": item.segment.reference, "total": item.segment.total, "sequence": item.segment.sequence,
        "payload": base64.b64encode(item.segment.payload).decode() if item.segment.payload is not None else None,
        "encoding": item.segment.encoding,
    }
    if isinstance(item, InboundMessage):
        return {
            "provider": item.provider, "provider_message_id": item.provider_message_id,
            "from_number": item.from_number, "to_number": item.to_number, "text": item.text,
            "media": [[m.url, m.content_type] for m in item.media], "segment": segment,
            "num_segments": item.num_segments, "provider_keyword": item.provider_keyword,
            "incomplete": item.incomplete, "received_at": item.received_at.isoformat(), "details": dict(item.details),
        }
    return {
        "provider": item.provider, "provider_message_id": item.provider_message_id, "status": item.status.value,
        "error_code": item.error_code, "error_message": item.error_message, "segment": segment,
        "occurred_at": item.occurred_at.isoformat(),
    }


def decode(kind: str, data: dict[str, Any]) -> Item:
    """The event :func:`encode` made ``data`` of."""
    raw = data["segment"]
    segment = raw and SegmentInfo(
        reference=raw["reference"], total=raw["total"], sequence=raw["sequence"], encoding=raw["encoding"],
        payload=base64.b64decode(raw["payload"]) if raw["payload"] is not None else None,
    )
    if kind == "message":
        return InboundMessage(
            provider=data["provider"], provider_message_id=data["provider_message_id"],
            from_number=data["from_number"], to_number=data["to_number"], text=data["text"],
            media=tuple(Media(url, content_type) for url, content_type in data["media"]), segment=segment,
            num_segments=data["num_segments"], provider_keyword=data["provider_keyword"],
            incomplete=data["incomplete"], received_at=datetime.fromisoformat(data["received_at"]),
            details=data["details"],
        )
    return StatusUpdate(
        provider=data["provider"], provider_message_id=data["provider_message_id"],
        status=DeliveryStatus(data["status"]), error_code=data["error_code"], error_message=data["error_message"],
        segment=segment, occurred_at=datetime.fromisoformat(data["occurred_at"]),
    )


class Inbox:
    """Puts webhooks' events into the inbox table, many webhooks to a statement and a commit."""

    def __init__(self, store: Store, *, timeout: float | None = None) -> None:
        """``timeout``: seconds :meth:`put` waits for its commit."""
        self._store = store
        # PostgreSQL commits in parallel, so a few inserts may be under way at once there.
        self._batcher: Batcher[list[dict[str, Any]], list[int | None]] = Batcher(
            self._insert, concurrency=4 if store.dialect == "postgresql" else 1, timeout=timeout)
        #: each column's conversion to what the database stores, as SQLAlchemy does it (SQLite's plain SQL path)
        dialect = store.engine.dialect
        self._sqlite_values: list[Callable[[Any], Any] | None] = [
            InboxEntry.__table__.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in COLUMNS]

    async def put(self, provider: str, items: Sequence[Item]) -> list[int | None]:
        """Commit ``items``; for each, its inbox id, or ``None`` when the provider sent it before.

        :raises TimeoutError: not committed within the inbox's ``timeout`` (they may still be, later: a retry of
            them is then recognised).
        """
        if not items:
            return []
        now = utcnow()
        rows = [{"provider": provider, "key": key(item), "kind": "message" if isinstance(item, InboundMessage)
                 else "status", "lane": lane(item), "payload": encode(item), "received_at": now, "attempts": 0}
                for item in items]
        return await self._batcher.submit(rows)

    async def _insert(self, batch: list[list[dict[str, Any]]]) -> list[list[int | None]]:
        """One transaction and one statement for every row of every waiting webhook.

        Tried once more, on a new connection, when the database dropped the one it had (a restart or a
        failover after the pool's check): the insert is idempotent, so if the commit did land before the drop,
        the second try inserts nothing and the entries, already stored, are answered as retries.
        """
        try:
            return await self._insert_once(batch)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return await self._insert_once(batch)

    async def _insert_once(self, batch: list[list[dict[str, Any]]]) -> list[list[int | None]]:
        rows = [row for rows in batch for row in rows]
        if self._store.dialect == "sqlite":
            values = [[value if convert is None else convert(value) for convert, value in
                       zip(self._sqlite_values, (row[name] for name in COLUMNS), strict=True)] for row in rows]
            returned = await self._store.sqlite_transaction(functools.partial(_insert_sqlite, values))
        else:
            async with self._store.engine.begin() as connection:
                returned = await bulk.insert_new(connection, InboxEntry.__table__, rows, conflict=("provider", "key"),
                                                    returning=("id", "provider", "key"))
                if returned:  # wake every process's inbox processor once this commits
                    await connection.execute(notify.INBOX_NOTIFY)
        inserted = {(provider, k): id_ for id_, provider, k in returned}
        # The same event twice in one batch (a retry racing its original) is inserted once: the first wins.
        ids: list[list[int | None]] = []
        for webhook_rows in batch:
            ids.append([inserted.pop((row["provider"], row["key"]), None) for row in webhook_rows])
        return ids

    @property
    def writing(self) -> bool:
        """Whether webhooks' writes are under way or waiting."""
        return self._batcher.busy

    async def written(self) -> None:
        """Return once no webhook's write is under way or waiting."""
        await self._batcher.idle()

    async def close(self) -> None:
        await self._batcher.close()


def _insert_sqlite(values: list[list[Any]], connection: sqlite3.Connection) -> list[tuple[int, str, str]]:
    """The inbox's insert, for SQLite as plain SQL over already converted values (run in
    the driver's thread)."""
    returned: list[tuple[int, str, str]] = []
    for start in range(0, len(values), SQLITE_ROWS_PER_STATEMENT):
        chunk = values[start:start + SQLITE_ROWS_PER_STATEMENT]
        returned += connection.execute(_sqlite_sql(len(chunk)), [v for row in chunk for v in row]).fetchall()
    return returned


@functools.lru_cache(maxsize=64)
def _sqlite_sql(rows: int) -> str:
    row = f"({', '.join('?' * len(COLUMNS))})"
    columns = ", ".join(f'"{name}"' for name in COLUMNS)  # quoted: "key" is an SQL keyword
    return (f'INSERT INTO {InboxEntry.__tablename__} ({columns}) VALUES {", ".join([row] * rows)} '
            'ON CONFLICT (provider, "key") DO NOTHING RETURNING id, provider, "key"')
