"""Joining the parts of a concatenated SMS into the message the consumer wrote.

The buffer lives in the database: a part is added under a row lock on its group, so parts that reach
different replicas, or arrive around a restart, still complete the message exactly once. A group that
stays incomplete past the provider's timeout is delivered with the parts that came, marked incomplete.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from .messages import InboundMessage, utcnow
from .store.models import SegmentGroup, SegmentPart

_OPEN = text("completed_at IS NULL")


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


async def add_part(session: AsyncSession, part: InboundMessage) -> InboundMessage | None:
    """Buffer one part; return the whole message when this part completes it, else ``None``.

    A part already seen (same provider message id) changes nothing and returns ``None``.
    """
    seg = part.segment
    assert seg is not None
    seen = select(SegmentPart.id).where(SegmentPart.provider == part.provider,
                                        SegmentPart.provider_message_id == part.provider_message_id)
    if (await session.exec(seen)).first() is not None:
        return None
    group = await _lock_open_group(session, part)
    same_sequence = select(SegmentPart.id).where(SegmentPart.group_id == group.id,
                                                 SegmentPart.sequence == seg.sequence)
    if (await session.exec(same_sequence)).first() is not None:
        return None  # the same part again under a new id: the first copy stands
    session.add(SegmentPart(
        group_id=group.id, provider=part.provider, provider_message_id=part.provider_message_id,
        sequence=seg.sequence, text=part.text, payload=seg.payload, encoding=seg.encoding, received_at=utcnow(),
    ))
    await session.flush()
    count = (await session.exec(select(func.count()).where(SegmentPart.group_id == group.id))).scalar_one()
    if count < group.total:
        return None
    return await _complete(session, group, part, incomplete=False)


async def _lock_open_group(session: AsyncSession, part: InboundMessage) -> SegmentGroup:
    seg = part.segment
    assert seg is not None
    key = dict(provider=part.provider, from_number=part.from_number, to_number=part.to_number,
               reference=seg.reference)
    await session.exec(
        _insert(session)(SegmentGroup).values(**key, total=seg.total, first_received_at=utcnow())
        .on_conflict_do_nothing(index_elements=list(key), index_where=_OPEN)
    )
    stmt = select(SegmentGroup).filter_by(**key).where(SegmentGroup.completed_at.is_(None)).with_for_update()
    return (await session.exec(stmt)).scalars().one()


async def _complete(
    session: AsyncSession, group: SegmentGroup, template: InboundMessage, *, incomplete: bool
) -> InboundMessage:
    parts = (await session.exec(
        select(SegmentPart).where(SegmentPart.group_id == group.id).order_by(SegmentPart.sequence)
    )).scalars().all()
    group.completed_at = utcnow()
    if parts and all(p.payload is not None and p.encoding == parts[0].encoding for p in parts):
        # Join bytes before decoding: a character may straddle two parts.
        body = b"".join(p.payload for p in parts if p.payload is not None).decode(parts[0].encoding or "utf-8",
                                                                                  errors="replace")
    else:
        body = "".join(p.text for p in parts)
    details = {**template.details, "parts": ",".join(p.provider_message_id for p in parts),
               "sequences": ",".join(str(p.sequence) for p in parts), "total": str(group.total)}
    return replace(
        template, provider_message_id=parts[0].provider_message_id, text=body, segment=None,
        num_segments=group.total, incomplete=incomplete, details=details,
        received_at=min(p.received_at for p in parts),
    )


async def _has_parts(session: AsyncSession, group: SegmentGroup) -> bool:
    return (await session.exec(select(SegmentPart.id).where(SegmentPart.group_id == group.id).limit(1))).first() \
        is not None


async def expire(session: AsyncSession, provider: str, older_than: datetime) -> list[InboundMessage]:
    """Close the open groups of ``provider`` begun before ``older_than``; their parts, marked incomplete."""
    stmt = (
        select(SegmentGroup)
        .where(SegmentGroup.provider == provider, SegmentGroup.completed_at.is_(None),
               SegmentGroup.first_received_at < older_than)
        .with_for_update(skip_locked=True)
    )
    whole: list[InboundMessage] = []
    for group in (await session.exec(stmt)).scalars().all():
        if not await _has_parts(session, group):
            group.completed_at = utcnow()
            continue
        template = InboundMessage(provider=group.provider, provider_message_id="", from_number=group.from_number,
                                  to_number=group.to_number)
        whole.append(await _complete(session, group, template, incomplete=True))
    return whole
