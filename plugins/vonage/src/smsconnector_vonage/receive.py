"""Vonage's webhooks in: an inbound SMS or a delivery receipt, authenticated by its signature.

Vonage calls a webhook with ``GET`` (the parameters in the query string), a form-encoded ``POST`` or a JSON
``POST``, as the account is configured. The same flat parameters come in each; the signature (``sig``) covers
all of them, so every received key is signed over and unknown keys are ignored, never refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from smsconnector.plugin import Forbidden, Malformed, Received, WebhookKind, WebhookRequest

from .normalize import STATUSES
from .settings import Settings
from .signature import verify

log = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class VonageEvent:
    """One authenticated webhook's parameters, as Vonage sent them (values as strings)."""

    kind: WebhookKind
    params: dict[str, str]


def receive(request: WebhookRequest, settings: Settings) -> Received:
    """Read the request's parameters, check their signature and wrap them as one event; Vonage wants a 200.

    :raises Malformed: a POST's body is neither form-encoded nor a flat JSON object, or a name is repeated (400).
    :raises Forbidden: no signature secret is configured, or the signature is missing, wrong or stale (403).
    """
    params = parameters(request)
    if settings.signature_secret is None:
        raise Forbidden("no signature secret is configured (plugins.vonage.signature_secret)")
    verify(
        params,
        settings.signature_secret.get_secret_value(),
        settings.signature_method,
        now=time.time(),
        max_age=settings.max_signature_age_seconds,
    )
    events = [VonageEvent(request.kind, params)]
    if request.kind == "status" and params.get("status", "").lower() not in STATUSES:
        # A status Vonage added since: acknowledged, so that Vonage does not retry it for a day, and kept nowhere.
        log.warning("vonage: ignoring receipt status %r of %s", params.get("status"), params.get("messageId"))
        events = []
    return Received(events=events, reply_body=b"", reply_status=200)


def parameters(request: WebhookRequest) -> dict[str, str]:
    """The webhook's parameters: the query string of a GET (or of a POST without a body), else the body's."""
    if request.method == "GET" or not request.body:
        return _unique(request.query.multi_items())
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type == JSON_CONTENT_TYPE or content_type.endswith("+json"):
        return _flat(request.json())
    if content_type == FORM_CONTENT_TYPE:
        return _unique(request.form().multi_items())
    raise Malformed(f"expected a form-encoded or JSON body, got {content_type or 'no content type'}")


def _unique(pairs: Iterable[tuple[str, Any]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise Malformed(f"parameter {name!r} is repeated")  # which one Vonage signed is anyone's guess
        params[name] = str(value)
    return params


def _flat(data: Any) -> dict[str, str]:
    """A JSON webhook's object as strings: Vonage documents string values; numbers and booleans are read as the
    text they would be in a form, anything nested is refused."""
    if not isinstance(data, dict):
        raise Malformed("expected a JSON object")
    params: dict[str, str] = {}
    for name, value in data.items():
        if isinstance(value, str):
            params[name] = value
        elif isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, int):
            try:
                params[name] = str(value)
            except ValueError:  # more digits than Python will print
                raise Malformed(f"parameter {name!r} is not a number Vonage sends") from None
        else:
            raise Malformed(f"parameter {name!r} must be a string")
    return params
