"""Queueing a batch of automated texts: one outbound message and one send record per recipient, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel.ext.asyncio.session import AsyncSession

from smsconnector import outbound
from smsconnector.plugin import MessageClass

from .models import AutomationSend

if TYPE_CHECKING:
    from smsconnector.config import NumberSettings


@dataclass(frozen=True, slots=True)
class Recipient:
    to: str  #: E.164, checked to receive texts
    text: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Batch:
    """A validated request."""

    brand: NumberSettings
    campaign: str
    message_class: MessageClass
    reply_policy: str
    skill: str | None
    reply_window: timedelta
    recipients: tuple[Recipient, ...]


async def queue(session: AsyncSession, batch: Batch, now: datetime) -> list[AutomationSend]:
    """Put every text of ``batch`` in the outbox; the sender throttles them per number like any other message.

    Every text is checked before anything is stored; then one statement stores all the messages and one all
    their outbox rows (:func:`smsconnector.outbound.queue_all`), where two a message made a thousand recipients
    take 0.53 s to queue on SQLite instead of 0.14.
    """
    rows = [outbound.draft(provider=batch.brand.provider, from_number=batch.brand.number, to_number=recipient.to,
                           text=recipient.text, message_class=batch.message_class, now=now)
            for recipient in batch.recipients]
    message_ids = await outbound.queue_all(session, rows)
    sends = [AutomationSend(message_id=message_id, consumer_number=recipient.to, brand_number=batch.brand.number,
                            campaign=batch.campaign, message_class=batch.message_class,
                            reply_policy=batch.reply_policy, skill=batch.skill, context=recipient.context,
                            reply_until=now + batch.reply_window, created_at=now)
             for recipient, message_id in zip(batch.recipients, message_ids, strict=True)]
    session.add_all(sends)
    await session.flush()
    return sends
