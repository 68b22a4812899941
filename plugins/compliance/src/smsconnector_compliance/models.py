"""The plugin's tables: the append-only consent ledger and the counter of capped sends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from smsconnector.plugin import utcnow
from smsconnector.store.models import UTCDateTime

#: The ledger's actions.
OPT_OUT, OPT_IN, CONSENT, REVOKE, CONFIRMATION = "opt_out", "opt_in", "consent", "revoke", "confirmation"


class LedgerEvent(SQLModel, table=True):
    """One consent fact, never changed or removed (the database refuses UPDATE and DELETE on this table).

    ``opt_out`` stops everything from the scope (brand or number); ``opt_in`` lifts it; ``consent`` grants a
    class (conversational < informational < marketing); ``revoke`` withdraws a class and those above it;
    ``confirmation`` records that the single opt-out confirmation was handed to the provider.
    """

    __tablename__ = "compliance_ledger"
    __table_args__ = (Index("ix_compliance_ledger_consumer", "consumer_number", "scope", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    consumer_number: str = Field(max_length=20)
    #: what the event covers: ``brand:<name>`` or ``number:<e164>``
    scope: str = Field(max_length=120)
    #: the brand number (sender) it was obtained on or concerns
    brand_number: str = Field(max_length=20)
    action: str = Field(max_length=16)
    consent_class: str | None = Field(default=None, max_length=16)
    #: keyword, phrase, provider, agent, web_form, voice, email, import...
    method: str = Field(max_length=24)
    #: where it was captured: ``sms:twilio``, ``twilio:21610``, a form URL, an IVR call id and key...
    source: str | None = Field(default=None, max_length=300)
    #: the consumer's affirmative act: "texted 'STOP'", "ticked the SMS checkbox", "pressed 1"
    consumer_action: str | None = Field(default=None, max_length=300)
    raw_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: the keyword or phrase, as configured, that matched
    matched: str | None = Field(default=None, max_length=200)
    tier: int | None = None
    language: str | None = Field(default=None, max_length=8)
    disclosure_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: SHA-256 of the disclosure text, or the version hash given instead of it
    disclosure_hash: str | None = Field(default=None, max_length=64)
    campaign: str | None = Field(default=None, max_length=100)
    inbound_message_id: int | None = None
    #: the outbound message: the confirmation, or the send a provider refused
    message_id: int | None = None
    #: for ``confirmation``: the opt-out it confirms; unique, so only one confirmation per opt-out can exist
    confirms_event_id: int | None = Field(default=None, unique=True)
    #: for ``opt_out``: who confirms it -- "ours" (text in ``confirmation_text``), "provider" or "none"
    confirmation: str | None = Field(default=None, max_length=16)
    confirmation_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: the recipient's zones at capture, space-separated
    recipient_zones: str | None = Field(default=None, max_length=200)
    #: consumer, provider:<name>, agent:<id>, admin
    recorded_by: str = Field(max_length=50)


class CappedSend(SQLModel, table=True):
    """A message of a capped class handed to a provider, counted against the per-24-hours limits."""

    __tablename__ = "compliance_sends"
    __table_args__ = (Index("ix_compliance_sends_consumer", "consumer_number", "scope", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(unique=True)
    consumer_number: str = Field(max_length=20)
    scope: str = Field(max_length=120)
    brand_number: str = Field(max_length=20)
    message_class: str = Field(max_length=16)
    region: str | None = Field(default=None, max_length=8)
    sent_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
