"""Things that happened, published to listeners in this process once the transaction that made them commits.

Write code calls :func:`emit` inside a transaction; :class:`~smsconnector.store.Store` hands the events to
the bus after the commit, so no listener ever hears of something that was rolled back.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from .messages import utcnow


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  #: e.g. ``message.received``, ``message.status``, ``outbox.queued``, ``conversation.assigned``
    data: dict[str, Any]
    at: datetime = field(default_factory=utcnow)


def emit(session: AsyncSession, kind: str, **data: Any) -> None:
    """Publish an event when ``session``'s transaction commits (and never if it rolls back)."""
    session.info.setdefault("events", []).append(Event(kind, data))


Listener = Callable[[Event], None]


class EventBus:
    """In-process fan-out; listeners are plain callables and must not block."""

    def __init__(self) -> None:
        self._listeners: dict[int, Listener] = {}
        self._ids = itertools.count()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns the function that removes it."""
        key = next(self._ids)
        self._listeners[key] = listener
        return lambda: self._listeners.pop(key, None)  # type: ignore[return-value]

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            for listener in list(self._listeners.values()):
                listener(event)

    def queue(self, kinds: frozenset[str] | None = None) -> tuple[asyncio.Queue[Event], Callable[[], None]]:
        """A queue receiving the events of ``kinds`` (all when ``None``), and its unsubscribe function."""
        q: asyncio.Queue[Event] = asyncio.Queue()

        def put(event: Event) -> None:
            if kinds is None or event.kind in kinds:
                q.put_nowait(event)

        return q, self.subscribe(put)
