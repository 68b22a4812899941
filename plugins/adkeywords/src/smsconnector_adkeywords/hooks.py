"""The ad keywords plugin's hooks: configuration, its table, the stats endpoint, and claiming keyword texts."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from smsconnector.plugin import hookimpl, utcnow

from . import api, counts, settings
from .keywords import Keyword, Matcher

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession
    from starlette.routing import Route

    from smsconnector.plugin import App, InboundMessage, Routing

MIGRATIONS = Path(__file__).parent / "migrations"


class AdKeywords:
    """One per app: keeps the keywords of every brand number."""

    def __init__(self) -> None:
        self.matcher = Matcher()

    @hookimpl
    def smsconnector_configure(self, app: App) -> None:
        """Read ``[plugins.adkeywords]``; a keyword that is (or contains) a compliance keyword stops start-up."""
        self.matcher = Matcher(settings.load(app.config))

    @hookimpl
    def smsconnector_migrations(self) -> Path:
        """The ``adkeyword_counts`` table, on the ``adkeywords`` branch."""
        return MIGRATIONS

    @hookimpl
    def smsconnector_register_routes(self, app: App) -> list[Route]:
        """``GET /api/adkeywords/stats`` (admin)."""
        return api.routes(self, app)

    @hookimpl
    def smsconnector_route(self, message: InboundMessage, session: AsyncSession) -> Awaitable[Routing] | None:
        """Open a conversation for the campaign's skill when the text is one of the number's keywords."""
        keyword = self.matcher.match(message.to_number, message.text)
        if keyword is None:
            return None
        return _claim(session, keyword)


async def _claim(session: AsyncSession, keyword: Keyword) -> Routing:
    await counts.increment(session, keyword, utcnow())  # counted with the message: both commit, or neither
    return keyword.routing()
