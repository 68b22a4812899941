"""``GET /api/adkeywords/stats``: matches per keyword and per campaign, for administrators."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import counts

if TYPE_CHECKING:
    from smsconnector.plugin import App

    from .hooks import AdKeywords


def routes(plugin: AdKeywords, app: App) -> list[Route]:
    async def stats(request: Request) -> Response:
        await app.auth.require(request, "admin")
        async with app.store.session() as session:
            return JSONResponse(await counts.stats(session, plugin.matcher.keywords))

    return [Route("/api/adkeywords/stats", stats, methods=["GET"])]
