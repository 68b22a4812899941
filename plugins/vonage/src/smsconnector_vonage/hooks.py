"""The Vonage provider: its hook implementations, delegating to the modules beside this one."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from smsconnector.plugin import (
    InboundMessage,
    OutboundMessage,
    Received,
    SegmentPolicy,
    SendResult,
    StatusUpdate,
    WebhookRequest,
    hookimpl,
    plugin_settings,
)

from . import client, normalize, receive
from .settings import NAME, Settings

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from smsconnector.plugin import App

STATUS_PATH = f"/webhooks/{NAME}/status"
#: Vonage calls a webhook with GET or POST, as the account's settings say.
WEBHOOK_METHODS = frozenset({"GET", "POST"})


class VonagePlugin:
    """One per app: the parsed settings and the pooled send client."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.client: client.SmsClient | None = None

    @hookimpl
    def smsconnector_configure(self, app: App) -> None:
        """Read and check ``[plugins.vonage]``."""
        self.settings = plugin_settings(app.config, NAME, Settings)

    @hookimpl
    async def smsconnector_startup(self) -> None:
        """Open the pooled send client (in the event loop that sends)."""
        self.client = client.new_client(self.settings)

    @hookimpl
    async def smsconnector_shutdown(self) -> None:
        """Close the send client."""
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    @hookimpl
    def smsconnector_webhook_methods(self, provider: str) -> Collection[str] | None:
        """Vonage's inbound webhooks and receipts come as GET or POST, as the account is configured."""
        return WEBHOOK_METHODS if provider == NAME else None

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
