"""The inbox processor: routes what webhooks put in the inbox, in arrival order, as soon as it is committed.

Every replica (and every ``smsconnector worker``) runs one. It takes a batch of the oldest unprocessed
entries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so processes never take the same entry), routes it with a
handful of statements for the whole batch (:func:`.inbound.accept_all`: segment policy, dedupe, route, store
for consumer messages; the status rules for reports) and marks the entries processed, all in one transaction,
so an entry is routed exactly once or not at all. Entries left by a crash are simply still there when the host
starts again.

**Arrival order.** Each entry has a lane: a consumer's messages share one, a message's status reports another.
An entry is taken only when no earlier entry of its lane is left outside the batch (held by another process's
batch, or waiting for a retry), so a lane is routed in arrival order whichever process routes it, and a
consumer is never routed by two processes at once. Other processes take the other lanes meanwhile: the more
workers, the more batches at once.

**Woken, not polling.** A webhook's commit wakes the processor of its own process; on PostgreSQL it also
notifies every other process (:mod:`.store.notify`). It still looks every so often on its own, for retries
that came due and for a notification it missed.

**Webhooks first.** Answering providers quickly is what keeps a burst from turning into a storm of
retries. On SQLite a routing transaction holds the one connection, and its statements run on the event loop,
so while it lasts no webhook is stored, or even read. Two rules keep it short and well placed:

- A routing transaction stops taking entries once it has run for :data:`SLICE_SECONDS` (it routes at least
  one), whatever ``[inbound] batch_size`` allows: a webhook that arrives meanwhile waits about that long at
  most. It routes its entries in chunks sized by how long entries took lately, so a routing chain that has
  just become slow can overrun one slice, never two.
- While webhooks come in (stored in the last moment, or waiting to be), the processor routes a slice only once
  their writes pause: it lets the loop run for a moment, so webhooks that arrived during the last transaction
  reach the store, then looks whether a write is under way or waiting, or the loop came round late; if so,
  it waits for the writes to finish and looks again. If they have not paused within
  :data:`GIVE_WAY_SECONDS`, it takes a single entry, leaving the webhooks the loop and the store.

At a steady rate the host keeps up with, the writes pause often and routing follows within milliseconds;
under a burst it trickles. A burst is absorbed by the inbox and routed as soon as it ebbs
(``smsconnector_inbox_pending`` shows the backlog); a sustained rate above what one host routes calls for more
replicas on PostgreSQL.

**Failures.** A batch that fails is retried an entry at a time, so one bad entry never holds up the rest.
An entry that fails alone is tried again later with a growing delay; after ``[inbound] max_attempts`` (or at
once, for an error the entry itself caused) it is set aside: kept, with the error, and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, exists, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from . import inbound, status
from .errors import RequestRejected
from .inbox import decode
from .messages import InboundMessage, utcnow
from .store import bulk
from .store.models import InboxEntry

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger(__name__)

#: webhooks stored within this many seconds mean webhooks are coming in
BUSY_WINDOW = 0.1
#: entries taken at a time between webhooks' writes: enough to keep up with a steady few hundred a second
SLICE = 16
#: on SQLite, how long a routing transaction keeps taking entries (so how long a webhook may wait behind it);
#: shorter ones pay a transaction's fixed cost too often to keep up with a steady rate the host can take
SLICE_SECONDS = 0.05
#: how long the loop is left to the webhooks before the processor looks whether their writes have paused
BREATHE_SECONDS = 0.002
#: the event loop coming round later than this means webhooks are queueing for it
CONTENDED_SECONDS = 0.002
#: the longest the processor waits for the webhooks' writes to pause; if they have not, or the loop is late,
#: it takes a single entry (so at least 1/this entries a second are routed under any load). Only a saturating
#: burst reaches it, and there a lone entry pays a whole routing transaction (2-8 ms of CPU) and holds the store
#: meanwhile: at 20 a second that floor cost the webhooks about a twentieth of their rate, and at 5 a second
#: still a few points of it (interleaved bursts on uvloop); at 1 a second the burst keeps the host, and the
#: catch-up after it is what routes the backlog either way
GIVE_WAY_SECONDS = 1.0
#: how often it looks for entries it was not told about (retries that came due, another replica's leftovers);
#: a worker process looks every ``[worker] poll_interval_seconds`` (on PostgreSQL, woken by every commit besides)
POLL_SECONDS = 1.0
#: how often a webhook answered once routed looks again for entries another replica holds
ROUTED_RECHECK_SECONDS = 0.05
#: the delay before retrying a failed entry, doubled with each attempt, at most ``RETRY_MAX``
RETRY_BASE, RETRY_MAX = timedelta(seconds=1), timedelta(minutes=5)

_INBOX = InboxEntry.__table__  # type: ignore[attr-defined]
#: what makes an entry due: not processed, and not waiting for a retry
_IS_DUE = (_INBOX.c.processed_at.is_(None), or_(_INBOX.c.retry_at.is_(None), _INBOX.c.retry_at <= bindparam("now")))
#: the oldest due entries no other transaction holds, locked (built once: building it per pass cost as much as
#: running it)
_TAKEN = (select(_INBOX.c.id).where(*_IS_DUE).order_by(_INBOX.c.id).limit(bindparam("limit"))
          .with_for_update(skip_locked=True).cte("taken"))
_EARLIER = _INBOX.alias("earlier")
#: of those, the ones whose lane has no earlier entry left to route outside them (held by another transaction, or
#: waiting for a retry): a lane's entries are routed in arrival order, whoever routes them
_CLAIM = (
    select(InboxEntry).join(_TAKEN, _TAKEN.c.id == InboxEntry.id)
    .where(~exists().where(_EARLIER.c.lane == InboxEntry.lane, _EARLIER.c.id < InboxEntry.id,
                           _EARLIER.c.processed_at.is_(None), _EARLIER.c.id.not_in(select(_TAKEN.c.id))))
    .order_by(InboxEntry.id)
)
_CLAIMABLE_IDS = _CLAIM.with_only_columns(InboxEntry.id)
_LOCK = (select(InboxEntry).where(InboxEntry.id == bindparam("entry_id"), InboxEntry.processed_at.is_(None))
         .with_for_update(skip_locked=True))


@functools.cache
def _mark_processed_statement(dialect: str) -> Any:
    return (update(_INBOX).where(bulk.among(_INBOX, ("id",), dialect))
            .values(processed_at=bindparam("now"), payload=None, error=None, retry_at=None))


class InboxProcessor:
    """See the module docstring."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._wake = asyncio.Event()
        self._last_write = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._poll_seconds = POLL_SECONDS
        self._entry_seconds = 0.001  #: on SQLite, how long routing an entry has taken lately (a moving average)

    # -- what the webhook path calls -------------------------------------------------------------------

    def stored(self, *, new: bool) -> None:
        """A webhook's entries were committed (``new``: not all of them retries): route them, giving way to
        webhooks while they keep coming."""
        self._last_write = asyncio.get_running_loop().time()
        if new:
            self._wake.set()

    def wake(self) -> None:
        """Another process committed entries (PostgreSQL's NOTIFY): look for due entries now."""
        self._wake.set()

    async def routed(self, entry_ids: list[int]) -> None:
        """Return once these entries were processed (or set aside): route what is due, oldest first, up to them.

        For ``acknowledge = "routed"``. The caller routes in arrival order alongside the background processor
        (on SQLite their transactions take turns; on PostgreSQL each skips what the other holds), so this
        works with or without the processor running; entries held by another replica are waited for.
        """
        waiting = set(entry_ids)
        while waiting:
            taken = await self.process(self._app.config.inbound.batch_size)
            async with self._app.store.session() as session:
                stmt = select(InboxEntry.id).where(InboxEntry.id.in_(waiting), InboxEntry.processed_at.is_not(None))
                waiting -= set((await session.exec(stmt)).scalars().all())
            if waiting and not taken:
                await asyncio.sleep(ROUTED_RECHECK_SECONDS)  # another replica has them, or they failed and wait

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self, *, poll_seconds: float | None = None) -> None:
        """Route in the background, looking for entries nobody told it about every ``poll_seconds`` (default:
        :data:`POLL_SECONDS`)."""
        self._poll_seconds = poll_seconds or POLL_SECONDS
        self._task = asyncio.create_task(self._run(), name="smsconnector-inbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while await self.process(await self._batch_size()):
                    pass
            except Exception:
                log.exception("routing the inbox failed; trying again")
                await asyncio.sleep(POLL_SECONDS)

    async def _batch_size(self) -> int:
        """How many entries to take next (see "Webhooks first" above). Always a whole batch when webhooks
        wait for routing to be answered (``acknowledge = "routed"``): then routing is their answer."""
        settings = self._app.config.inbound
        loop = asyncio.get_running_loop()
        # Webhooks waiting to be written count as coming in: while a routing transaction holds SQLite's one
        # connection none is stored, so the last write alone would soon say the burst is over, and slice after
        # slice would take the store from the webhooks waiting for it.
        quiet = loop.time() - self._last_write >= BUSY_WINDOW and not self._app.inbox.writing
        if settings.acknowledge != "stored" or quiet:
            return settings.batch_size
        give_up = loop.time() + GIVE_WAY_SECONDS
        postgres = self._app.store.dialect == "postgresql"
        while True:
            asked = time.perf_counter()  # not loop.time(): uvloop's counts whole milliseconds, half of this wait
            # A webhook that arrived during the last transaction takes several turns of the loop to reach the
            # store. And the writes stop for an instant between batches even under a saturating burst: a slice
            # taken then held up the next webhooks for its whole length, and one after the other, they halved
            # the rate webhooks were answered at. So a pause counts only if it outlasts this breath.
            await asyncio.sleep(BREATHE_SECONDS)
            lagging = time.perf_counter() - asked >= BREATHE_SECONDS + CONTENDED_SECONDS
            # On PostgreSQL a routing transaction holds none of the webhooks' connections: only the loop is
            # shared, so only its lag says to wait. Waiting for the writes to pause as well left routing seconds
            # behind at a steady 300 webhooks a second (p50 2.7 s), whose writes are nearly always under way.
            if not lagging and (postgres or not self._app.inbox.writing):
                return min(SLICE, settings.batch_size)
            if loop.time() >= give_up:
                return 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(give_up):
                    await self._app.inbox.written()

    # -- the work --------------------------------------------------------------------------------------

    async def process(self, limit: int) -> int:
        """Route up to ``limit`` due entries in one transaction, with a handful of statements for all of them;
        how many were taken (0: none are due).

        The entries are taken ``FOR UPDATE SKIP LOCKED`` (on PostgreSQL), so processes never take the same one,
        and only where their lane (a consumer's messages, a message's status reports) has no earlier entry left
        outside them, so each lane is routed in arrival order whichever process routes it. On SQLite the
        transaction holds the one connection, so it routes them in chunks of as many as fit in the time left of
        :data:`SLICE_SECONDS` (at the rate entries took lately) and leaves the rest once the slice is used up.
        """
        if self._app.store.dialect == "sqlite":
            # Read only what is likely to fit: decoding entries costs too.
            limit = max(1, min(limit, round(SLICE_SECONDS / self._entry_seconds)))
        # Timed with perf_counter: uvloop's loop.time() counts whole milliseconds, the size of an entry's routing.
        try:
            async with self._app.store.transaction() as session:
                until = time.perf_counter() + SLICE_SECONDS
                entries = await _claim(session, limit)
                if not entries:
                    return 0
                outcomes: list[tuple[str, str, str]] = []
                while len(outcomes) < len(entries):
                    left = until - time.perf_counter()
                    if self._app.store.dialect == "sqlite":
                        if outcomes and left < self._entry_seconds:
                            break  # the rest wait for the next transaction, so webhooks wait no longer
                        chunk = entries[len(outcomes):len(outcomes) + max(1, int(left / self._entry_seconds))]
                    else:
                        chunk = entries
                    started = time.perf_counter()
                    outcomes += await self._route(session, chunk)
                    self._took((time.perf_counter() - started) / len(chunk))
                await _mark_processed(session, [e.id for e in entries[:len(outcomes)]])
        except Exception:
            # One bad entry fails the batch: each is routed again in a transaction of its own, so it fails alone.
            ids = await self._claimable_ids(limit)
            if not ids:
                raise
            for entry_id in ids:
                await self._process_alone(entry_id)
            return len(ids)
        self._count(outcomes)
        return len(outcomes)

    def _took(self, seconds: float) -> None:
        """Learn how long routing an entry takes: at once when it got slower (a transaction that overran its
        slice must not be followed by another), gradually when faster."""
        if seconds > self._entry_seconds:
            self._entry_seconds = seconds
        else:
            self._entry_seconds += (seconds - self._entry_seconds) / 4

    async def _process_alone(self, entry_id: int) -> bool:
        """Route one entry in its own transaction; false when it is processed already or another holds it."""
        try:
            async with self._app.store.transaction() as session:
                entry = await _lock(session, entry_id)
                if entry is None:
                    return False
                outcomes = await self._route(session, [entry])
                await _mark_processed(session, [entry_id])
        except Exception as exc:
            await self._failed(entry_id, exc)
        else:
            self._count(outcomes)
        return True

    async def _route(self, session: AsyncSession, entries: list[InboxEntry]) -> list[tuple[str, str, str]]:
        """Route ``entries`` (in arrival order) in ``session``: the consumer messages together, through
        :func:`.inbound.accept_all`; each status report through the status rules. Their outcomes, for the metrics."""
        items = []
        for entry in entries:
            assert entry.payload is not None
            items.append(decode(entry.kind, entry.payload))
        messages = [item for item in items if isinstance(item, InboundMessage)]
        outcomes = iter(await inbound.accept_all(self._app, session, messages))
        counted = []
        for item in items:
            if isinstance(item, InboundMessage):
                counted.append(("inbound", item.provider, next(outcomes).value))
            else:
                await status.apply(self._app, session, item)
                counted.append(("status", item.provider, item.status.value))
        return counted

    async def _failed(self, entry_id: int, exc: Exception) -> None:
        """Record a failure: due again later, or set aside for good."""
        reason = _reason(exc)
        async with self._app.store.transaction() as session:
            entry = await session.get(InboxEntry, entry_id)
            if entry is None:
                return
            entry.attempts += 1
            entry.error = reason
            now = utcnow()
            if isinstance(exc, RequestRejected) or entry.attempts >= self._app.config.inbound.max_attempts:
                entry.processed_at, entry.retry_at = now, None
                log.error("inbox entry %s (%s) set aside after %s attempt(s): %s", entry_id, entry.provider,
                          entry.attempts, reason)
                self._app.metrics.inbox_set_aside.labels(entry.provider).inc()
            else:
                entry.retry_at = now + min(RETRY_MAX, RETRY_BASE * 2 ** (entry.attempts - 1))
                log.warning("inbox entry %s (%s) failed (attempt %s), retrying at %s: %s", entry_id, entry.provider,
                            entry.attempts, entry.retry_at.isoformat(timespec="seconds"), reason)

    async def _claimable_ids(self, limit: int) -> list[int]:
        """The ids :func:`_claim` would take now, without taking them."""
        async with self._app.store.session() as session:
            return list((await session.exec(_CLAIMABLE_IDS, params={"now": utcnow(), "limit": limit})).scalars())

    def _count(self, outcomes: list[tuple[str, str, str]]) -> None:
        metrics = self._app.metrics
        for kind, provider, outcome in outcomes:
            (metrics.inbound if kind == "inbound" else metrics.statuses).labels(provider, outcome).inc()

    async def prune(self) -> int:
        """Forget entries processed longer ago than ``[inbound] retention_hours``; how many (set-aside ones stay)."""
        before = utcnow() - timedelta(hours=self._app.config.inbound.retention_hours)
        table = InboxEntry.__table__
        async with self._app.store.transaction() as session:
            connection = await session.connection()
            result = await connection.execute(
                table.delete().where(table.c.processed_at < before, table.c.payload.is_(None)))
            return int(result.rowcount or 0)

    async def pending(self) -> int:
        """Entries not yet processed (the backlog, for ``/metrics``)."""
        async with self._app.store.session() as session:
            stmt = select(func.count()).select_from(InboxEntry).where(InboxEntry.processed_at.is_(None))
            return int((await session.exec(stmt)).scalar_one())


def _reason(exc: Exception) -> str:
    """What went wrong, for the entry's record and the log: the type and the message, never the payload (a
    consumer's text). A database error is told in the driver's own first line: SQLAlchemy's message adds the
    statement and its parameters, which carry the text."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:2000]


async def _claim(session: AsyncSession, limit: int) -> list[InboxEntry]:
    return list((await session.exec(_CLAIM, params={"now": utcnow(), "limit": limit})).scalars().all())


async def _lock(session: AsyncSession, entry_id: int) -> InboxEntry | None:
    return (await session.exec(_LOCK, params={"entry_id": entry_id})).scalars().first()


async def _mark_processed(session: AsyncSession, entry_ids: list[int | None]) -> None:
    if entry_ids:
        connection = await session.connection()
        params = bulk.among_params(connection, _INBOX, [{"id": i} for i in entry_ids])
        await connection.execute(_mark_processed_statement(connection.dialect.name), {**params, "now": utcnow()})
