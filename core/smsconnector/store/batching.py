"""Group commit: concurrent writes share one transaction and one commit.

SQLite has one writer and a commit costs an fsync, so committing each webhook on its own caps the host at
a few hundred messages a second. Here each write is queued; a single worker runs every write waiting at
that moment, in order, in one transaction, commits once, and only then answers each caller -- so
"persist before acknowledging" still holds for every one of them. If any write in a batch fails, the batch
is rolled back and its writes are run again one transaction each, so one bad write never takes others
with it (a write may therefore run twice: keep its side effects inside the session).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

if TYPE_CHECKING:
    from .db import Store

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]


class GroupCommit:
    """Batches writes into shared transactions; one worker per store."""

    def __init__(self, store: Store, max_batch: int = 128) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Work, asyncio.Future[Any]]] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in a transaction; returns once that transaction committed."""
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run(), name="smsconnector-group-commit")
        assert self._queue is not None
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((work, future))
        # Shielded: a caller that stops waiting (timeout, disconnect) must not cancel a write shared by others.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            # Let the callers that became ready with this one enqueue too: woken callers resume one by one,
            # and draining at once would commit them one at a time.
            await asyncio.sleep(0)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        try:
            async with self._store.transaction() as session:
                results = [await work(session) for work, _ in batch]
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exception=exc)
                return
            for item in batch:  # isolate the failing write; the others still commit
                await self._commit([item])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None


def _settle(future: asyncio.Future[Any], *, result: Any = None, exception: BaseException | None = None) -> None:
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
