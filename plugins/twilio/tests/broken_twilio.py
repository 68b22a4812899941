"""Broken copies of the Twilio plugin, each missing one promise, for the test that the contract suite catches them.

Imported by the suite's inner run, with this folder on ``sys.path``.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from test_twilio_contract import TwilioContract

from smsconnector.messages import InboundMessage, StatusUpdate
from smsconnector.plugins import hookimpl
from smsconnector.store.models import Message
from smsconnector.testing.contract import ProviderContractTests
from smsconnector.webhooks import Received, WebhookRequest
from smsconnector_twilio import webhook
from smsconnector_twilio.hooks import TwilioPlugin
from smsconnector_twilio.settings import NAME


class SignatureRemoved(TwilioPlugin):
    """Takes every webhook's parameters without checking ``X-Twilio-Signature``."""

    @hookimpl
    def smsconnector_receive(self, provider: str, request: WebhookRequest) -> Received | None:
        """The events of any form webhook, signed or not."""
        if provider != NAME or self.settings is None:
            return None
        return Received(
            events=[webhook.TwilioEvent(request.kind, request.form())],
            reply_body=webhook.EMPTY_TWIML,
            reply_media_type="text/xml",
        )


class StatusBackwards(TwilioPlugin):
    """Writes every status Twilio reports onto the message, after the host's own update, even a late earlier one."""

    @hookimpl
    async def smsconnector_status_recorded(self, update: StatusUpdate, message_id: int, session: AsyncSession) -> None:
        """Overwrite the message's status with the report's."""
        message = await session.get(Message, message_id)
        assert message is not None
        message.status = update.status.value


class DuplicateStored(TwilioPlugin):
    """Gives each delivery of a message an id of its own, so the host cannot tell a retry from a new message."""

    @hookimpl
    def smsconnector_normalize(self, provider: str, event: Any) -> InboundMessage | StatusUpdate | None:
        """The canonical message, its id made unique to this delivery."""
        item = super().smsconnector_normalize(provider, event)
        if isinstance(item, InboundMessage):
            return dataclasses.replace(item, provider_message_id=f"{item.provider_message_id}-{uuid.uuid4().hex[:8]}")
        return item


class BrokenTwilio(TwilioContract):
    """The Twilio contract, run against a broken copy of the plugin in place of the installed one."""

    plugin_name = "broken-twilio"

    def __init__(self, plugin: type[TwilioPlugin]) -> None:
        self.plugin = plugin

    def app_config(self, fake: Any) -> dict[str, Any]:
        config = super().app_config(fake)
        config["plugins"]["disabled"] = ["twilio"]
        return config

    def register(self) -> list[tuple[str, Any]]:
        return [(self.plugin_name, self.plugin())]


class TestSignatureRemoved(ProviderContractTests):
    contract = BrokenTwilio(SignatureRemoved)


class TestStatusBackwards(ProviderContractTests):
    contract = BrokenTwilio(StatusBackwards)


class TestDuplicateStored(ProviderContractTests):
    contract = BrokenTwilio(DuplicateStored)


class TestIntact(ProviderContractTests):
    contract = TwilioContract()
