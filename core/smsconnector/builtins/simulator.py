"""The simulator: a provider with no account behind it, so the product runs end to end on one machine.

It takes messages without credentials (unless ``[plugins.simulator] token`` is set), so it is off until
``[plugins] enabled`` names it; ``smsconnector demo`` and the test fixtures enable it.

Consumers are simulated by posting JSON to ``/webhooks/simulator/inbound``::

    {"id": "sim-1", "from": "+14155550123", "to": "+14155550100", "text": "Hi",
     "media": [{"url": "https://example.com/a.jpg", "content_type": "image/jpeg"}],
     "segment": {"reference": 7, "total": 2, "sequence": 1}}

What the host sends is kept in the memory of the process that sent it (with ``serve --no-worker``, a worker,
which serves no HTTP) and listed at ``GET /simulator/outbox``, and shown, with a form to text the brand, on the
phone page at ``GET /simulator/phone``; each send is reported ``delivered`` shortly after (``auto_deliver``), or
by posting ``{"id": ..., "status": "delivered"}`` to ``/webhooks/simulator/status`` as a real provider would.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconnector import status
from smsconnector.plugin import (
    DeliveryStatus,
    InboundMessage,
    InvalidNumber,
    Malformed,
    Media,
    OutboundMessage,
    Received,
    SegmentInfo,
    SendResult,
    StatusUpdate,
    Unauthenticated,
    WebhookRequest,
    hookimpl,
    plugin_settings,
    segment,
    to_e164,
    to_sender,
)
from smsconnector.web import page

if TYPE_CHECKING:
    from smsconnector.plugin import App

NAME = "simulator"
log = logging.getLogger(__name__)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: when set, webhooks must carry ``Authorization: Bearer <token>``
    token: str | None = None
    #: report every send as delivered after ``delivery_delay_seconds``
    auto_deliver: bool = True
    delivery_delay_seconds: float = 0.05


class Simulator:
    """One simulator per app: it keeps what was sent."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.sent: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    @hookimpl
    def smsconnector_configure(self, app: App) -> None:
        """Read ``[plugins.simulator]``."""
        self.settings = plugin_settings(app.config, NAME, Settings)

    @hookimpl
    def smsconnector_register_routes(self, app: App) -> list[Route]:
        """``GET /simulator/outbox``: what the host has sent through the simulator; ``GET /simulator/phone``: a
        page to text the brand as a consumer and see its answers."""
        brand = next((n.number for n in app.config.numbers if n.provider == NAME), "")

        async def phone(request: Request) -> Response:
            return page(request, "phone.html", title="Consumer phone", brand_number=brand)

        return [Route("/simulator/outbox", self._outbox, methods=["GET"]),
                Route("/simulator/phone", phone, methods=["GET"])]

    @hookimpl
    def smsconnector_receive(self, provider: str, request: WebhookRequest) -> Received | None:
        """Accept simulated consumer messages and delivery reports (JSON)."""
        if provider != NAME:
            return None
        self._authenticate(request.headers.get("authorization", ""))
        data = request.json()
        events = data if isinstance(data, list) else [data]
        if not events or not all(isinstance(e, dict) for e in events):
            raise Malformed("expected a JSON object or a non-empty list of objects")
        for event in events:
            event["_kind"] = request.kind
        return Received(events=events, reply_body=b'{"ok":true}', reply_media_type="application/json")

    @hookimpl
    def smsconnector_normalize(self, provider: str, event: dict[str, Any]) -> InboundMessage | StatusUpdate | None:
        """Map the simulator's JSON to canonical messages."""
        if provider != NAME:
            return None
        try:
            if event["_kind"] == "status":
                return StatusUpdate(provider=NAME, provider_message_id=_text(event, "id"),
                                    status=DeliveryStatus(_text(event, "status")),
                                    error_code=event.get("error_code"), error_message=event.get("error_message"))
            return InboundMessage(
                provider=NAME, provider_message_id=_text(event, "id"), from_number=to_e164(_text(event, "from")),
                to_number=to_sender(_text(event, "to")), text=str(event.get("text", "")),
                media=tuple(Media(str(m["url"]), m.get("content_type")) for m in event.get("media", [])),
                segment=SegmentInfo(**event["segment"]) if event.get("segment") else None,
            )
        except (KeyError, TypeError, ValueError, InvalidNumber) as exc:
            raise Malformed(f"simulator event: {exc}") from None

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage, app: App) -> Any:
        """Keep the message in the outbox and, if configured, report it delivered."""
        if provider != NAME:
            return None
        return self._send(message, app)

    async def _send(self, message: OutboundMessage, app: App) -> SendResult:
        sid = f"SIM{next(self._ids):08d}"
        self.sent.append({"id": sid, "message_id": message.id, "from": message.from_number, "to": message.to_number,
                          "text": message.text, "media": [m.url for m in message.media],
                          "message_class": message.message_class})
        if self.settings.auto_deliver:
            task = asyncio.create_task(self._deliver_later(app, sid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return SendResult(provider_message_id=sid, segments=segment(message.text).count or 1)

    async def _deliver_later(self, app: App, sid: str) -> None:
        await asyncio.sleep(self.settings.delivery_delay_seconds)
        try:
            async with app.store.transaction() as session:
                await status.apply(app, session, StatusUpdate(NAME, sid, DeliveryStatus.DELIVERED))
        except Exception:
            log.exception("simulator: reporting %s delivered failed", sid)

    @hookimpl
    async def smsconnector_shutdown(self) -> None:
        """Stop pending delivery reports."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _authenticate(self, authorization: str) -> None:
        if self.settings.token is not None and not hmac.compare_digest(
            authorization.encode(), f"Bearer {self.settings.token}".encode()
        ):
            raise Unauthenticated("missing or wrong bearer token")

    async def _outbox(self, request: Request) -> JSONResponse:
        self._authenticate(request.headers.get("authorization", ""))
        return JSONResponse(self.sent)


def _text(event: dict[str, Any], key: str) -> str:
    value = event[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{key}' must be a non-empty string")
    return value
