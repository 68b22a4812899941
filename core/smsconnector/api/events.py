"""``GET /api/events``: the live event stream (Server-Sent Events) for agent clients.

An agent receives the events that concern them (a conversation assigned to them or taken away, a consumer
message or a delivery status in a conversation they serve); an administrator receives all. A client that
reconnects with ``Last-Event-ID`` first gets what it missed (kept for :data:`smsconnector.live.RETENTION`); a
``Last-Event-ID`` that is not an id the stream could have handed out is refused with 400.

Each frame is ``event: <kind>`` with ``data:`` a JSON object (``conversation_id``, ``agent_id`` and the
event's own fields). A consumer message comes with its text, as consecutive ``message.received`` frames of at
most 5000 characters (``piece``/``pieces``); only the last frame of an event carries its ``id``, so a
client cut off in the middle of a long message gets all of it again.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..errors import Malformed
from ..live import Subscription
from ..store.models import EventRecord, Message
from .endpoints import MAX_ID, Call, endpoint
from .views import pieces

KEEPALIVE_SECONDS = 15.0
#: how long a browser's EventSource waits before reconnecting
RETRY_MILLISECONDS = 2000


@endpoint("GET", "/api/events", roles=("admin", "agent"), tag="events", media_type="text/event-stream",
          errors=(400,), summary="Live events as Server-Sent Events; send Last-Event-ID to catch up after a reconnect")
async def stream(call: Call) -> StreamingResponse:
    """Subscribe the caller and stream their events, after what they missed since ``Last-Event-ID``."""
    live = call.app.live
    agent_id = None if call.admin else call.principal.agent_id
    last = last_event_id(call.request.headers.get("last-event-id", ""))  # refused before anything is registered
    # Subscribe before replaying, so nothing committed in between falls through the gap.
    subscription = await live.subscribe(agent_id)
    return _Stream(call, subscription, last)


class _Stream(StreamingResponse):
    """The frames of one subscription, which ends with the response however it ends: a client gone before the
    first frame leaves the generator unstarted, and its own clean-up would never run."""

    def __init__(self, call: Call, subscription: Subscription, last: int | None) -> None:
        super().__init__(_frames(call, subscription, last), media_type="text/event-stream",
                         headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
        self._end = functools.partial(call.app.live.unsubscribe, subscription)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._end()


def last_event_id(header: str) -> int | None:
    """The event id a reconnecting client last received: ``None`` when it sends none (an empty header too).

    Every id the stream hands out is a plain decimal from 1 to :data:`~.endpoints.MAX_ID`, and a browser sends
    back only what it was handed; anything else (``²``, a sign, 5,000 digits, an id past the range) is a client's
    bug, refused with 400 rather than read as "no id", which would silently replay nothing.
    """
    value = header.strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(MAX_ID)) and int(value) <= MAX_ID):
        raise Malformed(f"Last-Event-ID must be an event id, a whole number from 0 to {MAX_ID}")
    return int(value)


async def _frames(call: Call, subscription: Subscription, last: int | None) -> AsyncIterator[str]:
    live = call.app.live
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n: connected\n\n"
        replayed: set[int] = set()
        while last is not None:
            rows = await live.replay(subscription.agent_id, last)
            for row in rows:
                assert row.id is not None
                replayed.add(row.id)
                yield await _render(call, row)
            last = rows[-1].id if rows else None
        while True:
            try:
                row = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if row is None:
                return  # dropped (too slow) or shutting down: the client reconnects with Last-Event-ID
            if row.id not in replayed:
                yield await _render(call, row)
    finally:
        live.unsubscribe(subscription)


async def _render(call: Call, row: EventRecord) -> str:
    data: dict[str, Any] = {"conversation_id": row.conversation_id, "agent_id": row.agent_id, **row.data,
                            "at": row.created_at.isoformat().replace("+00:00", "Z")}
    if row.kind != "message.received":
        return _frame(row, data)
    async with call.app.store.session() as session:
        message = await session.get(Message, row.data.get("message_id"))
    texts = pieces(message.body) if message is not None else [""]
    return "".join(_frame(row, {**data, "text": text, "piece": n, "pieces": len(texts)}, last=n == len(texts))
                   for n, text in enumerate(texts, start=1))


def _frame(row: EventRecord, data: dict[str, Any], *, last: bool = True) -> str:
    head = f"id: {row.id}\n" if last else ""
    return f"{head}event: {row.kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
