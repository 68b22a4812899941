"""Authenticating OpenMarket's webhooks and splitting them into events.

OpenMarket signs nothing: an MO or a delivery receipt is trusted because it carries the Basic credentials
the deployment had OpenMarket provision, and (optionally) comes from an allowed network. Everything else is
refused before its body is read as JSON, so nothing of it is stored.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Any, Literal

from smsconnector.plugin import Forbidden, Malformed, Received, Unauthenticated, WebhookRequest

from .settings import Settings

REALM = "smsconnector-openmarket"


class BasicAuthRequired(Unauthenticated):
    """401 asking for Basic credentials."""

    #: for the host to send with the 401 (RFC 9110 requires it)
    headers = {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'}


@dataclass(frozen=True, slots=True)
class Event:
    """One MO (``mobileOriginate``) or delivery receipt (``deliveryReceipt``), as OpenMarket sent it."""

    kind: Literal["mo", "receipt"]
    body: dict[str, Any]


def receive(request: WebhookRequest, settings: Settings) -> Received:
    """Authenticate ``request`` and return its event; OpenMarket wants 200 with an empty body.

    :raises Forbidden: the connecting address is outside ``allowed_networks``.
    :raises BasicAuthRequired: the credentials are missing or wrong, or none are configured.
    :raises Malformed: the body is not an MO or a delivery receipt in JSON.
    """
    if not settings.allows(request.client):
        raise Forbidden(f"address {request.client or 'unknown'} is not in plugins.openmarket.allowed_networks")
    _authenticate(request.headers.get("authorization", ""), settings)
    data = request.json()
    return Received(events=[_event(data)], reply_body=b"", reply_status=200)


def _authenticate(authorization: str, settings: Settings) -> None:
    if settings.inbound_username is None or settings.inbound_password is None:
        raise BasicAuthRequired("no inbound credentials are configured (plugins.openmarket.inbound_username)")
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise BasicAuthRequired("an 'Authorization: Basic ...' header is required")
    try:
        username, colon, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise BasicAuthRequired("the Basic credentials are not valid base64 of 'user:password'") from None
    # Both compared, always, so that the time taken does not tell which one was wrong.
    user_ok = hmac.compare_digest(username.encode(), settings.inbound_username.encode())
    password_ok = hmac.compare_digest(password.encode(), settings.inbound_password.get_secret_value().encode())
    if not (colon and user_ok and password_ok):
        raise BasicAuthRequired("wrong credentials")


def _event(data: Any) -> Event:
    if isinstance(data, dict):
        if isinstance(data.get("mobileOriginate"), dict):
            return Event("mo", data["mobileOriginate"])
        if isinstance(data.get("deliveryReceipt"), dict):
            return Event("receipt", data["deliveryReceipt"])
        if "ticketId" in data and ("response" in data or "state" in data):
            return Event("receipt", data)  # a receipt without its wrapper: the v4 JSON nesting is not documented
    raise Malformed("expected a JSON object with 'mobileOriginate' or 'deliveryReceipt'")
