"""Stored rows as the API shows them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..messages import CONSUMER_PIECE_LIMIT, DeliveryStatus
from ..store.models import Agent, AgentSkill, Conversation, Message, OutboxEntry
from .schemas import AgentOut, ConversationDetail, ConversationOut, MessageOut

_WHITESPACE = (" ", "\n", "\t")


def pieces(text: str, limit: int = CONSUMER_PIECE_LIMIT) -> list[str]:
    """``text`` as consecutive pieces of at most ``limit`` characters that join back into it exactly.

    A piece ends after the last whitespace within the limit when there is one in its second half, so words
    are not cut in two; otherwise it is cut at the limit.
    """
    if len(text) <= limit:
        return [text]
    out: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = max(rest.rfind(c, 0, limit) for c in _WHITESPACE) + 1
        if cut <= limit // 2:
            cut = limit
        out.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        out.append(rest)
    return out


#: the statuses of a message that waits in the outbox for a later time
_WAITING = (DeliveryStatus.DEFERRED.value, DeliveryStatus.RETRYING.value)
#: what the API shows of a message as it is stored
_SHOWN = ("direction", "media", "status", "error_code", "error_message", "agent_id", "handled_by", "notes",
          "incomplete", "created_at", "updated_at")


def message_out(message: Message, next_attempt_at: datetime | None = None) -> list[MessageOut]:
    """One item per piece: consumer texts over the piece limit are shown as several consecutive messages.
    ``next_attempt_at``: when the outbox tries a deferred or retrying message next."""
    assert message.id is not None
    texts = pieces(message.body) if message.direction == "inbound" else [message.body]
    shown = {name: getattr(message, name) for name in _SHOWN}
    return [MessageOut(id=message.id, text=text, piece=n, pieces=len(texts), next_attempt_at=next_attempt_at, **shown)
            for n, text in enumerate(texts, start=1)]


def queued_out(message_id: int, row: Mapping[str, Any]) -> MessageOut:
    """An outbound message just stored from ``row`` (see :func:`smsconnector.outbound.draft`)."""
    return MessageOut(id=message_id, text=row["body"], piece=1, pieces=1, **{name: row[name] for name in _SHOWN})


def conversation_out(conversation: Conversation) -> ConversationOut:
    return ConversationOut.model_validate(conversation, from_attributes=True)


async def conversation_detail(session: AsyncSession, conversation: Conversation) -> ConversationDetail:
    stmt = select(Message).where(Message.conversation_id == conversation.id).order_by(Message.created_at, Message.id)
    messages = (await session.exec(stmt)).scalars().all()
    due = await next_attempts(session, [m.id for m in messages if m.id is not None and m.status in _WAITING])
    return ConversationDetail(**conversation_out(conversation).model_dump(),
                              messages=[item for m in messages for item in message_out(m, due.get(m.id or 0))])


async def next_attempts(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, datetime]:
    """When the outbox tries each of ``message_ids`` next (those still in it)."""
    if not message_ids:
        return {}
    stmt = select(OutboxEntry.message_id, OutboxEntry.due_at).where(OutboxEntry.message_id.in_(message_ids))
    return dict((await session.exec(stmt)).all())  # type: ignore[arg-type]


async def agents_out(session: AsyncSession, agents: Sequence[Agent]) -> list[AgentOut]:
    """The agents with their skills and current load, in two queries whatever their number."""
    ids = [a.id for a in agents]
    skills: dict[int, list[str]] = {i: [] for i in ids if i is not None}
    for agent_id, skill in (await session.exec(
        select(AgentSkill.agent_id, AgentSkill.skill).where(AgentSkill.agent_id.in_(ids)).order_by(AgentSkill.skill)
    )).all():
        skills[agent_id].append(skill)
    loads = dict((await session.exec(
        select(Conversation.agent_id, func.count()).where(Conversation.agent_id.in_(ids),
                                                          Conversation.status == "assigned")
        .group_by(Conversation.agent_id)
    )).all())
    return [
        AgentOut(id=a.id, name=a.name, status=a.status, max_concurrent=a.max_concurrent,  # type: ignore[arg-type]
                 skills=skills.get(a.id, []), open_conversations=loads.get(a.id, 0),  # type: ignore[arg-type]
                 last_assigned_at=a.last_assigned_at, created_at=a.created_at)
        for a in agents
    ]


async def agent_out(session: AsyncSession, agent: Agent) -> AgentOut:
    return (await agents_out(session, [agent]))[0]
