"""Stored rows as the API shows them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..messages import CONSUMER_PIECE_LIMIT
from ..store.models import Agent, AgentSkill, Conversation, Message
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


def message_out(message: Message) -> list[MessageOut]:
    """One item per piece: consumer texts over the piece limit are shown as several consecutive messages."""
    assert message.id is not None
    texts = pieces(message.body) if message.direction == "inbound" else [message.body]
    return [
        MessageOut(
            id=message.id, direction=message.direction, text=text, piece=n, pieces=len(texts),  # type: ignore[arg-type]
            media=message.media, status=message.status, error_code=message.error_code,  # type: ignore[arg-type]
            error_message=message.error_message, agent_id=message.agent_id, handled_by=message.handled_by,
            notes=message.notes, incomplete=message.incomplete, created_at=message.created_at,
            updated_at=message.updated_at,
        )
        for n, text in enumerate(texts, start=1)
    ]


def conversation_out(conversation: Conversation) -> ConversationOut:
    return ConversationOut.model_validate(conversation, from_attributes=True)


async def conversation_detail(session: AsyncSession, conversation: Conversation) -> ConversationDetail:
    stmt = select(Message).where(Message.conversation_id == conversation.id).order_by(Message.created_at, Message.id)
    messages = (await session.exec(stmt)).scalars().all()
    return ConversationDetail(**conversation_out(conversation).model_dump(),
                              messages=[item for m in messages for item in message_out(m)])


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
