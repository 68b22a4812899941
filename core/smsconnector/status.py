"""Applying provider status updates to stored outbound messages, never moving one backwards."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, exists, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .errors import Malformed
from .events import emit
from .messages import DeliveryStatus, SegmentInfo, StatusUpdate, utcnow
from .store.models import DeliveryPart, HeldStatus, Message

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger(__name__)


def check_part(update: StatusUpdate) -> SegmentInfo:
    """A per-part receipt's segment information; :class:`Malformed` when the part is outside its total."""
    seg = update.segment
    assert seg is not None
    if not 1 <= seg.sequence <= seg.total:
        raise Malformed(f"receipt for part {seg.sequence} of {seg.total}: the part must be between 1 and the total")
    return seg


def advances(current: DeliveryStatus, new: DeliveryStatus) -> bool:
    """Whether ``new`` may replace ``current``: never out of a terminal status, never to a lower rank."""
    return not current.terminal and new.rank >= current.rank and new != current


async def apply(app: App, session: AsyncSession, update: StatusUpdate) -> Message | None:
    """Record ``update`` on its message; the message, or ``None`` when no message has that provider id.

    The id may be a part's own (``SendResult.part_ids``): the update is then that part's receipt.
    """
    part = (await session.exec(_PART_BY_PROVIDER_ID, params={
        "provider": update.provider, "provider_id": update.provider_message_id})).first()
    if part is not None:
        # The stored part says which part this is, whatever the report says: a provider reporting per part id
        # gives no sequence of its own.
        update = replace(update, segment=SegmentInfo(reference=0, total=part.total, sequence=part.sequence))
        stmt = select(Message).where(Message.id == part.message_id).with_for_update()
    else:
        stmt = select(Message).where(Message.provider == update.provider,
                                     Message.provider_message_id == update.provider_message_id).with_for_update()
    message = (await session.exec(stmt)).scalars().first()
    if message is None:
        # Most likely the provider reported faster than the sender recorded its id: hold the report for
        # release(); it is answered 2xx all the same, as a provider would retry it for nothing.
        await hold(session, update)
        return None
    new, code, reason = update.status, update.error_code, update.error_message
    if update.segment is not None:
        new, code, reason = await _aggregate_parts(session, message, update)
    if advances(DeliveryStatus(message.status), new):
        message.status = new.value
        if code is not None or reason is not None:
            message.error_code, message.error_message = code, reason
        message.updated_at = utcnow()
        emit(session, "message.status", message_id=message.id, conversation_id=message.conversation_id,
             agent_id=message.agent_id, status=message.status, error_code=message.error_code)
    assert message.id is not None
    await app.hooks.status_recorded(update, message.id, session)
    return message


async def hold(session: AsyncSession, update: StatusUpdate) -> None:
    """Keep a report whose message is not known (yet) until :func:`release` can apply it."""
    seg = update.segment
    session.add(HeldStatus(
        provider=update.provider, provider_message_id=update.provider_message_id, status=update.status.value,
        error_code=update.error_code, error_message=update.error_message,
        sequence=seg.sequence if seg else None, total=seg.total if seg else None, received_at=utcnow(),
    ))
    log.info("holding a %s report for %s message %s until its send is recorded", update.status.value,
             update.provider, update.provider_message_id)


async def release(app: App, session: AsyncSession, provider: str, provider_message_ids: Collection[str]) -> int:
    """Apply the reports held for messages whose provider ids were just recorded, in arrival order; how many."""
    held = (await session.exec(
        select(HeldStatus).where(HeldStatus.provider == provider,
                                 HeldStatus.provider_message_id.in_(provider_message_ids)).order_by(HeldStatus.id)
    )).scalars().all()
    for row in held:
        segment = SegmentInfo(reference=0, total=row.total, sequence=row.sequence) if row.total else None
        await apply(app, session, StatusUpdate(
            provider=row.provider, provider_message_id=row.provider_message_id, status=DeliveryStatus(row.status),
            error_code=row.error_code, error_message=row.error_message, segment=segment, occurred_at=row.received_at,
        ))
        await session.delete(row)
    return len(held)


async def release_all(app: App, session: AsyncSession, *, forget_after: timedelta) -> int:
    """Apply every held report whose message is now known; forget those unmatched for ``forget_after``.

    The sender releases a message's reports when it records the id; this sweep catches a report that
    committed just after that release looked (two replicas), and bounds the table.
    """
    known = (await session.exec(
        select(HeldStatus.provider, HeldStatus.provider_message_id).distinct().where(
            exists().where(Message.provider == HeldStatus.provider,
                           Message.provider_message_id == HeldStatus.provider_message_id)
            | exists().where(DeliveryPart.provider == HeldStatus.provider,
                             DeliveryPart.provider_message_id == HeldStatus.provider_message_id))
    )).all()
    applied = 0
    for provider, provider_message_id in known:
        applied += await release(app, session, provider, [provider_message_id])
    stale = delete(HeldStatus).where(HeldStatus.received_at < utcnow() - forget_after)
    forgotten = (await session.exec(stale)).rowcount
    if forgotten:
        log.warning("forgot %d status reports for messages never recorded", forgotten)
    return applied


_FAILED = (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)
_PART_BY_PROVIDER_ID = select(DeliveryPart.message_id, DeliveryPart.sequence, DeliveryPart.total).where(
    DeliveryPart.provider == bindparam("provider"), DeliveryPart.provider_message_id == bindparam("provider_id"))


async def _aggregate_parts(
    session: AsyncSession, message: Message, update: StatusUpdate
) -> tuple[DeliveryStatus, str | None, str | None]:
    """Per-part receipts make one status: delivered once every part is, failed with the first failed part's code.

    The message row is locked (``apply``), so receipts for the parts of one message are counted one at a
    time, whichever replica they reach.
    """
    seg = check_part(update)
    assert message.id is not None
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
    failed = [p for p in parts if DeliveryStatus(p.status) in _FAILED]
    if failed:
        # The first failure makes the message terminal and later receipts never change it: when this
        # receipt moves the message, its part is that first failure.
        first = part if DeliveryStatus(part.status) in _FAILED else failed[0]
        return DeliveryStatus(first.status), first.error_code, update.error_message if first is part else None
    delivered = {p.sequence for p in parts if DeliveryStatus(p.status) is DeliveryStatus.DELIVERED}
    if delivered >= set(range(1, seg.total + 1)):
        return DeliveryStatus.DELIVERED, None, None
    return DeliveryStatus.SENT, None, None
