"""The automation plugin's hooks: configuration, its table, the send endpoint, and routing replies by policy."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from smsconnector.plugin import hookimpl, utcnow

from . import api, replies, settings
from .settings import Settings

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession
    from starlette.routing import Route

    from smsconnector.plugin import App, InboundMessage, Routing
    from smsconnector.store.models import Conversation

MIGRATIONS = Path(__file__).parent / "migrations"


class Automation:
    """One per app: keeps the validated settings and the skills a send may route replies to."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.skills: frozenset[str] = frozenset()

    @hookimpl
    def smsconnector_configure(self, app: App) -> None:
        """Read ``[plugins.automation]``."""
        self.settings = settings.load(app.config)
        self.skills = settings.known_skills(self.settings, app.config)

    @hookimpl
    def smsconnector_migrations(self) -> Path:
        """The ``automation_sends`` table, on the ``automation`` branch."""
        return MIGRATIONS

    @hookimpl
    def smsconnector_register_routes(self, app: App) -> list[Route]:
        """``POST /api/automation/messages``."""
        return api.routes(self, app)

    @hookimpl
    def smsconnector_route(self, message: InboundMessage, conversation: Conversation | None,
                           session: AsyncSession) -> Awaitable[Routing | None]:
        """Handle a reply to a live automated text as its send asked: an agent, an auto-reply, or nothing."""
        return replies.route(self.settings, session, message, conversation, utcnow())
