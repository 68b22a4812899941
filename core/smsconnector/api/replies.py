"""Agents' replies: the replies posted at the same moment are queued together, in one transaction.

A reply alone cost a transaction of its own: its conversation locked, its message inserted and flushed, its
outbox row inserted, the conversation updated, and a commit (an fsync on SQLite), which capped the API at a
few hundred replies a second. Here each reply waits in a :class:`~smsconnector.store.batching.Batcher`; the
replies waiting at that moment lock their conversations with one statement (in id order, so two replicas'
batches never wait on each other in a circle), and are inserted with one statement for the messages and one
for their outbox rows. Each is answered only once that transaction committed.

A reply that is refused (no such conversation, not the caller's, closed, a bad body) is refused before
anything of it is written, and its refusal is its answer: the others in its batch are stored all the same.
Replies are queued in the order they were submitted, one batch at a time, so replies to a conversation keep
the order they arrived in.

A reply sent with an ``Idempotency-Key`` claims its key in the batch's transaction once it passed its checks,
and its answer is recorded there too (:mod:`smsconnector.idempotency`); a reply whose key another request
holds (in this batch, or committed by another) queues nothing and is answered the other's result.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import Response

from .. import assignment, idempotency, outbound
from ..errors import RequestRejected
from ..messages import Media, utcnow
from ..store import Store
from ..store.batching import Batcher, in_transaction
from ..store.models import Conversation
from .conversations import checked
from .endpoints import Call, rendered
from .schemas import MessageOut, ReplyIn
from .views import queued_out

#: the conversations of a batch, locked in id order (built once: building it per batch costs as much as running it)
_LOCK = (select(Conversation).where(Conversation.id.in_(bindparam("ids", expanding=True))).order_by(Conversation.id)
         .with_for_update().execution_options(populate_existing=True))


class Replies:
    """Queues the replies posted through the API, many to a transaction."""

    def __init__(self, store: Store) -> None:
        # One batch at a time, on PostgreSQL too: a later batch running beside an earlier one could lock a
        # conversation first and queue its reply ahead of one that arrived before it.
        self._batcher: Batcher[Call, Outcome] = Batcher(in_transaction(store, _queue))

    async def submit(self, call: Call) -> MessageOut | Response:
        """Queue the reply ``call`` posts; the stored message once committed (as the answer recorded under its
        idempotency key, if it has one), or the refusal raised (:class:`~smsconnector.idempotency.Taken` when
        another request holds its key)."""
        outcome = await self._batcher.submit(call)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def close(self) -> None:
        """Stop taking replies; those being queued are committed first."""
        await self._batcher.close()


#: a reply's outcome: its message (or the answer recorded under its key), its refusal, or its key taken
Outcome = MessageOut | Response | RequestRejected | idempotency.Taken


async def _queue(session: AsyncSession, calls: list[Call]) -> list[Outcome]:
    """Queue the replies of ``calls`` in ``session``: for each, its message (as its recorded answer when it has a
    key), its refusal, or :class:`~smsconnector.idempotency.Taken` when another request holds its key."""
    ids = sorted({call.param("conversation_id") for call in calls})
    found = {c.id: c for c in (await session.exec(_LOCK, params={"ids": ids})).scalars()}
    now = utcnow()
    outcomes: list[dict[str, Any] | Exception] = []
    for call in calls:
        try:
            conversation = checked(call, found.get(call.param("conversation_id")), open_=True)
            body: ReplyIn = call.body  # read after the access checks: without the right, 403 whatever was sent
            outcomes.append(outbound.draft(
                provider=conversation.provider, from_number=conversation.brand_number,
                to_number=conversation.consumer_number, text=body.text, conversation_id=conversation.id,
                media=[Media(m.url, m.content_type) for m in body.media], agent_id=call.principal.agent_id, now=now,
            ))
        except RequestRejected as refusal:
            outcomes.append(refusal)
    # Only replies that passed their checks claim their keys: a refused one leaves its key free for a retry.
    keyed = [c.idempotency for c, o in zip(calls, outcomes, strict=True)
             if c.idempotency is not None and not isinstance(o, Exception)]
    # By identity: two replies with the same key and body are equal, and only the first of them takes the key.
    won = set(map(id, await idempotency.claim_all(session, keyed)))
    replied: dict[int, Conversation] = {}
    for n, call in enumerate(calls):
        if isinstance(outcomes[n], Exception):
            continue
        if call.idempotency is not None and id(call.idempotency) not in won:
            outcomes[n] = idempotency.Taken()
            continue
        conversation = found[call.param("conversation_id")]
        conversation.last_message_at = now
        replied[call.param("conversation_id")] = conversation
    rows = [o for o in outcomes if not isinstance(o, Exception)]
    message_ids = iter(await outbound.queue_all(session, rows))
    for _, conversation in sorted(replied.items()):
        if conversation.status == assignment.QUEUED:  # still waiting: it keeps its place in the queue
            await assignment.enqueue(session, conversation)
    answers: list[Outcome] = []
    recorded: list[tuple[idempotency.Keyed, Response]] = []
    for call, outcome in zip(calls, outcomes, strict=True):
        if isinstance(outcome, Exception):
            answers.append(outcome)  # type: ignore[arg-type]
            continue
        message = queued_out(next(message_ids), outcome)
        if call.idempotency is None:
            answers.append(message)
            continue
        response = rendered(message, call.idempotency.status)
        recorded.append((call.idempotency, response))
        answers.append(response)
    await idempotency.record_all(session, recorded)
    return answers
