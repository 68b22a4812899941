"""Sending through OpenMarket's v4 MT API: one JSON request per message, OpenMarket splits it into parts."""

from __future__ import annotations

import json
from typing import Any

import httpx

from smsconnector.errors import PermanentSendError, RetryableSendError
from smsconnector.messages import DeliveryStatus, OutboundMessage, SendResult
from smsconnector.segments import is_gsm, segment

from .normalize import TON_ALPHANUMERIC, TON_INTERNATIONAL, TON_SHORT_CODE
from .settings import Settings

MT_PATH = "/sms/v4/mt"
#: The longest validity OpenMarket accepts, in seconds (three days).
MAX_VALIDITY_SECONDS = 259_200
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


def new_client(settings: Settings) -> httpx.AsyncClient | None:
    """A pooled client authenticated as the account, or ``None`` when no account is configured."""
    if settings.account_id is None or settings.password is None:
        return None
    return httpx.AsyncClient(
        base_url=settings.api_base_url, auth=httpx.BasicAuth(settings.account_id, settings.password.get_secret_value()),
        timeout=httpx.Timeout(settings.timeout_seconds),
        limits=httpx.Limits(max_connections=settings.max_connections,
                            max_keepalive_connections=settings.max_connections),
        headers={"Content-Type": "application/json; charset=UTF-8", "Accept": "application/json"},
    )


def source(number: str) -> dict[str, Any]:
    """The ``source`` object: an E.164 number is international; digits alone a short code; else alphanumeric."""
    if number.startswith("+"):
        return {"ton": TON_INTERNATIONAL, "address": number[1:]}
    if number.isdigit():
        return {"ton": TON_SHORT_CODE, "address": number}
    return {"ton": TON_ALPHANUMERIC, "address": number}


def mt_request(message: OutboundMessage, settings: Settings, *, receipt_url: str) -> dict[str, Any]:
    """The ``mobileTerminate`` body for ``message``; receipts (one per part) are asked for at ``receipt_url``."""
    body: dict[str, Any] = {
        "type": "text", "content": message.text, "charset": "GSM" if is_gsm(message.text) else "UTF-16",
        # Longer than one SMS: OpenMarket splits it and the handset joins it ("reject" and "truncate" lose it).
        "mlc": "segment",
    }
    if message.validity_seconds is not None:
        body["validityPeriod"] = max(1, min(message.validity_seconds, MAX_VALIDITY_SECONDS))
    options: dict[str, Any] = {"note1": str(message.id)}  # echoed in receipts: ties them to our message
    if settings.program_id:
        options["programId"] = settings.program_id
    return {"mobileTerminate": {
        "destination": {"address": message.to_number.removeprefix("+")},
        "source": source(message.from_number),
        "message": body,
        "delivery": {"receiptRequested": "final", "url": receipt_url},
        "options": options,
    }}


async def send(client: httpx.AsyncClient | None, settings: Settings, message: OutboundMessage, *,
               receipt_url: str) -> SendResult:
    """Send ``message``; the ticket id in ``Location`` of the 202 identifies it in receipts.

    :raises RetryableSendError: a timeout, a connection error, 408/425/429 or a 5xx.
    :raises PermanentSendError: any other refusal, with OpenMarket's code (or the HTTP status) kept.
    """
    if client is None:
        raise PermanentSendError("no OpenMarket account is configured (plugins.openmarket.account_id)",
                                 code="not_configured")
    if message.media:
        raise PermanentSendError("OpenMarket's SMS API carries text only; this message has media",
                                 code="media_unsupported")
    content = json.dumps(mt_request(message, settings, receipt_url=receipt_url), ensure_ascii=False).encode()
    try:
        response = await client.post(MT_PATH, content=content)
    except httpx.TimeoutException:
        raise RetryableSendError("OpenMarket did not answer in time", code="timeout") from None
    except httpx.TransportError as exc:
        raise RetryableSendError(f"could not reach OpenMarket: {type(exc).__name__}", code="connection") from None
    if response.is_success:
        ticket = response.headers.get("location", "").rstrip("/").rpartition("/")[2]
        if not ticket:
            # Accepted, so sending again could reach the consumer twice; without a ticket no receipt matches it.
            raise PermanentSendError(f"OpenMarket answered {response.status_code} without a ticket in Location",
                                     code="no_ticket")
        return SendResult(provider_message_id=ticket, status=DeliveryStatus.SENT,
                          segments=segment(message.text).count or 1)
    code, description = _error(response)
    reason = f"OpenMarket refused the message (HTTP {response.status_code}, code {code})" + (
        f": {description}" if description else "")
    if response.status_code in _RETRYABLE_STATUSES or response.status_code >= 500:
        raise RetryableSendError(reason, code=code, retry_after=_retry_after(response))
    raise PermanentSendError(reason, code=code)


def _error(response: httpx.Response) -> tuple[str, str | None]:
    """OpenMarket's error code and description, wherever its JSON puts them; the HTTP status otherwise."""
    try:
        data = response.json()
    except ValueError:
        data = None
    for node in (data, *(data.values() if isinstance(data, dict) else ())):
        if isinstance(node, dict) and node.get("code") is not None:
            description = node.get("description", node.get("message"))
            return str(node["code"]), str(description) if description else None
    return str(response.status_code), None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None
