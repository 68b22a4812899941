"""The inbox processor: routes what webhooks put in the inbox, in arrival order, as soon as it is committed.

Every replica runs one. It takes the oldest unprocessed entries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so replicas never take the same entry), runs each through the pipeline -- segment policy, dedupe, route,
store for a consumer message; the status rules for a report -- and marks them processed, all in one
transaction, so an entry is routed exactly once or not at all. Entries left by a crash are simply still
there when the host starts again.

**Webhooks first.** Answering providers quickly is what keeps a burst from turning into a storm of
retries. On SQLite a routing transaction holds the one connection, and its statements run on the event loop,
so while it lasts no webhook is stored, or even read. Two rules keep it short and well placed:

- A routing transaction stops taking entries once it has run for :data:`SLICE_SECONDS` (it routes at least
  one), whatever ``[inbound] batch_size`` allows: a webhook that arrives meanwhile waits at most that long.
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
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, func, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from . import inbound, status
from .errors import RequestRejected
from .inbox import decode
from .messages import InboundMessage, utcnow
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
#: a worker process, which is told about none, looks every ``[worker] poll_interval_seconds``
POLL_SECONDS = 1.0
#: on PostgreSQL, entries of different consumers routed at once (each holds a pooled connection meanwhile)
LANES = 8
#: how often a webhook answered once routed looks again for entries another replica holds
ROUTED_RECHECK_SECONDS = 0.05
#: the delay before retrying a failed entry, doubled with each attempt, at most ``RETRY_MAX``
RETRY_BASE, RETRY_MAX = timedelta(seconds=1), timedelta(minutes=5)

_INBOX = InboxEntry.__table__  # type: ignore[attr-defined]
#: what makes an entry due: not processed, and not waiting for a retry
_IS_DUE = (_INBOX.c.processed_at.is_(None), or_(_INBOX.c.retry_at.is_(None), _INBOX.c.retry_at <= bindparam("now")))
#: the due entries' ids, oldest first, each with its lane: the consumer of a message, the message of a status
_DUE_LANES = (
    select(_INBOX.c.id, (_INBOX.c.kind + ":" + func.coalesce(_INBOX.c.payload["from_number"].as_string(),
                                                             _INBOX.c.payload["provider_message_id"].as_string())))
    .where(*_IS_DUE).order_by(_INBOX.c.id).limit(bindparam("limit"))
)
#: the due entries, oldest first (built once: building it per transaction cost as much as running it)
_DUE = select(InboxEntry).where(*_IS_DUE).order_by(InboxEntry.id).limit(bindparam("limit"))
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)
_LOCK = (select(InboxEntry).where(InboxEntry.id == bindparam("entry_id"), InboxEntry.processed_at.is_(None))
         .with_for_update(skip_locked=True))
_MARK_PROCESSED = (
    update(_INBOX).where(_INBOX.c.id == bindparam("entry_id"))
    .values(processed_at=bindparam("now"), payload=None, error=None, retry_at=None)
)


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
        while True:
            asked = time.perf_counter()  # not loop.time(): uvloop's counts whole milliseconds, half of this wait
            # A webhook that arrived during the last transaction takes several turns of the loop to reach the
            # store. And the writes stop for an instant between batches even under a saturating burst: a slice
            # taken then held up the next webhooks for its whole length, and one after the other, they halved
            # the rate webhooks were answered at. So a pause counts only if it outlasts this breath.
            await asyncio.sleep(BREATHE_SECONDS)
            lagging = time.perf_counter() - asked >= BREATHE_SECONDS + CONTENDED_SECONDS
            if not lagging and not self._app.inbox.writing:
                return min(SLICE, settings.batch_size)
            if loop.time() >= give_up:
                return 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(give_up):
                    await self._app.inbox.written()

    # -- the work --------------------------------------------------------------------------------------

    async def process(self, limit: int) -> int:
        """Route up to ``limit`` due entries; how many were taken (0: none are due).

        On SQLite they share one transaction (one commit). On PostgreSQL each has its own: routing two
        consumers' messages in one transaction could lock one's conversation before the other's agent,
        breaking the lock order that keeps replicas from deadlocking (see :mod:`.assignment`). There, each
        transaction waits mostly on the server, so entries are routed in lanes, one per consumer (or, for
        a status report, per message), up to :data:`LANES` at once: a consumer's entries one after the
        other in arrival order, different consumers' alongside, as replicas would.
        """
        if self._app.store.dialect != "postgresql":
            return await self._process_batch(limit)
        lanes: dict[str, list[int]] = {}
        async with self._app.store.session() as session:
            for entry_id, lane in (await session.exec(_DUE_LANES, params={"now": utcnow(), "limit": limit})).all():
                lanes.setdefault(lane, []).append(entry_id)
        free = asyncio.Semaphore(LANES)

        async def route_lane(entry_ids: list[int]) -> int:
            async with free:
                taken = 0
                for entry_id in entry_ids:
                    if not await self._process_alone(entry_id):
                        break  # someone else holds it: the consumer's later entries wait for it
                    taken += 1
                return taken

        results = await asyncio.gather(*map(route_lane, lanes.values()), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(results)  # type: ignore[arg-type]

    async def _process_batch(self, limit: int) -> int:
        """Route due entries in one transaction until ``limit`` or :data:`SLICE_SECONDS` is reached."""
        # Timed with perf_counter: uvloop's loop.time() counts whole milliseconds, the size of an entry's routing.
        try:
            async with self._app.store.transaction() as session:
                started = time.perf_counter()
                until = started + SLICE_SECONDS
                # Read only what is likely to fit: decoding entries costs too.
                fits = max(1, min(limit, round(SLICE_SECONDS / self._entry_seconds)))
                entries, outcomes = await _due(session, fits), []
                for entry in entries:
                    outcomes.append(await self._route(session, entry))
                    if time.perf_counter() >= until:
                        break
                if outcomes:
                    took = (time.perf_counter() - started) / len(outcomes)
                    self._entry_seconds += (took - self._entry_seconds) / 4
                await _mark_processed(session, [e.id for e in entries[:len(outcomes)]])
        except Exception:
            ids = await self._due_ids(limit)
            if not ids:
                raise
            for entry_id in ids:
                await self._process_alone(entry_id)
            return len(ids)
        self._count(outcomes)
        return len(outcomes)

    async def _process_alone(self, entry_id: int) -> bool:
        """Route one entry in its own transaction; false when it is processed already or another holds it."""
        try:
            async with self._app.store.transaction() as session:
                entry = await _lock(session, entry_id)
                if entry is None:
                    return False
                outcome = await self._route(session, entry)
                await _mark_processed(session, [entry_id])
        except Exception as exc:
            await self._failed(entry_id, exc)
        else:
            self._count([outcome])
        return True

    async def _route(self, session: AsyncSession, entry: InboxEntry) -> tuple[str, str, str]:
        assert entry.payload is not None
        item = decode(entry.kind, entry.payload)
        if isinstance(item, InboundMessage):
            return "inbound", item.provider, (await inbound.accept(self._app, session, item)).value
        await status.apply(self._app, session, item)
        return "status", item.provider, item.status.value

    async def _failed(self, entry_id: int, exc: Exception) -> None:
        """Record a failure: due again later, or set aside for good."""
        # The type and the message name the problem; the payload (a consumer's text) stays out of the log.
        reason = f"{type(exc).__name__}: {exc}"[:2000]
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

    async def _due_ids(self, limit: int) -> list[int]:
        async with self._app.store.session() as session:
            return [e.id for e in await _due(session, limit, lock=False)]

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


async def _due(session: AsyncSession, limit: int, *, lock: bool = True) -> list[InboxEntry]:
    stmt = _DUE_LOCKED if lock else _DUE
    return list((await session.exec(stmt, params={"now": utcnow(), "limit": limit})).scalars().all())


async def _lock(session: AsyncSession, entry_id: int) -> InboxEntry | None:
    return (await session.exec(_LOCK, params={"entry_id": entry_id})).scalars().first()


async def _mark_processed(session: AsyncSession, entry_ids: list[int | None]) -> None:
    if entry_ids:
        now = utcnow()
        connection = await session.connection()
        await connection.execute(_MARK_PROCESSED, [{"entry_id": i, "now": now} for i in entry_ids])
