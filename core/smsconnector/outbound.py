"""Queueing outbound messages: validate, then store each message and its outbox row in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert
from sqlmodel.ext.asyncio.session import AsyncSession

from .errors import MessageRejected
from .events import emit
from .messages import AGENT_TEXT_LIMIT, DeliveryStatus, InvalidNumber, Media, MessageClass, to_e164, to_sender, utcnow
from .store import bulk
from .store.models import DeliveryPart, Message, OutboxEntry

# Built once: building a statement per batch costs about as much as running it.
_INSERT_OUTBOX = insert(OutboxEntry.__table__)


def validate(text: str, media: Sequence[Media] = (), *, to_number: str, from_number: str) -> tuple[str, str]:
    """Check an outbound message; return the consumer's number in E.164 and the brand's sending address.

    :raises MessageRejected: empty, longer than the agent limit, or a number that is not a phone number.
    """
    if not text.strip() and not media:
        raise MessageRejected("a message needs text or media", code="empty")
    if len(text) > AGENT_TEXT_LIMIT:
        raise MessageRejected(
            f"message is {len(text)} characters; the limit is {AGENT_TEXT_LIMIT} characters", code="too_long")
    if len(media) > 10:
        raise MessageRejected(f"{len(media)} media attachments; the limit is 10", code="too_many_media")
    try:
        return to_e164(to_number), to_sender(from_number)
    except InvalidNumber as exc:
        raise MessageRejected(str(exc), code="invalid_number") from None


def draft(
    *,
    provider: str,
    from_number: str,
    to_number: str,
    text: str,
    media: Sequence[Media] = (),
    conversation_id: int | None = None,
    message_class: MessageClass = "conversational",
    agent_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The row of a validated outbound message, every column but the id: :func:`queue_all` stores it.

    A plain row, not a :class:`Message`: building an ORM object costs more than storing it in a batch.

    :raises MessageRejected: see :func:`validate`.
    """
    to_number, from_number = validate(text, media, to_number=to_number, from_number=from_number)
    now = now or utcnow()
    return {
        "conversation_id": conversation_id, "direction": "outbound", "provider": provider, "provider_message_id": None,
        "from_number": from_number, "to_number": to_number, "body": text,
        "media": [{"url": m.url, "content_type": m.content_type} for m in media], "message_class": message_class,
        "status": DeliveryStatus.QUEUED.value, "error_code": None, "error_message": None, "num_segments": None,
        "incomplete": False, "handled_by": None, "agent_id": agent_id, "notes": [], "details": {},
        "created_at": now, "updated_at": now,
    }


async def queue_all(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Store drafted messages with their outbox rows, in their order, with one INSERT for all the messages and
    one for all their outbox rows; their ids. The sender picks them up once the transaction commits."""
    if not rows:
        return []
    ids = await bulk.insert_all(session, Message.__table__, rows)
    for row, message_id in zip(rows, ids, strict=True):
        emit(session, "outbox.queued", message_id=message_id, conversation_id=row["conversation_id"])
    await session.exec(_INSERT_OUTBOX, params=[_outbox_row(i, row) for i, row in zip(ids, rows, strict=True)])
    return ids


def _outbox_row(message_id: int, message: dict[str, Any]) -> dict[str, Any]:
    return {"message_id": message_id, "provider": message["provider"], "from_number": message["from_number"],
            "to_number": message["to_number"], "due_at": message["created_at"], "attempts": 0,
            "created_at": message["created_at"]}


async def queue(
    session: AsyncSession,
    *,
    provider: str,
    from_number: str,
    to_number: str,
    text: str,
    media: Sequence[Media] = (),
    conversation_id: int | None = None,
    message_class: MessageClass = "conversational",
    agent_id: int | None = None,
) -> Message:
    """Store an outbound message with its outbox row; the sender picks it up once the transaction commits."""
    row = draft(provider=provider, from_number=from_number, to_number=to_number, text=text, media=media,
                conversation_id=conversation_id, message_class=message_class, agent_id=agent_id)
    message = Message(**row)
    session.add(message)
    await session.flush()
    assert message.id is not None
    session.add(OutboxEntry(**_outbox_row(message.id, row)))
    emit(session, "outbox.queued", message_id=message.id, conversation_id=conversation_id)
    return message


async def requeue(session: AsyncSession, message: Message, *, note: str) -> None:
    """Put a failed outbound ``message`` back in the outbox, as if just queued: a new outbox row (no attempts, a
    new retry budget, at the back of its recipient's queue), its status ``queued``, its error and its previous
    send's provider id and part receipts cleared, ``note`` added for the agent. The sender's send checks run
    again when it goes."""
    assert message.id is not None and message.direction == "outbound"
    now = utcnow()
    message.status, message.error_code, message.error_message = DeliveryStatus.QUEUED.value, None, None
    # A late report about the failed send must not land on the new one: without its id, it finds no message.
    message.provider_message_id, message.num_segments, message.updated_at = None, None, now
    message.notes = [*message.notes, note]
    await session.exec(delete(DeliveryPart).where(DeliveryPart.message_id == message.id))  # type: ignore[call-overload]
    session.add(OutboxEntry(message_id=message.id, provider=message.provider, from_number=message.from_number,
                            to_number=message.to_number, due_at=now, attempts=0, created_at=now))
    emit(session, "outbox.queued", message_id=message.id, conversation_id=message.conversation_id)
    emit(session, "message.status", message_id=message.id, conversation_id=message.conversation_id,
         agent_id=message.agent_id, status=message.status, error_code=None)
