"""The inbound pipeline after ``receive``: dedupe -> segment policy -> route -> store, in one transaction."""

from __future__ import annotations

import enum
import functools
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from . import assignment, outbound, reassembly
from .decisions import Routing, SegmentPolicy
from .errors import MessageRejected
from .events import emit
from .messages import DeliveryStatus, InboundMessage, utcnow
from .store.models import Consumer, Conversation, Message

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  #: a provider retry of a message already stored
    BUFFERED = "buffered"  #: a part of a concatenated message, waiting for the rest


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


async def insert_once(session: AsyncSession, message: InboundMessage) -> int | None:
    """Insert the message row unless the provider already delivered it; its id, or ``None`` for a duplicate.

    ``ON CONFLICT DO NOTHING`` on the (provider, provider message id) constraint makes this safe across
    replicas and concurrent retries, without aborting the surrounding transaction.
    """
    now = utcnow()
    connection = await session.connection()
    result = await connection.execute(_insert_message(connection.dialect.name), dict(
        direction="inbound", provider=message.provider, provider_message_id=message.provider_message_id,
        from_number=message.from_number, to_number=message.to_number, body=message.text,
        media=[{"url": m.url, "content_type": m.content_type} for m in message.media],
        message_class="conversational", status=DeliveryStatus.RECEIVED.value, num_segments=message.num_segments,
        incomplete=message.incomplete, notes=[], details=dict(message.details), created_at=now, updated_at=now,
    ))
    return result.scalar_one_or_none()


@functools.cache
def _insert_message(dialect: str) -> Any:
    # Built once per dialect: constructing the statement per message cost more than running it.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = Message.__table__
    return (insert(table).on_conflict_do_nothing(index_elements=["provider", "provider_message_id"])
            .returning(table.c.id))


_COMPLETE_MESSAGE = (
    update(Message.__table__).where(Message.__table__.c.id == bindparam("message_id"))
    .values(conversation_id=bindparam("conversation_id"), handled_by=bindparam("handled_by"),
            notes=bindparam("notes"))
)


_OPEN_CONVERSATION = (
    select(Conversation)
    .where(Conversation.consumer_number == bindparam("consumer"), Conversation.brand_number == bindparam("brand"),
           Conversation.status != "closed")
    .order_by(Conversation.id.desc()).limit(1)
)
_LOCK_OPEN_CONVERSATION = _OPEN_CONVERSATION.with_for_update().execution_options(populate_existing=True)


async def open_conversation(session: AsyncSession, consumer: str, brand: str, *, lock: bool = False
                            ) -> Conversation | None:
    """The consumer's open conversation with a brand number, if there is one; with ``lock``, read under its row
    lock (PostgreSQL; SQLite serialises writers, and SQLAlchemy leaves the clause out there)."""
    stmt = _LOCK_OPEN_CONVERSATION if lock else _OPEN_CONVERSATION
    return (await session.exec(stmt, params=dict(consumer=consumer, brand=brand))).scalars().first()


async def ensure_consumer(session: AsyncSession, number: str) -> None:
    connection = await session.connection()
    await connection.execute(_insert_consumer(connection.dialect.name), dict(number=number, created_at=utcnow()))


@functools.cache
def _insert_consumer(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Consumer.__table__).on_conflict_do_nothing(index_elements=["number"])


async def accept(app: App, session: AsyncSession, message: InboundMessage) -> Outcome:
    """Take one normalized consumer message into the store, inside the webhook's transaction."""
    if message.segment is not None and message.segment.total > 1:
        policy = _segment_policy(app, message)
        if policy is SegmentPolicy.REASSEMBLE:
            whole = await reassembly.add_part(session, message)
            if whole is None:
                return Outcome.BUFFERED  # or a duplicate part: either way nothing more to do now
            message = whole
        elif policy is SegmentPolicy.SEPARATE:
            message = replace(message, details={**message.details, "part": f"{message.segment.sequence}"
                                                f"/{message.segment.total}"})
    return await store(app, session, message)


def _segment_policy(app: App, message: InboundMessage) -> SegmentPolicy:
    configured = app.config.provider(message.provider).segment_policy
    if configured is not None:
        return configured
    return app.hooks.segment_policy(message.provider, message) or SegmentPolicy.AS_IS


async def store(app: App, session: AsyncSession, message: InboundMessage) -> Outcome:
    """Dedupe, route and store a whole consumer message.

    The row goes in first, so a retry costs one statement that inserts nothing, and route hooks can point
    at the stored message (the consent ledger records which message opted out).
    """
    message_id = await insert_once(session, message)
    if message_id is None:
        return Outcome.DUPLICATE
    # Locked as it is read: the route hooks and the router decide on it (is its agent still online?) while no
    # other transaction can change it. No agent is locked before it here, which keeps the lock order of
    # :mod:`.assignment` (agent -> conversation -> the assignment lock).
    conversation = await open_conversation(session, message.from_number, message.to_number, lock=True)
    routing = await app.hooks.route(message, conversation, session)
    if routing is None:  # only when the built-in router is disabled and nothing else claims it
        routing = Routing(handled_by="host", skill=_default_skill(app, message))
    conversation = await _apply(app, session, message, routing, conversation)
    notes = list(routing.notes)
    for text in routing.replies:
        try:
            await outbound.queue(
                session, provider=message.provider, from_number=message.to_number, to_number=message.from_number,
                text=text, conversation_id=conversation.id, message_class=routing.reply_class,
            )
        except MessageRejected as exc:
            # The consumer's message is kept whatever happens to an automatic reply to it.
            log.warning("automatic reply from %s not queued: %s", routing.handled_by, exc.reason)
            notes.append(f"automatic reply from {routing.handled_by} not sent: {exc.reason}")
    connection = await session.connection()
    await connection.execute(_COMPLETE_MESSAGE, dict(message_id=message_id, conversation_id=conversation.id,
                                                     handled_by=routing.handled_by, notes=notes))
    emit(session, "message.received", message_id=message_id, conversation_id=conversation.id,
         agent_id=conversation.agent_id, skill=conversation.skill)
    return Outcome.STORED


def _default_skill(app: App, message: InboundMessage) -> str:
    number = app.config.number(message.to_number)
    return number.skill if number else "default"


async def _apply(
    app: App, session: AsyncSession, message: InboundMessage, routing: Routing, conversation: Conversation | None
) -> Conversation:
    """Put the routing decision into the conversation: continue it, or open a new one; queue or assign it."""
    now = utcnow()
    if conversation is not None and routing.new_conversation and conversation.is_open:
        await assignment.close(session, conversation, reason="new_conversation")
    if conversation is not None and not conversation.is_open:  # closed now, or meanwhile by another transaction
        conversation = None
    if conversation is None:
        await ensure_consumer(session, message.from_number)
        conversation = Conversation(
            consumer_number=message.from_number, brand_number=message.to_number, provider=message.provider,
            skill=routing.skill or _default_skill(app, message), entry_point=routing.entry_point,
            context=dict(routing.context), opened_at=now, last_message_at=now, status="automated",
        )
        session.add(conversation)
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
    await session.flush()
    return conversation
