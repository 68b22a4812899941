"""Offering a caller on hold a text conversation, and routing the reply they send."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from smsconnector.plugin import ConsentSignal, Routing, start_conversation

from .models import ANSWERED, EXPIRED, PENDING, SUPERSEDED, Deflection
from .settings import NAME

if TYPE_CHECKING:
    from smsconnector.config import NumberSettings
    from smsconnector.plugin import App, InboundMessage
    from smsconnector.store.models import Conversation


@dataclass(frozen=True, slots=True)
class Offer:
    """A validated deflection request."""

    caller: str
    brand: NumberSettings
    skill: str
    text: str
    expires_after: timedelta
    call_id: str | None = None
    menu_path: tuple[str, ...] = ()
    answers: dict[str, Any] = field(default_factory=dict)

    def context(self) -> dict[str, Any]:
        """What the agent sees on the conversation: where in the call the caller chose to text."""
        shown: dict[str, Any] = {"call_id": self.call_id, "menu_path": list(self.menu_path),
                                 "answers": dict(self.answers)}
        return {key: value for key, value in shown.items() if value}


async def offer(app: App, session: AsyncSession, request: Offer, now: datetime) -> Deflection:
    """Open an automated conversation carrying the call's context and queue the opening text, in ``session``.

    :raises Conflict: the caller already has a conversation with this number that a person is handling.
    """
    # Conversational: the caller asked for this text, as a consumer who texted in would have.
    started = await start_conversation(session, entry_point=NAME, consumer=request.caller, brand=request.brand,
                                       skill=request.skill, text=request.text, now=now, context=request.context(),
                                       message_class="conversational")
    if started.replaced is not None:  # nobody was working on it: this offer replaces the one it carried
        await session.exec(update(Deflection).where(col(Deflection.conversation_id) == started.replaced.id,
                                                    col(Deflection.status) == PENDING).values(status=SUPERSEDED))
    conversation, message = started.conversation, started.message
    assert conversation.id is not None and message.id is not None
    deflection = Deflection(conversation_id=conversation.id, message_id=message.id, caller=request.caller,
                            brand_number=request.brand.number, skill=request.skill, call_id=request.call_id,
                            created_at=now, expires_at=now + request.expires_after)
    session.add(deflection)
    await _record_consent(app, session, request)
    await session.flush()
    return deflection


async def _record_consent(app: App, session: AsyncSession, request: Offer) -> None:
    """Report that the caller asked to be texted: the consent ledger (the compliance plugin) keeps the evidence."""
    path = f" (menu {' > '.join(request.menu_path)})" if request.menu_path else ""
    await app.hooks.consent_signal(ConsentSignal(
        consumer_number=request.caller, brand_number=request.brand.number, action="consent",
        consent_class="conversational", method="ivr",
        source=f"IVR call {request.call_id}" if request.call_id else "IVR deflection",
        consumer_action=f"chose to be texted while on hold{path}", recorded_by=NAME,
    ), session)


async def answer(app: App, session: AsyncSession, message: InboundMessage, conversation: Conversation,
                 now: datetime) -> Routing | None:
    """Route a reply in a deflected conversation: to the offer's skill, or afresh once the offer has lapsed."""
    deflection = (await session.exec(
        select(Deflection).where(col(Deflection.conversation_id) == conversation.id, col(Deflection.status) == PENDING)
    )).first()
    if deflection is None:
        return None
    if now < deflection.expires_at:
        deflection.status, deflection.answered_at = ANSWERED, now
        return Routing(handled_by=NAME, skill=deflection.skill, entry_point=NAME, context=dict(conversation.context))
    deflection.status = EXPIRED
    # The caller's moment has passed: the reply starts a conversation of its own, as any text to this
    # number would, and the stale offer is closed by the host.
    number = app.config.number(message.to_number)
    call = f" on IVR call {deflection.call_id}" if deflection.call_id else ""
    return Routing(handled_by=NAME, skill=number.skill if number else None, new_conversation=True, notes=(
        f"The consumer was offered a text{call}, but replied after the offer lapsed at "
        f"{deflection.expires_at:%Y-%m-%d %H:%M} UTC: routed as a new conversation.",))
