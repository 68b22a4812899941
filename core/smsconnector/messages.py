"""Canonical messages: what every provider's payloads are normalized into, and what senders receive."""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import phonenumbers

#: Longest text an agent may send in one message (Twilio's Body limit; about 10 GSM segments).
AGENT_TEXT_LIMIT = 1600
#: Longest piece of consumer text shown to the agent side as one message; longer texts are kept
#: whole in the store and shown as consecutive pieces of at most this length.
CONSUMER_PIECE_LIMIT = 5000

MessageClass = Literal["conversational", "informational", "marketing", "compliance"]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class InvalidNumber(ValueError):
    """A phone number that cannot be read as E.164."""


@functools.lru_cache(maxsize=16_384)  # parsing costs more than the rest of a webhook; consumers write again
def to_e164(number: str, *, default_region: str | None = None) -> str:
    """Return ``number`` in E.164 (``+14155550100``); digits without ``+`` are read as international.

    Raises :class:`InvalidNumber` for anything that is not a possible phone number.
    """
    raw = number.strip()
    if raw and raw[0] != "+" and default_region is None:
        raw = "+" + raw  # providers such as OpenMarket send international digits without '+'
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"not a phone number: {number!r}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidNumber(f"not a possible phone number: {number!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_SHORT_CODE = re.compile(r"^\d{3,8}$")
_ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


def to_sender(address: str) -> str:
    """A brand's SMS address: E.164 for a phone number; a short code (3-8 digits) or an alphanumeric
    sender id (up to 11 characters) kept as given, since neither has a country code to add.

    Raises :class:`InvalidNumber` for anything else.
    """
    value = address.strip()
    if _SHORT_CODE.match(value) or _ALPHANUMERIC.match(value):
        return value
    return to_e164(value)


class DeliveryStatus(enum.StrEnum):
    """Where an outbound message is; the terminal ones never change again."""

    QUEUED = "queued"  # in our outbox
    DEFERRED = "deferred"  # held back by a send check (quiet hours) until a later time
    RETRYING = "retrying"  # in our outbox after a retryable failure, to be tried again (the error is kept)
    SENDING = "sending"  # handed to the provider, no answer yet
    SENT = "sent"  # accepted by the provider or carrier
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    REFUSED = "refused"  # blocked by a send check (opt-out); never handed to a provider
    RECEIVED = "received"  # inbound messages

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def rank(self) -> int:
        """Order of progress: a status update never moves a message to a lower rank."""
        return _RANK[self]


_TERMINAL = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED,
                       DeliveryStatus.REFUSED, DeliveryStatus.RECEIVED})
_RANK = {DeliveryStatus.QUEUED: 0, DeliveryStatus.DEFERRED: 0, DeliveryStatus.RETRYING: 0, DeliveryStatus.SENDING: 1,
         DeliveryStatus.SENT: 2, DeliveryStatus.DELIVERED: 3, DeliveryStatus.UNDELIVERED: 3, DeliveryStatus.FAILED: 3,
         DeliveryStatus.REFUSED: 3, DeliveryStatus.RECEIVED: 3}


@dataclass(frozen=True, slots=True)
class Media:
    """An attachment: where to fetch it and what it is."""

    url: str
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One part of a concatenated SMS, from its UDH.

    ``payload`` and ``encoding`` carry the part's undecoded user data and its Python codec name when the
    provider gives raw bytes: reassembly joins payloads before decoding, so a character whose bytes were
    split across two parts survives.
    """

    reference: int
    total: int
    sequence: int
    payload: bytes | None = None
    encoding: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A consumer's message as the host sees it, whatever provider brought it."""

    provider: str
    provider_message_id: str  #: the provider's id for this message (or part): the dedupe key
    from_number: str  #: the consumer, E.164
    to_number: str  #: the brand number, E.164
    text: str = ""
    media: tuple[Media, ...] = ()
    segment: SegmentInfo | None = None  #: set when this is one part of a concatenated SMS
    num_segments: int | None = None  #: how many SMS segments it arrived in, when the provider says
    provider_keyword: str | None = None  #: a keyword the provider already acted on (Twilio OptOutType)
    incomplete: bool = False  #: reassembled without all of its parts (timeout)
    received_at: datetime = field(default_factory=utcnow)
    details: Mapping[str, str] = field(default_factory=dict)  #: provider facts worth keeping (service, geo)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A provider's report on an outbound message (or one part of it)."""

    provider: str
    provider_message_id: str
    status: DeliveryStatus
    error_code: str | None = None
    error_message: str | None = None
    segment: SegmentInfo | None = None  #: set for a per-part receipt
    occurred_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message the sender hands to a provider's ``smsconnector_send``."""

    id: int  #: the stored message's id
    provider: str
    from_number: str
    to_number: str
    text: str
    media: tuple[Media, ...] = ()
    conversation_id: int | None = None
    message_class: MessageClass = "conversational"
    attempt: int = 1  #: 1 on the first try
    #: seconds the provider may hold the message before giving up on it (quiet hours bound it)
    validity_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a provider answered when it accepted a message.

    A provider that gives the message one id returns ``SendResult("id")``. One that gives each part of a long
    message its own id, and reports on each part under it, returns :meth:`of_parts`: the host keeps every part's
    id, finds the message from a report on any of them, and makes the parts' reports one status (delivered once
    every part is, failed as soon as one part fails).
    """

    provider_message_id: str  #: the message's id (a provider that ids each part: its first part's)
    status: DeliveryStatus = DeliveryStatus.SENT
    segments: int | None = None
    #: every part's id, in part order, when the provider gives each part its own; empty when one id covers them all
    part_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(set(self.part_ids)) != len(self.part_ids) or not all(self.part_ids):
            raise ValueError(f"part ids must be distinct and not empty: {self.part_ids!r}")

    @classmethod
    def of_parts(cls, part_ids: Sequence[str], status: DeliveryStatus = DeliveryStatus.SENT) -> SendResult:
        """The result for a message sent as ``len(part_ids)`` parts, each under its own id, the first naming it."""
        if not part_ids:
            raise ValueError("a message has at least one part")
        return cls(provider_message_id=part_ids[0], status=status, segments=len(part_ids), part_ids=tuple(part_ids))

    @property
    def ids(self) -> tuple[str, ...]:
        """Every id the provider may report this message under: the message's, then each part's."""
        return tuple(dict.fromkeys((self.provider_message_id, *self.part_ids)))
