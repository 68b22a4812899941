"""The pages the host serves itself: the agent workspace, the admin pages and (with the simulator) the consumer
phone. Server-rendered HTML from Jinja2 templates, with plain JavaScript modules and CSS from ``static/``; the
scripts call the JSON API (:mod:`smsconnector.api`) with a session token, so a page can show an agent no more than
the API lets that agent see.

Every page is served with a Content-Security-Policy that allows only this host's own scripts and styles (no
inline script, no ``eval``), no framing, and connections only back to this host. A consumer's text reaches the
page as JSON and is put in with ``textContent``, never parsed as HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
#: sent with every page: the policy above, no sniffing, no referrer (a page's URL may carry a sign-in code's
#: fragment, which browsers never send, but nothing else should leak either), and no caching of what an agent saw
PAGE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}

templates = Jinja2Templates(directory=HERE / "templates")


def page(request: Request, template: str, **context: Any) -> HTMLResponse:
    """``template`` rendered (autoescaped) with the headers every page carries."""
    return templates.TemplateResponse(request, template, context, headers=PAGE_HEADERS)


def routes() -> list[BaseRoute]:
    """``/workspace``, ``/admin`` and the pages' static files under ``/static``; ``/`` leads to the workspace."""

    async def workspace(request: Request) -> Response:
        return page(request, "workspace.html", title="Workspace")

    async def admin(request: Request) -> Response:
        return page(request, "admin.html", title="Administration")

    async def home(_request: Request) -> Response:
        return RedirectResponse("/workspace")

    return [
        Route("/", home, methods=["GET"]),
        Route("/workspace", workspace, methods=["GET"]),
        Route("/admin", admin, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
