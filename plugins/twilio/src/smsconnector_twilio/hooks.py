"""The plugin's hook implementations; each one delegates to a small module of this package."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
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

from . import webhook
from .client import close_client, make_client
from .send import STATUS_CALLBACK_PATH, MessageSender
from .settings import NAME, Settings

if TYPE_CHECKING:
    from datetime import datetime

    from twilio.rest import Client

    from smsconnector.plugin import App

log = logging.getLogger(__name__)


class TwilioPlugin(Provider[Settings, "Client"]):
    """Twilio as a provider. One per app: it holds the account's client, and the sender over it, from start-up
    to shut-down; without a ``[plugins.twilio]`` section it stays idle."""

    name = NAME
    settings_model = Settings
    #: Twilio calls a webhook with the method set on the number (or Messaging Service): POST, or GET
    webhook_methods = frozenset({"GET", "POST"})

    def __init__(self) -> None:
        super().__init__()
        self.sender: MessageSender | None = None
        #: REST calls in flight at once: the client's pool and the sender's limit (known once configured)
        self.in_flight = 0

    @hookimpl
    def smsconnector_configure(self, app: App) -> None:
        """Read ``[plugins.twilio]``; without that section the plugin stays idle (installed, not used)."""
        if not app.config.plugin(NAME):
            log.info("twilio: no [plugins.%s] section; webhooks and sends for '%s' are refused", NAME, NAME)
            return
        super().smsconnector_configure(app)

    def configure(self, app: App) -> None:
        """Size the sends in flight; warn when sends can carry no status callback."""
        self.in_flight = self.settings.max_concurrent_requests or app.config.sender.concurrency
        if app.config.public_url is None:
            log.warning("twilio: public_url is not set, so sends carry no StatusCallback: delivery reports come "
                        "only from a Messaging Service's own status callback URL")

    def open_client(self, settings: Settings) -> Client:
        """The account's client: its connection pool, sized to the sends allowed in flight."""
        return make_client(settings, pool_size=self.in_flight)

    @hookimpl
    async def smsconnector_startup(self, app: App) -> None:
        """Open the account's client, and the sender over it."""
        await super().smsconnector_startup(app)
        if self.client is None:
            return
        callback = app.public_url(STATUS_CALLBACK_PATH) if app.config.public_url else None
        self.sender = MessageSender(self.client, self.settings, in_flight=self.in_flight, status_callback=callback)
        log.info("twilio: account %s ready, up to %d sends in flight", self.settings.account_sid, self.in_flight)

    @hookimpl
    async def smsconnector_shutdown(self) -> None:
        """Close the client's pooled connections (the library's client has no ``aclose``) and drop the sender."""
        if self.client is not None:
            await close_client(self.client)
        await super().smsconnector_shutdown()
        self.sender = None

    @hookimpl
    def smsconnector_receive(self, provider: str, request: WebhookRequest) -> Received | None:
        """Check a Twilio webhook's signature and take its parameters as one event."""
        if provider != NAME or self.settings is None:
            return None
        return webhook.receive(request, self.settings)

    @hookimpl
    def smsconnector_normalize(self, provider: str, event: Any) -> InboundMessage | StatusUpdate | None:
        """Turn an inbound SMS/MMS or a status callback into the canonical message or status update."""
        if provider != NAME or not isinstance(event, webhook.TwilioEvent):
            return None
        return webhook.normalize(event)

    @hookimpl
    def smsconnector_segment_policy(self, provider: str) -> SegmentPolicy | None:
        """Twilio joins the segments of a long SMS before its webhook: deliver as is."""
        return SegmentPolicy.AS_IS if provider == NAME else None

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage) -> Awaitable[SendResult] | None:
        """Send through ``messages.create_async``; failures are sorted retryable or permanent."""
        if provider != NAME or self.sender is None:
            return None
        return self.sender.send(message)

    @hookimpl
    def smsconnector_find_sent(self, provider: str, message: OutboundMessage,
                               since: datetime) -> Awaitable[SendResult | None] | None:
        """Look a message sent before a crash up in the account's message list (``messages.list_async``)."""
        if provider != NAME or self.sender is None:
            return None
        return self.sender.find_sent(message, since)
