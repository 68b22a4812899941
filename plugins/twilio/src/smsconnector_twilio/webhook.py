"""Twilio's webhooks in: an inbound SMS/MMS or a message status callback, checked and made canonical.

Both arrive signed (``signature.py``), as a form-encoded POST or, when the number's webhook is configured
so, a GET with the same parameters in the query string. Twilio adds parameters without notice, so every
received key is signed over and unknown keys are ignored, never refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.datastructures import FormData

from smsconnector.plugin import (
    DeliveryStatus,
    InboundMessage,
    InvalidNumber,
    Malformed,
    Media,
    Received,
    StatusUpdate,
    WebhookKind,
    WebhookRequest,
    to_e164,
    to_sender,
)

from .settings import NAME, Settings
from .signature import verify

log = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
#: "No reply": the host sends replies through the REST API from its outbox, never as TwiML.
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
#: Twilio's retry key for a webhook delivery; logged beside ours, MessageSid stays the dedupe key.
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"

#: Twilio's ``MessageStatus`` in our terms. Twilio's own queue (accepted, scheduled, queued) is "handed to
#: the provider, not yet at the carrier", which is SENDING: our QUEUED means still in our outbox. ``read``
#: (WhatsApp/RCS) implies delivered; ``canceled`` (a scheduled message called off) never reaches anyone.
STATUSES = {
    "accepted": DeliveryStatus.SENDING,
    "scheduled": DeliveryStatus.SENDING,
    "queued": DeliveryStatus.SENDING,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}

#: a count (NumSegments, NumMedia) longer than this is no count of anything an SMS or MMS holds
MAX_COUNT_DIGITS = 9
#: Inbound parameters worth keeping with the message (in ``details``) when Twilio fills them in.
DETAIL_KEYS = ("MessagingServiceSid", "FromCity", "FromState", "FromZip", "FromCountry",
               "ToCity", "ToState", "ToZip", "ToCountry")


@dataclass(frozen=True, slots=True)
class TwilioEvent:
    """One authenticated webhook's parameters, as Twilio posted them."""

    kind: WebhookKind
    params: FormData


def receive(request: WebhookRequest, settings: Settings) -> Received:
    """Check the request's signature and wrap its parameters as one event.

    :raises Malformed: a POST's body is not form-encoded (400).
    :raises Forbidden: the signature is missing or wrong (403).
    """
    if request.method == "GET":
        # A webhook configured as GET: its parameters are the query string, which Twilio signs as part of the
        # URL, with no parameters appended.
        form, signed = FormData(request.query.multi_items()), FormData()
    else:
        content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type != FORM_CONTENT_TYPE:
            raise Malformed(f"expected a {FORM_CONTENT_TYPE} body, got {content_type or 'no content type'}")
        form = signed = request.form()
    verify(request, signed, settings)
    events = [TwilioEvent(request.kind, form)]
    if request.kind == "status":
        status = _status_name(form)
        if status is not None and status not in STATUSES:
            # A status Twilio added since (or an inbound one): acknowledged, so Twilio does not log an
            # error for every message, and recorded nowhere.
            log.warning("twilio: ignoring status %r of %s", status, _one(form, "MessageSid"))
            events = []
    return Received(events=events, reply_body=EMPTY_TWIML, reply_media_type="text/xml",
                    delivery_id=request.headers.get(IDEMPOTENCY_HEADER))


def normalize(event: TwilioEvent) -> InboundMessage | StatusUpdate:
    """The canonical message (inbound webhook) or status update (status callback) of one event.

    :raises Malformed: a parameter the message needs is missing, repeated with different values, or wrong.
    """
    if event.kind == "status":
        return _status_update(event.params)
    return _inbound_message(event.params)


def _inbound_message(params: FormData) -> InboundMessage:
    keyword = _one(params, "OptOutType")
    return InboundMessage(
        provider=NAME,
        provider_message_id=_required(params, "MessageSid"),
        from_number=_number(params, "From"),
        to_number=_number(params, "To", brand=True),
        text=_one(params, "Body") or "",
        media=_media(params),
        num_segments=_count(params, "NumSegments"),
        provider_keyword=keyword.upper() if keyword else None,
        details={key: value for key in DETAIL_KEYS if (value := _one(params, key))},
    )


def _status_update(params: FormData) -> StatusUpdate:
    sid = _required(params, "MessageSid")
    name = _status_name(params)
    if name is None:
        raise Malformed("missing MessageStatus")
    if name not in STATUSES:
        raise Malformed(f"unknown MessageStatus {name!r}")
    return StatusUpdate(provider=NAME, provider_message_id=sid, status=STATUSES[name],
                        error_code=_one(params, "ErrorCode") or None,
                        error_message=_one(params, "ErrorMessage") or None)


def _status_name(params: FormData) -> str | None:
    # SmsStatus is the legacy name of the same value; older accounts may still send only it.
    return (_one(params, "MessageStatus") or _one(params, "SmsStatus") or "").lower() or None


def _media(params: FormData) -> tuple[Media, ...]:
    count = _count(params, "NumMedia") or 0
    return tuple(Media(_required(params, f"MediaUrl{i}"), _one(params, f"MediaContentType{i}") or None)
                 for i in range(count))


def _one(params: FormData, key: str) -> str | None:
    """The value of ``key``; a key sent twice must carry the same value twice, or the message is ambiguous."""
    values = params.getlist(key)
    if not values:
        return None
    value = values[0]
    if len(values) > 1 and any(other != value for other in values):
        raise Malformed(f"{key} is given {len(values)} different values")
    return value if isinstance(value, str) else None


def _required(params: FormData, key: str) -> str:
    value = _one(params, key)
    if not value:
        raise Malformed(f"missing {key}")
    return value


def _number(params: FormData, key: str, *, brand: bool = False) -> str:
    value = _required(params, key)
    try:
        return to_sender(value) if brand else to_e164(value)  # a brand may text from a short code
    except InvalidNumber:
        # The value stays out of the reason: reasons are logged, and this one is a consumer's number.
        raise Malformed(f"{key} is not a phone number in E.164 (only SMS and MMS are handled)") from None


def _count(params: FormData, key: str) -> int | None:
    value = _one(params, key)
    if not value:
        return None
    # ASCII digits only ("²" is a digit to str.isdigit, not to int()); the host bounds the number itself.
    if not (value.isascii() and value.isdigit()) or len(value) > MAX_COUNT_DIGITS:
        raise Malformed(f"{key} is not a count")
    return int(value)
