"""``POST /api/ivr/deflections``: what an IVR calls for a caller on hold who chose to be texted instead."""

from __future__ import annotations

import hmac
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconnector.auth import bearer_token
from smsconnector.errors import Malformed, MessageRejected, TooLarge, Unauthenticated
from smsconnector.messages import InvalidNumber, to_e164, utcnow

from . import deflections
from .numbers import mobile_number
from .settings import NAME

if TYPE_CHECKING:
    from smsconnector.app import App
    from smsconnector.config import NumberSettings

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
    _authenticate(request, settings.token)
    body = _parse(await _json(request, app.config.max_body_bytes))
    caller = mobile_number(body.caller, field="caller", region=settings.default_region)
    brand = _brand_number(app, body.brand_number)
    if body.skill not in plugin.skills:
        raise MessageRejected(f"skill: '{body.skill}' is not a known skill (known: {', '.join(sorted(plugin.skills))})",
                              code="unknown_skill")
    offer = deflections.Offer(caller=caller, brand=brand, skill=body.skill, text=settings.template(body.skill),
                              expires_after=timedelta(seconds=settings.expires_after_seconds), call_id=body.call_id,
                              menu_path=tuple(body.menu_path), answers=body.answers)
    async with app.store.transaction() as session:
        deflection = await deflections.offer(app, session, offer, utcnow())
    return JSONResponse({"deflection_id": deflection.id, "conversation_id": deflection.conversation_id,
                         "message_id": deflection.message_id, "expires_at": deflection.expires_at.isoformat()},
                        status_code=202)


def _authenticate(request: Request, token: str | None) -> None:
    if token is None:
        raise Unauthenticated(f"no token is configured for this endpoint: set plugins.{NAME}.token")
    if not hmac.compare_digest(bearer_token(request).encode(), token.encode()):
        raise Unauthenticated("unknown token")


async def _json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise TooLarge(f"body of {len(body)} bytes exceeds the limit of {limit} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise Malformed(f"body is not JSON: {exc}") from None


def _parse(data: Any) -> DeflectionRequest:
    if not isinstance(data, dict):
        raise Malformed("expected a JSON object")
    try:
        return DeflectionRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "body"
        raise MessageRejected(f"{where}: {first['msg']}", code="invalid_request") from None


def _brand_number(app: App, raw: str) -> NumberSettings:
    try:
        number = app.config.number(to_e164(raw))
    except InvalidNumber:
        number = None
    if number is None:
        raise MessageRejected(f"brand_number: {raw} is not one of this deployment's numbers",
                              code="unknown_brand_number")
    return number
