"""Vonage's inbound messages and delivery receipts as canonical messages and status updates."""

from __future__ import annotations

from collections.abc import Mapping

from smsconnector.plugin import (
    DeliveryStatus,
    InboundMessage,
    InvalidNumber,
    Malformed,
    SegmentInfo,
    StatusUpdate,
    to_e164,
    to_sender,
)

from .settings import NAME

#: A receipt's ``status`` in our terms. ``accepted`` (taken by the carrier) and ``buffered`` (held by it, the
#: handset out of reach) are on their way; ``unknown`` says nothing more than that, so it leaves the message
#: as sent. ``expired``: the carrier could not deliver it in time; ``failed`` and ``rejected``: delivery failed or
#: was refused, the ``err-code`` saying why.
STATUSES = {
    "accepted": DeliveryStatus.SENT,
    "buffered": DeliveryStatus.SENT,
    "unknown": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "expired": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "rejected": DeliveryStatus.FAILED,
}
#: the ``err-code`` of a receipt that reports no error
NO_ERROR = "0"
#: Inbound parameters worth keeping with the message (in ``details``) when Vonage fills them in.
DETAIL_KEYS = ("type", "keyword", "message-timestamp", "udh")
#: a concatenation field longer than this is no count of anything an SMS holds
_MAX_DIGITS = 6


def inbound_message(params: Mapping[str, str]) -> InboundMessage:
    """An inbound webhook's parameters as an :class:`InboundMessage`; a part of a long message carries its
    ``SegmentInfo`` (``concat-ref``, ``concat-total``, ``concat-part``) and the host joins the parts' texts.

    A binary message (``type=binary``) has no text: its hex ``data`` and ``udh`` are kept in ``details``.

    :raises Malformed: a parameter a message needs is missing or wrong; the reason names it.
    """
    binary = params.get("type") == "binary"
    details = {key: value for key in DETAIL_KEYS if (value := params.get(key))}
    if binary and params.get("data"):
        details["data"] = params["data"]
    return InboundMessage(
        provider=NAME,
        provider_message_id=_required(params, "messageId"),
        from_number=_number(params, "msisdn"),
        to_number=_number(params, "to", brand=True),
        text="" if binary else params.get("text", ""),
        segment=_segment(params),
        details=details,
    )


def status_update(params: Mapping[str, str]) -> StatusUpdate:
    """A delivery receipt's parameters as a :class:`StatusUpdate` for the part whose id is ``messageId``.

    Vonage gives every part of a long message its own id and sends a receipt for each; the host makes them one
    status. ``err-code`` is kept when it reports an error.

    :raises Malformed: ``messageId`` or a known ``status`` is missing.
    """
    name = params.get("status", "").lower()
    if name not in STATUSES:
        raise Malformed(f"unknown receipt status {name!r}")
    error = params.get("err-code", "").strip()
    return StatusUpdate(
        provider=NAME,
        provider_message_id=_required(params, "messageId"),
        status=STATUSES[name],
        error_code=error if error and error != NO_ERROR else None,
        error_message=f"Vonage receipt: {name}" if error and error != NO_ERROR else None,
    )


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise Malformed(f"missing {name}")
    return value


def _number(params: Mapping[str, str], name: str, *, brand: bool = False) -> str:
    value = _required(params, name)
    try:
        return to_sender(value) if brand else to_e164(value)  # Vonage sends international digits without '+'
    except InvalidNumber:
        raise Malformed(f"{name} is not a phone number") from None


def _segment(params: Mapping[str, str]) -> SegmentInfo | None:
    """The part's place in a long message; ``None`` for a message that came whole.

    Vonage documents ``concat`` as ``true`` on a part; the three numbers are read whenever they are all there.
    """
    fields = [params.get(name, "") for name in ("concat-ref", "concat-total", "concat-part")]
    if not any(fields):
        if params.get("concat", "").lower() == "true":
            raise Malformed("concat is true but concat-ref, concat-total or concat-part is missing")
        return None
    if not all(f.isascii() and f.isdigit() and len(f) <= _MAX_DIGITS for f in fields):
        raise Malformed("concat-ref, concat-total and concat-part must all be numbers")
    reference, total, sequence = (int(f) for f in fields)
    return SegmentInfo(reference=reference, total=total, sequence=sequence)
