"""``GET /api/events``: the live event stream (Server-Sent Events) for agent clients.

An agent receives the events that concern them (a conversation assigned to them or taken away, a consumer
message or a delivery status in a conversation they serve); an administrator receives all. A client that
reconnects with ``Last-Event-ID`` first gets what it missed (kept for :data:`smsconnector.live.RETENTION`).

Each frame is ``event: <kind>`` with ``data:`` a JSON object (``conversation_id``, ``agent_id`` and the
event's own fields). A consumer message comes with its text, as consecutive ``message.received`` frames of at
most 5000 characters (``piece``/``pieces``); only the last frame of an event carries its ``id``, so a
client cut off in the middle of a long message gets all of it again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from ..live import Subscription
from ..store.models import EventRecord, Message
from .endpoints import Call, endpoint
from .views import pieces

KEEPALIVE_SECONDS = 15.0
#: how long a browser's EventSource waits before reconnecting
RETRY_MILLISECONDS = 2000


@endpoint("GET", "/api/events", roles=("admin", "agent"), tag="events", media_type="text/event-stream",
          summary="Live events as Server-Sent Events; send Last-Event-ID to catch up after a reconnect")
async def stream(call: Call) -> StreamingResponse:
    live = call.app.live
    agent_id = None if call.admin else call.principal.agent_id
    last = call.request.headers.get("last-event-id", "").strip()
    # Subscribe before replaying, so nothing committed in between falls through the gap.
    subscription = await live.subscribe(agent_id)
    return StreamingResponse(_frames(call, subscription, int(last) if last.isdigit() else None),
                             media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


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
