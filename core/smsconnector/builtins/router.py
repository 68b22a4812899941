"""The default router: runs last, after compliance and entry points, and sends the consumer to an agent.

A message continues its open conversation (with its agent, when it has one); a new conversation goes to
the skill of the brand number it was sent to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smsconnector.decisions import Routing
from smsconnector.plugins import hookimpl

if TYPE_CHECKING:
    from smsconnector.app import App
    from smsconnector.messages import InboundMessage
    from smsconnector.store.models import Conversation


@hookimpl(trylast=True)
def smsconnector_route(message: InboundMessage, conversation: Conversation | None, app: App) -> Routing:
    """Continue the open conversation, or queue a new one for the brand number's skill."""
    if conversation is not None and conversation.is_open:
        return Routing(handled_by="router", skill=conversation.skill, agent_id=conversation.agent_id)
    number = app.config.number(message.to_number)
    return Routing(handled_by="router", skill=number.skill if number else "default")
