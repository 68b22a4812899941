"""``POST /api/automation/messages``: a brand's system sends automated texts to one or many recipients."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconnector import idempotency
from smsconnector.endpoints import json_body, require_token
from smsconnector.plugin import AGENT_TEXT_LIMIT, MessageClass, MessageRejected, brand_number, mobile_number, utcnow

from . import sends
from .models import AGENT
from .settings import NAME

if TYPE_CHECKING:
    from smsconnector.plugin import App

    from .hooks import Automation

Label = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=AGENT_TEXT_LIMIT)]
Detail = Annotated[str, StringConstraints(max_length=500)] | int | float | bool | None
#: "transactional" is the brand's word for what compliance calls informational.
CLASSES: dict[str, MessageClass] = {"informational": "informational", "transactional": "informational",
                                    "marketing": "marketing"}


class RecipientBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    #: this recipient's own text (an appointment time); the request's ``text`` otherwise
    text: Text | None = None
    #: shown to the agent if they reply (appointment id, account...)
    context: dict[Label, Detail] = Field(default_factory=dict, max_length=50)


class SendBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", min_length=1, max_length=40)
    campaign: Label
    message_class: Literal["informational", "transactional", "marketing"]
    reply_policy: Literal["agent", "auto_reply", "ignore"]
    skill: Label | None = None
    reply_window_minutes: int | None = Field(None, ge=1, le=30 * 24 * 60)
    text: Text | None = None
    recipients: list[RecipientBody] = Field(min_length=1)


PATH = "/api/automation/messages"


def routes(plugin: Automation, app: App) -> list[Route]:
    async def send(request: Request) -> Response:
        return await _send(plugin, app, request)

    return [Route(PATH, send, methods=["POST"])]


async def _send(plugin: Automation, app: App, request: Request) -> Response:
    """Queue the request's texts; with an ``Idempotency-Key``, a retry is answered the first result."""
    settings = plugin.settings
    require_token(request, settings.token, setting=f"plugins.{NAME}.token")
    raw = await app.read_body(request, limit=settings.max_body_bytes)
    keyed = idempotency.requested(request, raw, caller=NAME, endpoint=f"POST {PATH}", status=202)
    if keyed is not None and (answered := await idempotency.recorded(app.store, keyed)) is not None:
        return answered
    body = json_body(raw, SendBody)
    brand = brand_number(app.config, body.from_, field="from")
    if body.reply_policy == AGENT and body.skill is None:
        raise MessageRejected("skill: required when reply_policy is 'agent'", code="invalid_request")
    if body.reply_policy != AGENT and body.skill is not None:
        raise MessageRejected(f"skill: only replies under reply_policy 'agent' go to a skill, not under "
                              f"'{body.reply_policy}'", code="invalid_request")
    if body.skill is not None:
        plugin.known_skill(body.skill)
    if len(body.recipients) > settings.max_recipients:
        raise MessageRejected(f"recipients: {len(body.recipients)} in one request; the limit is "
                              f"{settings.max_recipients}", code="too_many_recipients")
    batch = sends.Batch(brand=brand, campaign=body.campaign, message_class=CLASSES[body.message_class],
                        reply_policy=body.reply_policy, skill=body.skill,
                        reply_window=timedelta(minutes=body.reply_window_minutes or settings.reply_window_minutes),
                        recipients=_recipients(body, settings.default_region))
    now = utcnow()
    try:
        async with app.store.transaction() as session:
            await idempotency.claim(session, keyed)  # first: a request that loses it queues nothing
            queued = await sends.queue(session, batch, now)
            response = JSONResponse({
                "campaign": batch.campaign, "message_class": batch.message_class, "reply_policy": batch.reply_policy,
                "reply_until": (now + batch.reply_window).isoformat(),
                "messages": [{"to": s.consumer_number, "message_id": s.message_id} for s in queued]}, status_code=202)
            await idempotency.record(session, keyed, response)  # with the texts, or not at all
    except idempotency.Taken:
        assert keyed is not None
        return await idempotency.settle(app.store, keyed)
    return response


def _recipients(body: SendBody, region: str) -> tuple[sends.Recipient, ...]:
    """Every recipient checked before anything is queued: one bad one refuses the whole request."""
    seen: dict[str, int] = {}
    recipients = []
    for index, recipient in enumerate(body.recipients):
        to = mobile_number(recipient.to, field=f"recipients.{index}.to", region=region)
        if to in seen:
            raise MessageRejected(f"recipients.{index}.to: {to} is already recipient {seen[to]}",
                                  code="duplicate_recipient")
        seen[to] = index
        text = recipient.text or body.text
        if text is None:
            raise MessageRejected(f"recipients.{index}.text: no text for this recipient and none for the request",
                                  code="invalid_request")
        recipients.append(sends.Recipient(to=to, text=text, context=dict(recipient.context)))
    return tuple(recipients)

