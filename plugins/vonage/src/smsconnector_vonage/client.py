"""Sending through Vonage's SMS API: one form-encoded request per message, Vonage splits it into parts.

The answer lists one entry per part, each with its own ``message-id`` and ``status`` (``"0"`` when accepted),
and Vonage later reports on each part under its id: an accepted message is a ``SendResult.of_parts``. The
requests go over one pooled aiohttp session (:class:`SmsClient`), made at start-up in the event loop that
sends, as the other bundled providers do; the environment's proxy and CA certificates are read then, once.
"""

from __future__ import annotations

import json
import os
import ssl
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
)

from .settings import Settings

SEND_PATH = "/sms/json"
#: The bounds Vonage puts on ``ttl``, in milliseconds: 20 seconds to 7 days.
MIN_TTL_MS, MAX_TTL_MS = 20_000, 604_800_000
#: A part's ``status`` when Vonage accepted it.
ACCEPTED = "0"
#: The send statuses worth trying again: 1 Throttled (faster than the account's limit), 5 Internal Error (in
#: Vonage's platform), 10 Too Many Existing Binds ("back-off and retry"). Every other one is permanent: 2 missing
#: and 3 invalid parameters, 4 invalid credentials, 6 invalid message, 7 number barred, 8 partner account barred,
#: 9 partner quota violation, 15 invalid sender address, 29 non-whitelisted destination, and the rest.
RETRYABLE = frozenset({"1", "5", "10"})
_RETRYABLE_HTTP = frozenset({408, 425, 429})
#: How long an idle pooled connection is kept for the next send.
KEEPALIVE_SECONDS = 5.0


@dataclass(frozen=True)
class SmsClient:
    """The account's pooled connections to Vonage, the send URL, and the proxy the environment named."""

    session: aiohttp.ClientSession
    url: str
    api_key: str
    api_secret: str
    proxy: str | None

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self.session.close()


def new_client(settings: Settings) -> SmsClient | None:
    """A pooled client for the account, or ``None`` when no account is configured.

    Call inside the event loop that will send. ``timeout_seconds`` bounds connecting and each wait for Vonage's
    answer; there are no transport retries (the host's sender retries with backoff), redirects are not followed.
    """
    if settings.api_key is None or settings.api_secret is None:
        return None
    timeout = settings.timeout_seconds
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=settings.max_connections, ssl=_ssl_context(), keepalive_timeout=KEEPALIVE_SECONDS
        ),
        timeout=aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=timeout, sock_read=timeout),
        trust_env=False,  # the proxy is looked up once, here, not on every request
    )
    return SmsClient(
        session,
        settings.api_base_url + SEND_PATH,
        settings.api_key,
        settings.api_secret.get_secret_value(),
        environment_proxy(settings.api_base_url),
    )


def send_request(message: OutboundMessage, *, callback: str) -> dict[str, str]:
    """The send parameters of ``message`` (without credentials): ``type=unicode`` when the text is not GSM-7,
    a receipt per part asked for at ``callback``, our message id as ``client-ref``."""
    params = {
        "from": message.from_number.removeprefix("+"),  # numbers go as international digits
        "to": message.to_number.removeprefix("+"),
        "text": message.text,
        "type": "text" if is_gsm(message.text) else "unicode",
        "status-report-req": "1",
        "callback": callback,
        "client-ref": str(message.id),
    }
    if message.validity_seconds is not None:
        params["ttl"] = str(max(MIN_TTL_MS, min(message.validity_seconds * 1000, MAX_TTL_MS)))
    return params


async def send(client: SmsClient | None, message: OutboundMessage, *, callback: str) -> SendResult:
    """Send ``message``; each part's ``message-id`` identifies it in receipts.

    :raises RetryableSendError: a timeout, a connection error, 408/425/429 or a 5xx, or a status Vonage says to
        try again (throttled, internal error, too many binds) when no part was accepted.
    :raises PermanentSendError: any other refusal, with Vonage's status kept as the code; also a message of which
        only some parts were accepted, since sending it again would repeat those.
    """
    if client is None:
        raise PermanentSendError("no Vonage account is configured (plugins.vonage.api_key)", code="not_configured")
    if message.media:
        raise PermanentSendError("Vonage's SMS API carries text only; this message has media", code="media_unsupported")
    form = {"api_key": client.api_key, "api_secret": client.api_secret, **send_request(message, callback=callback)}
    try:
        async with client.session.post(
            client.url, data=form, proxy=client.proxy, allow_redirects=False, headers={"Accept": "application/json"}
        ) as response:
            status, headers, body = response.status, response.headers, await response.read()
    except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
        raise RetryableSendError("Vonage did not answer in time", code="timeout", maybe_accepted=True) from None
    except aiohttp.ClientError as exc:
        raise RetryableSendError(f"could not reach Vonage: {type(exc).__name__}", code="connection") from None
    if not 200 <= status < 300:
        reason = f"Vonage refused the request (HTTP {status})"
        if status in _RETRYABLE_HTTP or status >= 500:
            raise RetryableSendError(reason, code=str(status), retry_after=_retry_after(headers))
        raise PermanentSendError(reason, code=str(status))
    return _result(_parts(body))


def _parts(body: bytes) -> list[Mapping[str, Any]]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    parts = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
        # Vonage may have accepted it; sending again could reach the consumer twice.
        raise PermanentSendError("Vonage answered without a messages list", code="bad_response")
    return parts


def _result(parts: list[Mapping[str, Any]]) -> SendResult:
    """The parts' ids when every part was accepted; otherwise the error of the first refused part."""
    refused = [p for p in parts if str(p.get("status", "")) != ACCEPTED]
    if not refused:
        ids = [str(p.get("message-id") or "") for p in parts]
        if not all(ids) or len(set(ids)) != len(ids):
            raise PermanentSendError("Vonage accepted the message without an id for each part", code="bad_response")
        return SendResult(ids[0], status=DeliveryStatus.SENT, segments=1) if len(ids) == 1 else SendResult.of_parts(ids)
    code = str(refused[0].get("status", "")) or "unknown"
    text = str(refused[0].get("error-text") or "")
    reason = f"Vonage refused the message (status {code})" + (f": {text}" if text else "")
    if len(refused) == len(parts) and code in RETRYABLE:
        raise RetryableSendError(reason, code=code)
    if len(refused) < len(parts):
        reason += f"; {len(parts) - len(refused)} of its {len(parts)} parts were accepted"
    raise PermanentSendError(reason, code=code)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _ssl_context() -> ssl.SSLContext:
    """The CA certificates ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` names, else certifi's bundle."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())
