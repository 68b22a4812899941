"""``POST /api/ivr/deflections``: what an IVR calls for a caller on hold who chose to be texted instead."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconnector.endpoints import json_model, require_token
from smsconnector.plugin import brand_number, mobile_number, utcnow

from . import deflections
from .settings import NAME

if TYPE_CHECKING:
    from smsconnector.plugin import App

    from .hooks import IvrPlugin

Label = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Answer = Annotated[str, StringConstraints(max_length=500)] | int | float | bool | None


class DeflectionRequest(BaseModel):
    """The request body."""

    model_config = ConfigDict(extra="forbid")

    caller: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    brand_number: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    skill: Label
    call_id: Label | None = None
    #: the menu choices that led here, e.g. ["billing", "card lost"]
    menu_path: list[Label] = Field(default_factory=list, max_length=20)
    #: what the caller entered on the way (account number, reason...)
    answers: dict[Label, Answer] = Field(default_factory=dict, max_length=50)


def routes(plugin: IvrPlugin, app: App) -> list[Route]:
    async def create(request: Request) -> Response:
        return await _create(plugin, app, request)

    return [Route("/api/ivr/deflections", create, methods=["POST"])]


async def _create(plugin: IvrPlugin, app: App, request: Request) -> Response:
    settings = plugin.settings
    require_token(request, settings.token, setting=f"plugins.{NAME}.token")
    body = await json_model(app, request, DeflectionRequest)
    caller = mobile_number(body.caller, field="caller", region=settings.default_region)
    brand = brand_number(app.config, body.brand_number, field="brand_number")
    skill = plugin.known_skill(body.skill)
    offer = deflections.Offer(caller=caller, brand=brand, skill=skill, text=settings.template(skill),
                              expires_after=timedelta(seconds=settings.expires_after_seconds), call_id=body.call_id,
                              menu_path=tuple(body.menu_path), answers=body.answers)
    async with app.store.transaction() as session:
        deflection = await deflections.offer(app, session, offer, utcnow())
    return JSONResponse({"deflection_id": deflection.id, "conversation_id": deflection.conversation_id,
                         "message_id": deflection.message_id, "expires_at": deflection.expires_at.isoformat()},
                        status_code=202)

