"""OpenMarket's MOs and delivery receipts as canonical messages and status updates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smsconnector.plugin import (
    DeliveryStatus,
    InboundMessage,
    InvalidNumber,
    Malformed,
    SegmentInfo,
    StatusUpdate,
    to_e164,
)
from smsconnector.reassembly import MAX_PARTS

from .content import read_content

NAME = "openmarket"
#: Type of number: 1 international (long code, a mobile), 3 national short code, 5 alphanumeric.
TON_INTERNATIONAL, TON_SHORT_CODE, TON_ALPHANUMERIC = 1, 3, 5
#: Receipt codes that mean success: 0 "Message sent" (to the carrier; the last word for some numbers, such
#: as US landlines) and 4 "Message delivered". Every other code is a failure, told apart by the state.
CODE_SENT, CODE_DELIVERED = 0, 4
#: SMPP message states that mean the carrier refused the message outright (failed) rather than could not
#: deliver it (undelivered); states that are not final leave the message as sent.
_REFUSED_STATES = frozenset({"REJECTD"})
_PENDING_STATES = frozenset({"ENROUTE", "ACCEPTD"})


def inbound_message(mo: Mapping[str, Any], *, charset: str = "auto", seven_bit: str = "gsm") -> InboundMessage:
    """A ``mobileOriginate`` object as an :class:`InboundMessage` (a part carries its ``SegmentInfo``).

    :raises Malformed: a field a message needs is missing or wrong; the reason names it.
    """
    ticket = _text(mo, "ticketId")
    message = mo.get("message")
    if not isinstance(message, Mapping):
        raise Malformed("mobileOriginate.message must be an object")
    content = read_content(message, charset=charset, seven_bit=seven_bit)
    details: dict[str, str] = {}
    source = _object(mo, "source")
    if source.get("mobileOperatorId") is not None:
        details["mobile_operator_id"] = str(source["mobileOperatorId"])
    if isinstance(mo.get("submittedDate"), str):
        details["submitted_date"] = mo["submittedDate"]
    return InboundMessage(
        provider=NAME, provider_message_id=ticket, from_number=address(source, "source"),
        to_number=address(_object(mo, "destination"), "destination"), text=content.text, segment=content.segment,
        details=details,
    )


def address(party: Mapping[str, Any], where: str) -> str:
    """A source or destination address: E.164 for a phone number; a short code or alphanumeric as given."""
    raw = party.get("address")
    if not isinstance(raw, str | int) or not str(raw).strip():
        raise Malformed(f"{where}.address is missing")
    value = str(raw).strip()
    if _ton(party) in (TON_SHORT_CODE, TON_ALPHANUMERIC):
        return value  # no country code to give it: kept as OpenMarket names it
    try:
        return to_e164(value)  # OpenMarket sends international digits without '+'
    except InvalidNumber:
        raise Malformed(f"{where}.address is not a phone number") from None


def status_update(receipt: Mapping[str, Any]) -> StatusUpdate:
    """A ``deliveryReceipt`` as a :class:`StatusUpdate` for the whole message or, per part, with its segment.

    The v4 JSON nesting is not documented; this reads the v3 receipt's layout and its v4 additions wherever
    they sit: ``ticketId`` (or ``parentTicketId``), ``response.code``/``description``, ``message.state``,
    ``segmentNumber`` and ``totalSegments``.
    """
    message = receipt.get("message") if isinstance(receipt.get("message"), Mapping) else {}
    assert isinstance(message, Mapping)
    # Every part's receipt carries the ticket id OpenMarket answered the send with; v3 named it parentTicketId.
    ticket = _first(receipt, message, "parentTicketId") or _first(receipt, message, "ticketId")
    if not isinstance(ticket, str) or not ticket:
        raise Malformed("deliveryReceipt.ticketId is missing")
    response = receipt.get("response") if isinstance(receipt.get("response"), Mapping) else {}
    assert isinstance(response, Mapping)
    code = _int(response.get("code", receipt.get("code")), "deliveryReceipt.response.code")
    state = message.get("state", receipt.get("state"))
    state_name = str(state.get("description", "")) if isinstance(state, Mapping) else str(state or "")
    status = _status(code, state_name.upper())
    failed = status in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)
    description = response.get("description")
    return StatusUpdate(
        provider=NAME, provider_message_id=ticket, status=status,
        error_code=str(code) if failed else None,
        error_message=str(description) if failed and description else None,
        segment=_segment(_first(receipt, message, "segmentNumber"), _first(receipt, message, "totalSegments")),
    )


def _status(code: int, state: str) -> DeliveryStatus:
    if code == CODE_DELIVERED:
        return DeliveryStatus.DELIVERED
    if code == CODE_SENT or state in _PENDING_STATES:
        return DeliveryStatus.SENT
    return DeliveryStatus.FAILED if state in _REFUSED_STATES else DeliveryStatus.UNDELIVERED


def _segment(number: Any, total: Any) -> SegmentInfo | None:
    if number is None or total is None:
        # Without the total the parts cannot be counted: the receipt stands for the whole message.
        return None
    sequence, count = _int(number, "segmentNumber"), _int(total, "totalSegments")
    if not 1 <= count <= MAX_PARTS:
        raise Malformed(f"totalSegments must be from 1 to {MAX_PARTS}")
    if not 1 <= sequence <= count:
        raise Malformed(f"segmentNumber {sequence} is not between 1 and totalSegments ({count})")
    return SegmentInfo(reference=0, total=count, sequence=sequence)


def _ton(party: Mapping[str, Any]) -> int | None:
    """The party's type of number; ``None`` when it gives none that reads as one (the address is then a number)."""
    try:
        return _int(party["ton"], "ton")
    except (KeyError, Malformed):
        return None


def _first(receipt: Mapping[str, Any], message: Mapping[str, Any], key: str) -> Any:
    return receipt[key] if receipt.get(key) is not None else message.get(key)


def _int(value: Any, name: str) -> int:
    """A whole number given as a JSON number or as digits; :class:`Malformed` for anything else, ``1e999`` and
    ``2.5`` included."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):  # inf and nan are not
        raise Malformed(f"{name} must be a whole number")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # 5,000 digits are a ValueError
        raise Malformed(f"{name} must be a whole number") from None


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"mobileOriginate.{key} is missing")
    return value.strip()


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise Malformed(f"mobileOriginate.{key} must be an object")
    return value
