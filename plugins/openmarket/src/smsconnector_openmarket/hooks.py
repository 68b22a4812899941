"""The OpenMarket provider: its hook implementations, delegating to the modules beside this one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smsconnector.plugin import (
    InboundMessage,
    OutboundMessage,
    Provider,
    Received,
    SegmentPolicy,
    SendResult,
    StatusUpdate,
    WebhookRequest,
    hookimpl,
)

from . import client, normalize, receive
from .normalize import NAME
from .settings import Settings

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from smsconnector.plugin import App

STATUS_PATH = f"/webhooks/{NAME}/status"


class OpenMarket(Provider[Settings, client.MTClient]):
    """One per app: the parsed settings and the pooled MT client, from start-up to shut-down."""

    name = NAME
    settings_model = Settings

    def open_client(self, settings: Settings) -> client.MTClient | None:
        """The pooled MT client (in the event loop that sends)."""
        return client.new_client(settings)

    @hookimpl
    def smsconnector_receive(self, provider: str, request: WebhookRequest) -> Received | None:
        """Authenticate an MO or a delivery receipt (Basic credentials, allowed networks) and take its event."""
        if provider != NAME:
            return None
        return receive.receive(request, self.settings)

    @hookimpl
    def smsconnector_normalize(self, provider: str, event: Any) -> InboundMessage | StatusUpdate | None:
        """An MO as an inbound message (a part with its segment), a receipt as a status update."""
        if provider != NAME:
            return None
        assert isinstance(event, receive.Event)
        if event.kind == "mo":
            return normalize.inbound_message(event.body, charset=self.settings.inbound_charset,
                                             seven_bit=self.settings.inbound_7bit)
        return normalize.status_update(event.body)

    @hookimpl
    def smsconnector_segment_policy(self, provider: str) -> SegmentPolicy | None:
        """OpenMarket posts each part of a long MO on its own: join them into the message the consumer wrote."""
        return SegmentPolicy.REASSEMBLE if provider == NAME else None

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage, app: App) -> Awaitable[SendResult] | None:
        """Send through the v4 MT API, asking for a receipt per part at our status webhook."""
        if provider != NAME:
            return None
        return client.send(self.client, self.settings, message, receipt_url=app.public_url(STATUS_PATH))
