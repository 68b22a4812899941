"""The Vonage provider: its hook implementations, delegating to the modules beside this one."""

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
from .settings import NAME, Settings

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from smsconnector.plugin import App

STATUS_PATH = f"/webhooks/{NAME}/status"


class VonagePlugin(Provider[Settings, client.SmsClient]):
    """One per app: the parsed settings and the pooled send client, from start-up to shut-down."""

    name = NAME
    settings_model = Settings
    #: Vonage calls a webhook with GET or POST, as the account's settings say.
    webhook_methods = frozenset({"GET", "POST"})

    def open_client(self, settings: Settings) -> client.SmsClient | None:
        """The pooled send client (in the event loop that sends)."""
        return client.new_client(settings)

    @hookimpl
    def smsconnector_receive(self, provider: str, request: WebhookRequest) -> Received | None:
        """Check an inbound message's or a receipt's signature and take its parameters as one event."""
        if provider != NAME:
            return None
        return receive.receive(request, self.settings)

    @hookimpl
    def smsconnector_normalize(self, provider: str, event: Any) -> InboundMessage | StatusUpdate | None:
        """An inbound message (a part with its segment) as such, a receipt as a status update for its part."""
        if provider != NAME:
            return None
        assert isinstance(event, receive.VonageEvent)
        if event.kind == "status":
            return normalize.status_update(event.params)
        return normalize.inbound_message(event.params)

    @hookimpl
    def smsconnector_segment_policy(self, provider: str) -> SegmentPolicy | None:
        """Vonage posts each part of a long message on its own: join them into the message the consumer wrote."""
        return SegmentPolicy.REASSEMBLE if provider == NAME else None

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage, app: App) -> Awaitable[SendResult] | None:
        """Send through the SMS API, asking for a receipt per part at our status webhook."""
        if provider != NAME:
            return None
        return client.send(self.client, message, callback=app.public_url(STATUS_PATH))
