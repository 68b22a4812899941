"""The ad keywords plugin's hooks: configuration and its table (from the entry-point base), the stats endpoint,
and claiming keyword texts."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from smsconnector.plugin import EntryPoint, hookimpl, utcnow

from . import api, counts
from .keywords import NAME, Keyword, Matcher
from .settings import Settings, keywords_of

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession
    from starlette.routing import Route

    from smsconnector.plugin import App, InboundMessage, Routing


class AdKeywords(EntryPoint[Settings]):
    """One per app: keeps the keywords of every brand number, and the ``adkeyword_counts`` table."""

    name = NAME
    settings_model = Settings
    migrations = Path(__file__).parent / "migrations"

    def __init__(self) -> None:
        super().__init__()
        self.matcher = Matcher()

    def configure(self, app: App) -> None:
        """The keywords; one that is (or contains) a compliance keyword stops start-up."""
        self.matcher = Matcher(keywords_of(app.config, self.settings))

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
