"""Queueing outbound messages: validate, then store the message and its outbox row in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from .errors import MessageRejected
from .events import emit
from .messages import AGENT_TEXT_LIMIT, DeliveryStatus, InvalidNumber, Media, MessageClass, to_e164, to_sender, utcnow
from .store.models import Message, OutboxEntry


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
    to_number, from_number = validate(text, media, to_number=to_number, from_number=from_number)
    now = utcnow()
    message = Message(
        direction="outbound", provider=provider, from_number=from_number, to_number=to_number, body=text,
        media=[{"url": m.url, "content_type": m.content_type} for m in media], message_class=message_class,
        status=DeliveryStatus.QUEUED.value, conversation_id=conversation_id, agent_id=agent_id,
        created_at=now, updated_at=now,
    )
    session.add(message)
    await session.flush()
    assert message.id is not None
    session.add(OutboxEntry(message_id=message.id, provider=provider, from_number=from_number, due_at=now,
                            created_at=now))
    emit(session, "outbox.queued", message_id=message.id, conversation_id=conversation_id)
    return message
