"""Twilio's REST API out: one ``messages.create_async`` per outbound message, its failures sorted for the sender.

At most ``in_flight`` calls wait on Twilio at once (an account's concurrency limit may be below the host's);
a send's timeout starts when its call does, not while it waits for its turn.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.rest import Client

from smsconnector.errors import PermanentSendError, RetryableSendError, SendError
from smsconnector.messages import DeliveryStatus, OutboundMessage, SendResult

from .client import NETWORK_ERRORS, PooledHttpClient
from .settings import Settings
from .webhook import STATUSES

log = logging.getLogger(__name__)

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
#: Twilio accepts a ValidityPeriod of 1 to 36000 seconds (its default is the maximum, 10 hours).
VALIDITY_RANGE = (1, 36000)
#: "Too many concurrent requests": never processed, always safe to retry.
TOO_MANY_REQUESTS = 20429
#: The recipient replied STOP to this sender: no retry, and the opt-out is reported.
OPTED_OUT = 21610


class MessageSender:
    """Sends outbound messages through one account's client."""

    def __init__(self, client: Client, settings: Settings, *, in_flight: int, status_callback: str | None) -> None:
        self.client = client
        self.settings = settings
        self.status_callback = status_callback
        self._turns = asyncio.Semaphore(in_flight)

    async def send(self, message: OutboundMessage) -> SendResult:
        """Hand ``message`` to Twilio.

        :raises RetryableSendError: 429/20429, 5xx, timeouts and connection errors.
        :raises PermanentSendError: any other refusal, with Twilio's error code (21610 marked ``opted_out``).
        """
        params = self.params(message)
        async with self._turns:
            try:
                created = await self.client.messages.create_async(**params)
            except (TwilioRestException, TwilioServiceException) as exc:
                error = classify(exc.status, exc.code, reason(exc), retry_after=self._retry_after())
                log.warning("twilio: message %s refused with HTTP %s, code %s (%s)", message.id, exc.status,
                            exc.code, "retryable" if isinstance(error, RetryableSendError) else "permanent")
                raise error from None
            except NETWORK_ERRORS as exc:
                # Connection refused, reset or timed out. A timeout after the request left may mean Twilio
                # accepted it: the retry can then send it twice, which is the price of not losing it.
                log.warning("twilio: message %s not sent: %s", message.id, type(exc).__name__)
                raise RetryableSendError(f"network error talking to Twilio: {type(exc).__name__}",
                                         code="network") from None
        status = STATUSES.get((created.status or "").lower(), DeliveryStatus.SENDING)
        segments = int(created.num_segments) if (created.num_segments or "").isdigit() else 0
        log.info("twilio: message %s accepted as %s (%s)", message.id, created.sid, created.status)
        # num_segments is "0" while a Messaging Service has not yet picked the sender: unknown, not zero.
        return SendResult(provider_message_id=str(created.sid), status=status, segments=segments or None)

    def params(self, message: OutboundMessage) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for ``message``."""
        params: dict[str, Any] = {"to": message.to_number, "from_": message.from_number}
        service = self.settings.messaging_service_for(message.from_number)
        if service is not None:
            # From stays set: the reply leaves from the number the consumer wrote to, and the service
            # still applies its own features (Advanced Opt-Out, its status callback).
            params["messaging_service_sid"] = service
        if message.text:
            params["body"] = message.text
        if message.media:
            params["media_url"] = [m.url for m in message.media]
        if self.status_callback is not None:
            params["status_callback"] = self.status_callback
        if message.validity_seconds is not None:
            low, high = VALIDITY_RANGE
            params["validity_period"] = min(high, max(low, message.validity_seconds))
        return params

    def _retry_after(self) -> float | None:
        http_client = self.client.http_client
        response = http_client.last_response() if isinstance(http_client, PooledHttpClient) else None
        value = (response.headers or {}).get("Retry-After") if response is not None else None
        try:
            return max(0.0, float(value)) if value else None
        except ValueError:
            return None  # an HTTP date: rare enough that the sender's own backoff is good enough


def classify(status: int, code: int | str | None, reason: str, *, retry_after: float | None = None) -> SendError:
    """The send error for Twilio's answer ``status``/``code``: retry only what Twilio never processed."""
    kept = str(code) if code is not None else str(status)
    if status == 429 or kept == str(TOO_MANY_REQUESTS) or status >= 500:
        return RetryableSendError(reason, code=kept, retry_after=retry_after)
    return PermanentSendError(reason, code=kept, opted_out=kept == str(OPTED_OUT))


def reason(exc: TwilioRestException | TwilioServiceException) -> str:
    """Twilio's own words for a refusal."""
    text = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
    # The library prefixes its own "Unable to create record: "; the message after it is Twilio's.
    return str(text).removeprefix("Unable to create record: ") or f"HTTP {exc.status}"
