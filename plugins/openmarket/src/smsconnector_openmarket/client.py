"""Sending through OpenMarket's v4 MT API: one JSON request per message, OpenMarket splits it into parts.

The requests go over one pooled aiohttp session (:class:`MTClient`), made at start-up inside the event loop
that sends. aiohttp rather than httpx: on each request httpx's pool (httpcore) checks the socket of every
pooled connection, which cost more than the request itself, the more so the larger the pool. With 64 sends
in flight against the fake OpenMarket, httpx's client sent at most about 850 messages/s whatever its pool
size; this one about 5,000.
The environment's proxy (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` with ``NO_PROXY``) and CA certificates
(``SSL_CERT_FILE``/``SSL_CERT_DIR``, else certifi's bundle) are read once, when the client is made.
"""

from __future__ import annotations

import json
import os
import ssl
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import certifi

from smsconnector.plugin import (
    DeliveryStatus,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendResult,
    environment_proxy,
    is_gsm,
    segment,
)

from .normalize import TON_ALPHANUMERIC, TON_INTERNATIONAL, TON_SHORT_CODE
from .settings import Settings

MT_PATH = "/sms/v4/mt"
#: The longest validity OpenMarket accepts, in seconds (three days).
MAX_VALIDITY_SECONDS = 259_200
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
#: How long an idle pooled connection is kept for the next send.
KEEPALIVE_SECONDS = 5.0


@dataclass(frozen=True)
class MTClient:
    """The account's pooled connections to OpenMarket: at most ``max_connections`` open at once, a send beyond
    them waiting for one; the MT URL, each request's headers, and the proxy the environment named at start-up."""

    session: aiohttp.ClientSession
    url: str
    #: The credentials go with each request, not as the session's default headers: aiohttp sends those to
    #: the proxy too, which would hand it the account's password as Proxy-Authorization.
    headers: dict[str, str]
    proxy: str | None

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self.session.close()


def new_client(settings: Settings) -> MTClient | None:
    """A pooled client authenticated as the account, or ``None`` when no account is configured.

    Call inside the event loop that will send. ``timeout_seconds`` bounds getting a connection (waiting for a
    free one included) and then each wait for OpenMarket's answer, as httpx's did; there are no transport
    retries (the host's sender retries with backoff) and redirects are not followed.
    """
    if settings.account_id is None or settings.password is None:
        return None
    credentials = f"{settings.account_id}:{settings.password.get_secret_value()}".encode()
    timeout = settings.timeout_seconds
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.max_connections, ssl=_ssl_context(),
                                       keepalive_timeout=KEEPALIVE_SECONDS),
        timeout=aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=timeout, sock_read=timeout),
        trust_env=False,  # the proxy is looked up once, here, not on every request
    )
    headers = {"Authorization": "Basic " + b64encode(credentials).decode("ascii"),
               "Content-Type": "application/json; charset=UTF-8", "Accept": "application/json"}
    return MTClient(session, settings.api_base_url + MT_PATH, headers, environment_proxy(settings.api_base_url))


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


async def send(client: MTClient | None, settings: Settings, message: OutboundMessage, *,
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
        async with client.session.post(client.url, data=content, headers=client.headers, proxy=client.proxy,
                                       allow_redirects=False) as response:
            status, headers, body = response.status, response.headers, await response.read()
    except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
        raise RetryableSendError("OpenMarket did not answer in time", code="timeout") from None
    except aiohttp.ClientError as exc:
        raise RetryableSendError(f"could not reach OpenMarket: {type(exc).__name__}", code="connection") from None
    if 200 <= status < 300:
        ticket = headers.get("location", "").rstrip("/").rpartition("/")[2]
        if not ticket:
            # Accepted, so sending again could reach the consumer twice; without a ticket no receipt matches it.
            raise PermanentSendError(f"OpenMarket answered {status} without a ticket in Location",
                                     code="no_ticket")
        return SendResult(provider_message_id=ticket, status=DeliveryStatus.SENT,
                          segments=segment(message.text).count or 1)
    code, description = _error(status, body)
    reason = f"OpenMarket refused the message (HTTP {status}, code {code})" + (
        f": {description}" if description else "")
    if status in _RETRYABLE_STATUSES or status >= 500:
        raise RetryableSendError(reason, code=code, retry_after=_retry_after(headers))
    raise PermanentSendError(reason, code=code)


def _error(status: int, body: bytes) -> tuple[str, str | None]:
    """OpenMarket's error code and description, wherever its JSON puts them; the HTTP status otherwise."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    for node in (data, *(data.values() if isinstance(data, dict) else ())):
        if isinstance(node, dict) and node.get("code") is not None:
            description = node.get("description", node.get("message"))
            return str(node["code"]), str(description) if description else None
    return str(status), None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _ssl_context() -> ssl.SSLContext:
    """The CA certificates ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` names, else certifi's bundle (what httpx, the
    plugin's earlier client, trusted)."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())
