"""Joining the parts of a concatenated SMS into the message the consumer wrote.

The buffer lives in the database: a part is added under a row lock on its group, so parts that reach
different replicas, or arrive around a restart, still complete the message exactly once. A group that
stays incomplete past the provider's timeout is delivered with the parts that came, marked incomplete.
"""

from __future__ import annotations

from collections import Counter
from contextlib import suppress
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from .errors import Malformed
from .messages import InboundMessage, SegmentInfo, utcnow
from .store.models import SegmentGroup, SegmentPart

_OPEN = text("completed_at IS NULL")
#: A concatenated SMS has at most 255 parts (one octet counts them).
MAX_PARTS = 255
# Waiting for a group's lock can end with the group completed by the transaction we waited for; each
# attempt then starts over against what that transaction committed. Two attempts settle every case but
# a storm of messages reusing one reference; a third is margin.
_LOCK_ATTEMPTS = 3


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


def checked(part: InboundMessage) -> SegmentInfo:
    """The part's segment information; :class:`Malformed` when it cannot be a part of anything."""
    seg = part.segment
    assert seg is not None
    if not 1 <= seg.total <= MAX_PARTS or not 1 <= seg.sequence <= seg.total:
        raise Malformed(f"segment {seg.sequence} of {seg.total} (reference {seg.reference}): the sequence must be "
                        f"between 1 and the total, and the total between 1 and {MAX_PARTS}")
    return seg


async def add_part(session: AsyncSession, part: InboundMessage) -> InboundMessage | None:
    """Buffer one part; return the message to store now, or ``None``.

    That message is the whole one when this part completes its group. When the open group under the same
    (provider, from, to, reference) counts a different total, the handset has reused the reference for a
    new message: the earlier one is returned with the parts it got, marked incomplete, and this part starts
    a group of its own. A part already seen (same provider message id) changes nothing and returns ``None``.

    :raises Malformed: the sequence is not between 1 and the total.
    """
    seg = checked(part)
    for _ in range(_LOCK_ATTEMPTS):
        # Checked again on every attempt: the transaction we waited for may have added this very part.
        if await _seen(session, part):
            return None
        group = await _lock_open_group(session, part)
        if group is not None:
            break
    else:
        raise RuntimeError(f"could not lock an open segment group for reference {seg.reference}")
    if await _seen(session, part):
        if not await _has_parts(session, group):
            await session.delete(group)  # opened for this duplicate alone
        return None
    displaced: InboundMessage | None = None
    if group.total != seg.total:
        displaced = await _complete(session, group, _template(group), incomplete=True)
        await session.flush()  # the old group is closed, which frees its key for the new one
        group = await _lock_open_group(session, part)
        assert group is not None  # nothing else can hold the key while this transaction holds the old group
    same_sequence = select(SegmentPart.id).where(SegmentPart.group_id == group.id,
                                                 SegmentPart.sequence == seg.sequence)
    if (await session.exec(same_sequence)).first() is not None:
        return displaced  # the same part again under a new id: the first copy stands
    session.add(SegmentPart(
        group_id=group.id, provider=part.provider, provider_message_id=part.provider_message_id,
        sequence=seg.sequence, text=part.text, payload=seg.payload, encoding=seg.encoding, received_at=utcnow(),
    ))
    await session.flush()
    count = (await session.exec(select(func.count()).where(SegmentPart.group_id == group.id))).scalar_one()
    if count < group.total:
        return displaced
    assert displaced is None  # a new group holds one part, and a group has at least two
    return await _complete(session, group, part, incomplete=False)


async def _seen(session: AsyncSession, part: InboundMessage) -> bool:
    stmt = select(SegmentPart.id).where(SegmentPart.provider == part.provider,
                                        SegmentPart.provider_message_id == part.provider_message_id)
    return (await session.exec(stmt)).first() is not None


async def _lock_open_group(session: AsyncSession, part: InboundMessage) -> SegmentGroup | None:
    """The open group for ``part``'s key, created if needed and locked; ``None`` if it completed meanwhile."""
    seg = part.segment
    assert seg is not None
    key = dict(provider=part.provider, from_number=part.from_number, to_number=part.to_number,
               reference=seg.reference)
    await session.exec(
        _insert(session)(SegmentGroup).values(**key, total=seg.total, first_received_at=utcnow())
        .on_conflict_do_nothing(index_elements=list(key), index_where=_OPEN)
    )
    # PostgreSQL re-checks the WHERE clause once the lock is granted: a group that another replica
    # completed while we waited no longer matches, and the caller starts over.
    stmt = select(SegmentGroup).filter_by(**key).where(SegmentGroup.completed_at.is_(None)).with_for_update()
    return (await session.exec(stmt)).scalars().first()


def _template(group: SegmentGroup) -> InboundMessage:
    return InboundMessage(provider=group.provider, provider_message_id="", from_number=group.from_number,
                          to_number=group.to_number)


async def _complete(
    session: AsyncSession, group: SegmentGroup, template: InboundMessage, *, incomplete: bool
) -> InboundMessage:
    parts = (await session.exec(
        select(SegmentPart).where(SegmentPart.group_id == group.id).order_by(SegmentPart.sequence)
    )).scalars().all()
    group.completed_at = utcnow()
    runs = _runs(parts)
    details = {**template.details, "parts": ",".join(p.provider_message_id for p in parts),
               "sequences": ",".join(str(p.sequence) for p in parts), "total": str(group.total)}
    arrived = {p.sequence for p in parts}
    missing = [str(n) for n in range(1, group.total + 1) if n not in arrived]
    if missing:
        details["missing"] = ",".join(missing)
    return replace(
        template, provider_message_id=parts[0].provider_message_id, text=_join(runs), segment=None,
        num_segments=group.total, incomplete=incomplete, details=details,
        received_at=min(p.received_at for p in parts),
    )


def _runs(parts: list[SegmentPart]) -> list[list[SegmentPart]]:
    """Parts (in sequence order) cut into runs of consecutive sequence numbers."""
    runs: list[list[SegmentPart]] = []
    for part in parts:
        if runs and runs[-1][-1].sequence + 1 == part.sequence:
            runs[-1].append(part)
        else:
            runs.append([part])
    return runs


def _join(runs: list[list[SegmentPart]]) -> str:
    """The text of the parts: their bytes joined and decoded when they carry bytes, else their texts joined.

    Bytes are joined before decoding because a character may straddle two parts; each run of consecutive
    parts is decoded on its own, so that the halves of two different characters on either side of a
    missing part are never glued into a wrong one. Providers that guess a part's codec may guess
    differently for a short part: the codec most parts agree on is tried first, and the first that reads
    every run cleanly wins.
    """
    parts = [p for run in runs for p in run]
    if not all(p.payload is not None and p.encoding for p in parts):
        return "".join(p.text for p in parts)
    counts = Counter(p.encoding or "" for p in parts)
    for encoding in sorted(counts, key=lambda e: -counts[e]):  # stable: ties keep the order of first use
        try:
            return _decode(runs, encoding, "strict")
        except (UnicodeDecodeError, LookupError):
            continue
    if len(counts) == 1:
        # One codec that the host knows, and bytes it cannot read whole: keep what reads, mark the rest.
        with suppress(LookupError):
            return _decode(runs, next(iter(counts)), "replace")
    return "".join(p.text for p in parts)


def _decode(runs: list[list[SegmentPart]], encoding: str, errors: str) -> str:
    return "".join(b"".join(p.payload or b"" for p in run).decode(encoding, errors) for run in runs)


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
        whole.append(await _complete(session, group, _template(group), incomplete=True))
    return whole
