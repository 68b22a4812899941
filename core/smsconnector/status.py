"""Applying provider status updates to stored outbound messages, never moving one backwards."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from .events import emit
from .messages import DeliveryStatus, StatusUpdate, utcnow
from .store.models import DeliveryPart, Message

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger(__name__)


def advances(current: DeliveryStatus, new: DeliveryStatus) -> bool:
    """Whether ``new`` may replace ``current``: never out of a terminal status, never to a lower rank."""
    return not current.terminal and new.rank >= current.rank and new != current


async def apply(app: App, session: AsyncSession, update: StatusUpdate) -> Message | None:
    """Record ``update`` on its message; the message, or ``None`` when no message has that provider id."""
    stmt = select(Message).where(Message.provider == update.provider,
                                 Message.provider_message_id == update.provider_message_id).with_for_update()
    message = (await session.exec(stmt)).scalars().first()
    if message is None:
        # Answered 2xx all the same: the provider would otherwise retry a receipt we can never place.
        log.warning("status for unknown %s message %s", update.provider, update.provider_message_id)
        return None
    new, code = update.status, update.error_code
    if update.segment is not None:
        new, code = await _aggregate_parts(session, message, update)
    if advances(DeliveryStatus(message.status), new):
        message.status = new.value
        if code is not None or update.error_message is not None:
            message.error_code, message.error_message = code, update.error_message
        message.updated_at = utcnow()
        emit(session, "message.status", message_id=message.id, conversation_id=message.conversation_id,
             agent_id=message.agent_id, status=message.status, error_code=message.error_code)
    assert message.id is not None
    await app.hooks.status_recorded(update, message.id, session)
    return message


async def _aggregate_parts(
    session: AsyncSession, message: Message, update: StatusUpdate
) -> tuple[DeliveryStatus, str | None]:
    """Per-part receipts make one status: delivered once every part is, failed with the first failed part's code."""
    seg = update.segment
    assert seg is not None and message.id is not None
    part = await session.get(DeliveryPart, (message.id, seg.sequence))
    if part is None:
        part = DeliveryPart(message_id=message.id, sequence=seg.sequence, total=seg.total, status=update.status.value,
                            error_code=update.error_code)
        session.add(part)
    elif advances(DeliveryStatus(part.status), update.status):
        part.status, part.error_code, part.updated_at = update.status.value, update.error_code, utcnow()
    await session.flush()
    parts = (await session.exec(
        select(DeliveryPart).where(DeliveryPart.message_id == message.id).order_by(DeliveryPart.sequence)
    )).scalars().all()
    statuses = [DeliveryStatus(p.status) for p in parts]
    failed = [p for p in parts if DeliveryStatus(p.status) in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)]
    if failed:
        return DeliveryStatus(failed[0].status), failed[0].error_code
    if len(parts) >= seg.total and all(s is DeliveryStatus.DELIVERED for s in statuses):
        return DeliveryStatus.DELIVERED, None
    return DeliveryStatus.SENT, None
