"""The automation plugin's hooks: configuration and its table (from the entry-point base), the send endpoint, and
routing replies by policy."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from smsconnector.plugin import EntryPoint, hookimpl, utcnow

from . import api, replies
from .settings import NAME, Settings

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession
    from starlette.routing import Route

    from smsconnector.plugin import App, InboundMessage, Routing
    from smsconnector.store.models import Conversation


class Automation(EntryPoint[Settings]):
    """One per app: ``[plugins.automation]``, the skills a send may route replies to, and ``automation_sends``."""

    name = NAME
    settings_model = Settings
    migrations = Path(__file__).parent / "migrations"

    @hookimpl
    def smsconnector_register_routes(self, app: App) -> list[Route]:
        """``POST /api/automation/messages``."""
        return api.routes(self, app)

    @hookimpl
    def smsconnector_route(self, message: InboundMessage, conversation: Conversation | None,
                           session: AsyncSession) -> Awaitable[Routing | None]:
        """Handle a reply to a live automated text as its send asked: an agent, an auto-reply, or nothing."""
        return replies.route(self.settings, session, message, conversation, utcnow())
