"""The caller's number: it must be a valid number of a type that can receive a text."""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

from smsconnector.plugin import MessageRejected

#: North American numbers come back FIXED_LINE_OR_MOBILE (the plan does not tell them apart), so both pass.
RECEIVES_SMS = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_KINDS = {PhoneNumberType.TOLL_FREE: "a toll-free number", PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
          PhoneNumberType.SHARED_COST: "a shared-cost number", PhoneNumberType.VOIP: "a VoIP number",
          PhoneNumberType.PERSONAL_NUMBER: "a personal (forwarding) number", PhoneNumberType.PAGER: "a pager",
          PhoneNumberType.UAN: "a company (UAN) number", PhoneNumberType.VOICEMAIL: "a voicemail access number"}


def mobile_number(raw: str, *, field: str, region: str) -> str:
    """``raw`` in E.164 when it can receive a text; :class:`MessageRejected` (422) naming ``field`` otherwise."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise MessageRejected(f"{field}: {raw!r} is not a phone number", code="invalid_number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise MessageRejected(f"{field}: {raw!r} is not a valid phone number", code="invalid_number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    kind = phonenumbers.number_type(parsed)
    if kind == PhoneNumberType.FIXED_LINE:
        raise MessageRejected(f"{field}: {e164} is a landline and cannot receive text messages", code="landline")
    if kind not in RECEIVES_SMS:
        raise MessageRejected(f"{field}: {e164} is {_KINDS.get(kind, 'not a known number type')}, not a mobile "
                              "number that can receive text messages", code="not_mobile")
    return e164
