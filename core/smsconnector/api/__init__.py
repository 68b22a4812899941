"""The JSON API for agents and administrators, one module per resource, and its OpenAPI document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from . import agents, conversations, events, messages, sessions, skills, workspace  # noqa: F401  (each declares its endpoints)
from .endpoints import ENDPOINTS, Endpoint
from .skills import ensure_skills

if TYPE_CHECKING:
    from ..app import App

__all__ = ["ENDPOINTS", "Endpoint", "ensure_skills", "routes"]


def routes(app: App) -> list[BaseRoute]:
    """The API's routes, and ``GET /openapi.json`` (public: it describes, it does not reveal)."""

    async def openapi_json(_request: Request) -> JSONResponse:
        from ..openapi import document

        return JSONResponse(document())

    return [*(e.route(app) for e in ENDPOINTS), Route("/openapi.json", openapi_json, methods=["GET"])]
