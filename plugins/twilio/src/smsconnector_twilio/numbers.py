"""The account's phone numbers: list them, buy one, point one's SMS webhook at this deployment.

Only the "A message comes in" webhook (``SmsUrl``) is set on a number. A number's own ``StatusCallback`` is
for *calls* to it; message status callbacks come from each send's ``StatusCallback`` (or a Messaging
Service's setting), so pointing the number's at the host would only bring it call events it must refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twilio.rest import Client

INBOUND_PATH = "/webhooks/twilio/inbound"


class NumberError(Exception):
    """A number command cannot be carried out (nothing to buy, no such number)."""


@dataclass(frozen=True, slots=True)
class Number:
    """What the commands show of one of the account's numbers."""

    sid: str
    phone_number: str
    sms_url: str | None
    sms_method: str | None
    sms: bool  #: whether the number can receive SMS
    #: a TwiML App that handles the number's SMS instead of ``sms_url``, when one is set
    sms_application_sid: str | None = None

    @classmethod
    def of(cls, instance: Any) -> Number:
        capabilities = instance.capabilities if isinstance(instance.capabilities, dict) else {}
        return cls(sid=instance.sid, phone_number=instance.phone_number, sms_url=instance.sms_url,
                   sms_method=instance.sms_method, sms=bool(capabilities.get("sms", False)),
                   sms_application_sid=instance.sms_application_sid or None)


async def list_numbers(client: Client) -> list[Number]:
    """Every number of the account."""
    return [Number.of(n) for n in await client.incoming_phone_numbers.list_async()]


async def buy_number(client: Client, country: str, *, area_code: str | None = None,
                     sms_url: str | None = None) -> Number:
    """Buy the first SMS-capable local number Twilio offers in ``country`` (and ``area_code``, US and CA only).

    :param sms_url: set as the number's "A message comes in" webhook right away, when given.
    :raises NumberError: Twilio offers no such number.
    """
    search: dict[str, Any] = {"sms_enabled": True, "limit": 1}
    if area_code is not None:
        search["area_code"] = area_code
    offered = await client.available_phone_numbers(country.upper()).local.list_async(**search)
    if not offered:
        where = f"{country.upper()}" + (f" area code {area_code}" if area_code else "")
        raise NumberError(f"Twilio offers no SMS-capable local number in {where}")
    purchase: dict[str, Any] = {"phone_number": offered[0].phone_number}
    if sms_url is not None:
        purchase.update(sms_url=sms_url, sms_method="POST")
    return Number.of(await client.incoming_phone_numbers.create_async(**purchase))


async def point_number(client: Client, phone_number: str, sms_url: str) -> Number:
    """Set ``phone_number``'s "A message comes in" webhook to ``sms_url`` (POST).

    :raises NumberError: the account has no such number.
    """
    found = await client.incoming_phone_numbers.list_async(phone_number=phone_number, limit=1)
    if not found:
        raise NumberError(f"the account has no number {phone_number}")
    updated = await client.incoming_phone_numbers(found[0].sid).update_async(sms_url=sms_url, sms_method="POST")
    return Number.of(updated)
