"""The IVR plugin's hooks: configuration, its table, the deflection endpoint, and routing the caller's reply."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from smsconnector.plugin import hookimpl, utcnow

from . import api, deflections, settings
from .settings import NAME, Settings

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession
    from starlette.routing import Route

    from smsconnector.plugin import App, InboundMessage, Routing
    from smsconnector.store.models import Conversation

MIGRATIONS = Path(__file__).parent / "migrations"


class IvrPlugin:
    """One per app: keeps the validated settings and the skills a deflection may name."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.skills: frozenset[str] = frozenset()

    @hookimpl
    def smsconnector_configure(self, app: App) -> None:
        """Read ``[plugins.ivr]``."""
        self.settings = settings.load(app.config)
        self.skills = settings.known_skills(self.settings, app.config)

    @hookimpl
    def smsconnector_migrations(self) -> Path:
        """The ``ivr_deflections`` table, on the ``ivr`` branch."""
        return MIGRATIONS

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
