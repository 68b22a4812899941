"""Batching: items submitted at the same moment are written by one call, in one transaction.

A commit costs an fsync on SQLite and a round trip on PostgreSQL, and a statement costs more in the
driver than in the database, so writing each webhook's events on its own caps the host at a few hundred a
second. Here each submitted item is queued; a single worker hands every item waiting at that moment to
``flush`` at once and only then answers each submitter -- so "persisted before acknowledged" still holds
for every one of them. If a batch fails, its items are flushed again one at a time, so one bad item never
takes the others with it (an item may therefore be flushed twice: ``flush`` must be a transaction).

A submitter may be given a deadline (``timeout``). Submitters arrive in the order of their deadlines, so one
timer serves them all, armed for the earliest: a timer per submitter (``asyncio.timeout``) cost a webhook about
7 us on uvloop, half of what parsing its form does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

if TYPE_CHECKING:
    from .db import Store

#: how early a timer may fire: the coarsest event loop clock in use (uvloop's, in milliseconds)
TIMER_RESOLUTION = 0.001

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Hands submitted items to ``flush`` in batches; ``flush`` returns one result per item, in order.

    A worker runs only while items wait, so nothing is left running between bursts (or in an event loop
    that ends, as in tests that call the app without its lifespan).
    """

    def __init__(self, flush: Callable[[list[T]], Awaitable[list[R]]], *, max_batch: int = 256,
                 concurrency: int = 1, timeout: float | None = None) -> None:
        """``concurrency``: flushes that may run at once (more than one only where the database commits
        transactions in parallel: PostgreSQL, not SQLite). ``timeout``: seconds a submitter waits for its
        result before :meth:`submit` raises :class:`TimeoutError` (its item may still be written later)."""
        self._flush = flush
        self._max_batch = max_batch
        self._concurrency = concurrency
        self._waiting: collections.deque[tuple[T, asyncio.Future[R]]] = collections.deque()
        self._flushing: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._timeout = timeout
        #: (deadline, future) of the submitters still waiting, earliest first; some may be done already
        self._deadlines: collections.deque[tuple[float, asyncio.Future[R]]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    @property
    def busy(self) -> bool:
        """Whether items wait for a flush or are being flushed."""
        return bool(self._waiting or self._flushing)

    async def idle(self) -> None:
        """Return once no item waits or is being flushed."""
        await self._idle.wait()

    async def submit(self, item: T) -> R:
        """Flush ``item`` with whatever else is waiting; its result once that flush is done.

        :raises TimeoutError: no result within the batcher's ``timeout``.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if self._timeout is not None:
            self._set_deadline(loop, future)
        self._waiting.append((item, future))
        self._idle.clear()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="smsconnector-batcher")
        # A submitter that stops waiting (timeout, disconnect) cancels only this future: the flush runs in its
        # own task and settles the futures still waited for, so a shield would only add a future per item.
        return await future

    def _set_deadline(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[R]) -> None:
        assert self._timeout is not None
        deadlines = self._deadlines
        if self._timer_loop is not loop:  # the first deadline, or a new event loop: the last one ended (tests)
            deadlines.clear()
            self._timer, self._timer_loop = None, loop
        while deadlines and deadlines[0][1].done():
            deadlines.popleft()
        deadlines.append((loop.time() + self._timeout, future))
        if self._timer is None:
            self._timer = loop.call_at(deadlines[0][0], self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the submitters whose deadline has come, and wait for the next one."""
        self._timer = None
        # A timer may fire up to a clock tick early (uvloop counts whole milliseconds).
        now = loop.time() + TIMER_RESOLUTION
        deadlines = self._deadlines
        while deadlines and (deadlines[0][1].done() or deadlines[0][0] <= now):
            _settle(deadlines.popleft()[1], exception=TimeoutError())
        if deadlines:
            self._timer = loop.call_at(deadlines[0][0], self._expire, loop)

    async def _run(self) -> None:
        while self._waiting:
            while len(self._flushing) >= self._concurrency:
                await asyncio.wait(self._flushing, return_when=asyncio.FIRST_COMPLETED)
            # Let the submitters that became ready with the first one join: woken tasks resume one by one,
            # and taking the batch at once would flush them one at a time.
            await asyncio.sleep(0)
            batch = [self._waiting.popleft() for _ in range(min(self._max_batch, len(self._waiting)))]
            task = asyncio.create_task(self._flush_batch(batch))
            self._flushing.add(task)
            task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        if not self.busy:
            self._idle.set()

    async def _flush_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exception=exc)
                return
            for one in batch:  # isolate the failing item; the others still go in
                await self._flush_batch([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)

    async def close(self) -> None:
        """Stop taking items; flushes under way finish first."""
        await asyncio.gather(*self._flushing, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None


def in_transaction(store: Store, work: Callable[[AsyncSession, list[T]], Awaitable[list[R]]]
                   ) -> Callable[[list[T]], Awaitable[list[R]]]:
    """A ``flush`` that runs ``work(session, items)`` in one transaction of ``store`` (its events published
    once it commits)."""

    async def flush(items: list[T]) -> list[R]:
        async with store.transaction() as session:
            return await work(session, items)

    return flush


def _settle(future: asyncio.Future[Any], *, result: Any = None, exception: BaseException | None = None) -> None:
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
