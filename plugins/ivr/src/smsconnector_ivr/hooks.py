"""The IVR plugin's hooks: configuration and its table (from the entry-point base), the deflection endpoint, and
routing the caller's reply."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from smsconnector.plugin import EntryPoint, hookimpl, utcnow

from . import api, deflections
from .settings import NAME, Settings

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession
    from starlette.routing import Route

    from smsconnector.plugin import App, InboundMessage, Routing
    from smsconnector.store.models import Conversation


class IvrPlugin(EntryPoint[Settings]):
    """One per app: ``[plugins.ivr]``, the skills a deflection may name, and the ``ivr_deflections`` table."""

    name = NAME
    settings_model = Settings
    migrations = Path(__file__).parent / "migrations"

    @hookimpl
    def smsconnector_register_routes(self, app: App) -> list[Route]:
        """``POST /api/ivr/deflections``."""
        return api.routes(self, app)

    @hookimpl
    def smsconnector_route(self, message: InboundMessage, conversation: Conversation | None, app: App,
                           session: AsyncSession) -> Awaitable[Routing | None] | None:
        """Send a reply to a deflection's opening text to the skill the IVR chose, while the offer stands."""
        if conversation is None or conversation.entry_point != NAME or conversation.status != "automated":
            return None
        return deflections.answer(app, session, message, conversation, utcnow())
