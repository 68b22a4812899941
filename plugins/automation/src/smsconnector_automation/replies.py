"""Routing a consumer's reply to an automated text by the policy its send carried.

A reply answers the last thing the consumer got from that brand number: once anything else was sent to them
after the automated text (an agent's message, an auto-reply), their texts are no longer replies to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from smsconnector.plugin import InboundMessage, Routing
from smsconnector.store.models import Conversation, Message

from .models import AGENT, AUTO_REPLY, AutomationSend
from .settings import NAME, Settings


async def route(settings: Settings, session: AsyncSession, message: InboundMessage,
                conversation: Conversation | None, now: datetime) -> Routing | None:
    """The routing a reply to a live automated text asks for, or ``None`` to let routing go on as usual."""
    send = (await session.exec(
        select(AutomationSend)
        .where(col(AutomationSend.consumer_number) == message.from_number,
               col(AutomationSend.brand_number) == message.to_number)
        .order_by(col(AutomationSend.message_id).desc()).limit(1)
    )).first()
    if send is None or send.reply_until <= now:
        return None
    if send.answered_at is not None and send.reply_policy in (AGENT, AUTO_REPLY):
        return None  # answered once already: the conversation it opened carries on as any other
    if await _spoken_since(session, send):
        return None
    automated = await session.get(Message, send.message_id)
    assert automated is not None
    context = _context(send, automated)
    send.answered_at = send.answered_at or now
    if send.reply_policy == AGENT:
        # A conversation someone is already handling keeps its agent; otherwise the reply gets one of its own.
        fresh = conversation is None or conversation.status == "automated"
        return Routing(handled_by=NAME, skill=send.skill, entry_point=NAME, context=context, new_conversation=fresh)
    if send.reply_policy == AUTO_REPLY:
        return Routing(handled_by=NAME, to_agent=False, entry_point=NAME, context=context,
                       replies=(settings.auto_reply_for(send.campaign),))
    return Routing(handled_by=NAME, to_agent=False, entry_point=NAME, context=context, notes=(
        f"A reply to an automated '{send.campaign}' message whose replies are not handled.",))


async def _spoken_since(session: AsyncSession, send: AutomationSend) -> bool:
    later = (await session.exec(
        select(Message.id).where(col(Message.direction) == "outbound",
                                 col(Message.to_number) == send.consumer_number,
                                 col(Message.from_number) == send.brand_number,
                                 col(Message.id) > send.message_id).limit(1)
    )).first()
    return later is not None


def _context(send: AutomationSend, automated: Message) -> dict[str, Any]:
    """What the agent sees: the campaign, the automated text itself, and what the brand's system said."""
    shown: dict[str, Any] = {"campaign": send.campaign, "automated_message": {
        "id": automated.id, "text": automated.body, "message_class": send.message_class,
        "queued_at": automated.created_at.isoformat()}}
    if send.context:
        shown["details"] = dict(send.context)
    return shown
