"""Twilio's REST API out: one ``messages.create_async`` per outbound message, its failures sorted for the sender,
and the lookup of a message sent before a crash (``messages.list_async``).

At most ``in_flight`` calls wait on Twilio at once (an account's concurrency limit may be below the host's);
a send's timeout starts when its call does, not while it waits for its turn.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageInstance

from smsconnector.plugin import (
    DeliveryStatus,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
    SendResult,
)

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
#: How far Twilio's timestamps may fall before the host's for the same moment: they are whole seconds, and the
#: two clocks are not the same one.
CLOCK_SKEW = timedelta(seconds=5)
#: The most messages between one sender and one recipient looked through to find one sent before a crash.
LOOKUP_LIMIT = 200


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
                # Connection refused, reset or timed out. Once the request was out (anything but a failure to
                # connect), Twilio may have accepted it: the host then looks it up (find_sent) before a retry.
                log.warning("twilio: message %s not sent: %s", message.id, type(exc).__name__)
                raise RetryableSendError(f"network error talking to Twilio: {type(exc).__name__}", code="network",
                                         maybe_accepted=not isinstance(exc, aiohttp.ClientConnectorError)) from None
        log.info("twilio: message %s accepted as %s (%s)", message.id, created.sid, created.status)
        return _result(created)

    async def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """Twilio's record of ``message`` if it accepted it since ``since``: the latest message from the same
        number to the same recipient with the same body, sent on or after ``since``'s day (Twilio filters by
        day) and created since ``since``, give or take :data:`CLOCK_SKEW`.

        A message still waiting in Twilio's queue has no ``DateSent`` yet, so it is not listed and not found.

        :raises RetryableSendError: Twilio could not be asked.
        """
        since = since.astimezone(UTC)
        day = datetime(since.year, since.month, since.day, tzinfo=UTC)
        async with self._turns:
            try:
                records = await self.client.messages.list_async(
                    to=message.to_number, from_=message.from_number, date_sent_after=day, limit=LOOKUP_LIMIT)
            except (TwilioRestException, TwilioServiceException) as exc:
                raise RetryableSendError(f"Twilio did not list messages: {reason(exc)}",
                                         code=str(exc.code or exc.status)) from None
            except NETWORK_ERRORS as exc:
                raise RetryableSendError(f"network error talking to Twilio: {type(exc).__name__}",
                                         code="network") from None
        earliest = since - CLOCK_SKEW
        matches = [r for r in records if (r.body or "") == message.text and (r.direction or "").startswith("outbound")
                   and r.date_created is not None and r.date_created >= earliest]
        if not matches:
            return None
        record = max(matches, key=lambda r: r.date_created)
        log.info("twilio: message %s was accepted before as %s (%s)", message.id, record.sid, record.status)
        return _result(record)

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


def _result(record: MessageInstance) -> SendResult:
    """The host's view of Twilio's message resource ``record``."""
    status = STATUSES.get((record.status or "").lower(), DeliveryStatus.SENDING)
    segments = int(record.num_segments) if (record.num_segments or "").isdigit() else 0
    # num_segments is "0" while a Messaging Service has not yet picked the sender: unknown, not zero.
    return SendResult(provider_message_id=str(record.sid), status=status, segments=segments or None)


def classify(status: int, code: int | str | None, reason: str, *, retry_after: float | None = None) -> SendError:
    """The send error for Twilio's answer ``status``/``code``: retry what Twilio may accept later, and look a 5xx's
    message up first (Twilio may have processed the request all the same); a 429 was never processed."""
    kept = str(code) if code is not None else str(status)
    if status == 429 or kept == str(TOO_MANY_REQUESTS) or status >= 500:
        return RetryableSendError(reason, code=kept, retry_after=retry_after, maybe_accepted=status >= 500)
    return PermanentSendError(reason, code=kept, opted_out=kept == str(OPTED_OUT))


def reason(exc: TwilioRestException | TwilioServiceException) -> str:
    """Twilio's own words for a refusal."""
    text = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
    # The library prefixes its own "Unable to create record: "; the message after it is Twilio's.
    return str(text).removeprefix("Unable to create record: ") or f"HTTP {exc.status}"
