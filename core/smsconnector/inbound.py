"""The inbound pipeline after ``receive``: dedupe -> segment policy -> route -> store, in one transaction."""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel.ext.asyncio.session import AsyncSession

from . import assignment, outbound, reassembly
from .decisions import Routing, SegmentPolicy
from .errors import MessageRejected
from .events import emit
from .messages import DeliveryStatus, InboundMessage, utcnow
from .store import bulk
from .store.models import Consumer, Conversation, Message

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  #: a provider retry of a message already stored
    BUFFERED = "buffered"  #: a part of a concatenated message, waiting for the rest


async def insert_once(session: AsyncSession, message: InboundMessage) -> int | None:
    """Insert the message row unless the provider already delivered it; its id, or ``None`` for a duplicate."""
    return (await insert_all(session, [message]))[0]


async def insert_all(session: AsyncSession, messages: Sequence[InboundMessage]) -> list[int | None]:
    """Insert the message rows the provider has not delivered before, with one statement; for each message its
    id, or ``None`` for a duplicate (of an earlier delivery, or of a message before it in ``messages``).

    ``ON CONFLICT DO NOTHING`` on the (provider, provider message id) constraint makes this safe across
    replicas and concurrent retries, without aborting the surrounding transaction.
    """
    if not messages:
        return []
    now = utcnow()
    connection = await session.connection()
    rows = [dict(
        direction="inbound", provider=m.provider, provider_message_id=m.provider_message_id,
        from_number=m.from_number, to_number=m.to_number, body=m.text,
        media=[{"url": x.url, "content_type": x.content_type} for x in m.media],
        message_class="conversational", status=DeliveryStatus.RECEIVED.value, num_segments=m.num_segments,
        incomplete=m.incomplete, notes=[], details=dict(m.details), created_at=now, updated_at=now,
    ) for m in messages]
    returned = await bulk.insert_new(connection, Message.__table__, rows, conflict=_MESSAGE_KEY,
                                        returning=("id", *_MESSAGE_KEY))
    inserted = {(provider, provider_id): message_id for message_id, provider, provider_id in returned}
    return [inserted.pop((m.provider, m.provider_message_id), None) for m in messages]


_MESSAGE_KEY = ("provider", "provider_message_id")


_OPEN = Conversation.status != "closed"
_OPEN_CONVERSATION = (
    select(Conversation)
    .where(Conversation.consumer_number == bindparam("consumer"), Conversation.brand_number == bindparam("brand"),
           _OPEN)
    .order_by(Conversation.id.desc()).limit(1)
)
_LOCK_OPEN_CONVERSATION = _OPEN_CONVERSATION.with_for_update().execution_options(populate_existing=True)
_PAIR = ("consumer_number", "brand_number")


@functools.cache
def _lock_open_conversations(dialect: str) -> Any:
    return (select(Conversation).where(bulk.among(Conversation.__table__, _PAIR, dialect), _OPEN)
            .order_by(Conversation.id).with_for_update().execution_options(populate_existing=True))


async def open_conversation(session: AsyncSession, consumer: str, brand: str, *, lock: bool = False
                            ) -> Conversation | None:
    """The consumer's open conversation with a brand number, if there is one; with ``lock``, read under its row
    lock (PostgreSQL; SQLite serialises writers, and SQLAlchemy leaves the clause out there)."""
    stmt = _LOCK_OPEN_CONVERSATION if lock else _OPEN_CONVERSATION
    return (await session.exec(stmt, params=dict(consumer=consumer, brand=brand))).scalars().first()


async def lock_open_conversations(session: AsyncSession, pairs: Iterable[tuple[str, str]]
                                  ) -> dict[tuple[str, str], Conversation]:
    """The open conversation of each (consumer, brand number) pair that has one, read under their row locks,
    taken in id order (so two transactions locking some of the same ones never wait on each other in a circle)."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    found: dict[tuple[str, str], Conversation] = {}
    connection = await session.connection()
    rows = [dict(zip(_PAIR, pair, strict=True)) for pair in wanted]
    params = bulk.among_params(connection, Conversation.__table__, rows)
    for conversation in (await session.exec(_lock_open_conversations(connection.dialect.name), params=params)
                         ).scalars():
        found[(conversation.consumer_number, conversation.brand_number)] = conversation  # the newest wins
    return found


async def ensure_consumer(session: AsyncSession, number: str) -> None:
    await ensure_consumers(session, [number])


async def ensure_consumers(session: AsyncSession, numbers: Iterable[str]) -> None:
    """Record each number as a consumer unless it is one already, with one statement."""
    now = utcnow()
    rows = [dict(number=number, created_at=now) for number in sorted(set(numbers))]
    await bulk.insert_new(await session.connection(), Consumer.__table__, rows, conflict=("number",))


async def accept(app: App, session: AsyncSession, message: InboundMessage) -> Outcome:
    """Take one normalized consumer message into the store, inside the caller's transaction."""
    return (await accept_all(app, session, [message]))[0]


async def accept_all(app: App, session: AsyncSession, messages: Sequence[InboundMessage]) -> list[Outcome]:
    """Take normalized consumer messages into the store, in their order, inside the caller's transaction: each
    part of a concatenated message through its segment policy, then every whole message through
    :func:`store_all` together."""
    outcomes: list[Outcome] = [Outcome.BUFFERED] * len(messages)
    whole: list[tuple[int, InboundMessage]] = []
    for index, message in enumerate(messages):
        if message.segment is not None and message.segment.total > 1:
            policy = _segment_policy(app, message)
            if policy is SegmentPolicy.REASSEMBLE:
                joined = await reassembly.add_part(session, message)
                if joined is None:
                    continue  # or a duplicate part: either way nothing more to do now
                message = joined
            elif policy is SegmentPolicy.SEPARATE:
                message = replace(message, details={**message.details, "part": f"{message.segment.sequence}"
                                                    f"/{message.segment.total}"})
        whole.append((index, message))
    for (index, _), outcome in zip(whole, await store_all(app, session, [m for _, m in whole]), strict=True):
        outcomes[index] = outcome
    return outcomes


def _segment_policy(app: App, message: InboundMessage) -> SegmentPolicy:
    configured = app.config.provider(message.provider).segment_policy
    if configured is not None:
        return configured
    return app.hooks.segment_policy(message.provider, message) or SegmentPolicy.AS_IS


async def store(app: App, session: AsyncSession, message: InboundMessage) -> Outcome:
    """Dedupe, route and store one whole consumer message (see :func:`store_all`)."""
    return (await store_all(app, session, [message]))[0]


async def store_all(app: App, session: AsyncSession, messages: Sequence[InboundMessage]) -> list[Outcome]:
    """Dedupe, route and store whole consumer messages, in their order, with a handful of statements for all.

    The rows go in first, with one statement, so a retry costs nothing more, and route hooks can point at the
    stored message (the consent ledger records which message opted out). Then, each with one statement for the
    whole batch: the consumers, their open conversations read under their row locks (in id order, so that two
    batches never wait on each other in a circle; no agent is locked before them, which keeps the lock order of
    :mod:`.assignment`), and the agents serving them; the route hooks read ahead what they need for all
    (``smsconnector_route_prefetch``), then see one message at a time, in order, each with its conversation as
    the messages before it left it. New conversations are inserted together, the
    skill queues drained once for the batch, and the messages completed with one statement.
    """
    ids = await insert_all(session, messages)
    outcomes = [Outcome.DUPLICATE if message_id is None else Outcome.STORED for message_id in ids]
    fresh = [(message, message_id) for message, message_id in zip(messages, ids, strict=True) if message_id is not None]
    if not fresh:
        return outcomes
    await ensure_consumers(session, {message.from_number for message, _ in fresh})
    conversations = await lock_open_conversations(session, {(m.from_number, m.to_number) for m, _ in fresh})
    await assignment.read_agents(session, conversations.values())
    await app.hooks.route_prefetch([message for message, _ in fresh], session)
    routed: list[tuple[InboundMessage, int, Routing, Conversation]] = []
    opened: list[Conversation] = []  # new conversations, stored together at the end
    touched: set[tuple[str, str]] = set()
    with assignment.drains_deferred(session) as skills:
        for message, message_id in fresh:
            pair = (message.from_number, message.to_number)
            if pair in touched:  # the consumer wrote twice in this batch: the second sees the first's doing
                await _open(session, opened)
                await session.flush()
            touched.add(pair)
            conversation = conversations.get(pair)
            routing = await app.hooks.route(message, conversation, session)
            if routing is None:  # only when the built-in router is disabled and nothing else claims it
                routing = Routing(handled_by="host", skill=_default_skill(app, message))
            conversation = await _apply(app, session, message, routing, conversation, opened)
            conversations[pair] = conversation
            routed.append((message, message_id, routing, conversation))
        await _open(session, opened)
        await session.flush()  # the changes to existing conversations, one UPDATE for all of a shape
    await assignment.drain(session, skills)
    completions = []
    for message, message_id, routing, conversation in routed:
        notes = list(routing.notes)
        for text in routing.replies:
            try:
                await outbound.queue(
                    session, provider=message.provider, from_number=message.to_number,
                    to_number=message.from_number, text=text, conversation_id=conversation.id,
                    message_class=routing.reply_class,
                )
            except MessageRejected as exc:
                # The consumer's message is kept whatever happens to an automatic reply to it.
                log.warning("automatic reply from %s not queued: %s", routing.handled_by, exc.reason)
                notes.append(f"automatic reply from {routing.handled_by} not sent: {exc.reason}")
        completions.append(dict(id=message_id, conversation_id=conversation.id,
                                handled_by=routing.handled_by, notes=notes))
        emit(session, "message.received", message_id=message_id, conversation_id=conversation.id,
             agent_id=conversation.agent_id, skill=conversation.skill)
    await bulk.update_all(await session.connection(), Message.__table__, completions)
    return outcomes


def _default_skill(app: App, message: InboundMessage) -> str:
    number = app.config.number(message.to_number)
    return number.skill if number else "default"


async def _apply(app: App, session: AsyncSession, message: InboundMessage, routing: Routing,
                 conversation: Conversation | None, opened: list[Conversation]) -> Conversation:
    """Put the routing decision into the conversation: continue it, or open a new one; queue or assign it.

    A new conversation that is not assigned to a named agent joins ``opened``, to be stored with the batch's
    others by :func:`_open` (until then it has no id).
    """
    now = utcnow()
    if conversation is not None and routing.new_conversation and conversation.is_open:
        await assignment.close(session, conversation, reason="new_conversation")
    if conversation is not None and not conversation.is_open:  # closed now, or meanwhile by another transaction
        conversation = None
    if conversation is None:
        queued = routing.to_agent and routing.agent_id is None
        conversation = Conversation.opening(
            consumer_number=message.from_number, brand_number=message.to_number, provider=message.provider,
            status=assignment.QUEUED if queued else assignment.AUTOMATED,
            skill=routing.skill or _default_skill(app, message), entry_point=routing.entry_point,
            context=dict(routing.context), now=now,
        )
        opened.append(conversation)
        if queued or not routing.to_agent:
            return conversation
        await _open(session, opened)  # assigned to a named agent below, which needs its id
    else:
        conversation.last_message_at = now
        if routing.context:
            conversation.context = {**conversation.context, **routing.context}
        if routing.entry_point and not conversation.entry_point:
            conversation.entry_point = routing.entry_point
    if routing.to_agent:
        if routing.agent_id is not None and conversation.agent_id != routing.agent_id:
            if not await assignment.assign(session, conversation, routing.agent_id, reason="routed"):
                await assignment.enqueue(session, conversation, routing.skill)
        elif conversation.status == "queued":
            # Already waiting: it keeps its skill and its place; a later entry point adds context, not a requeue.
            await assignment.enqueue(session, conversation)
        elif conversation.agent_id is None or conversation.status != "assigned":
            await assignment.enqueue(session, conversation, routing.skill)
    return conversation


_CONVERSATION_COLUMNS = [c.name for c in Conversation.__table__.columns if c.name != "id"]


async def _open(session: AsyncSession, opened: list[Conversation]) -> None:
    """Store the new conversations in ``opened`` with one statement, then empty it: each gets its id and joins
    the session as a stored row; those opened queued are announced, their queues drained with the batch's.

    One INSERT for all, where the ORM's flush inserts a row a statement when the database numbers the rows.
    """
    if not opened:
        return
    rows = [{name: vars(conversation)[name] for name in _CONVERSATION_COLUMNS} for conversation in opened]
    ids = await bulk.insert_all(session, Conversation.__table__, rows)
    for conversation, conversation_id in zip(opened, ids, strict=True):
        conversation.id = conversation_id
        make_transient_to_detached(conversation)
        session.add(conversation)
        if conversation.status == assignment.QUEUED:
            assignment.announce_queued(session, conversation)
    opened.clear()
