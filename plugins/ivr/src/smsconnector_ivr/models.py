"""The plugin's table: one row per deflection offer, beside the conversation it opened."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from smsconnector.plugin import utcnow
from smsconnector.store.models import UTCDateTime

PENDING, ANSWERED, EXPIRED, SUPERSEDED = "pending", "answered", "expired", "superseded"


class Deflection(SQLModel, table=True):
    """A text offered to a caller on hold: pending until they reply, the offer lapses, or a new one replaces it."""

    __tablename__ = "ivr_deflections"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", unique=True)
    #: the opening text
    message_id: int = Field(foreign_key="messages.id")
    caller: str = Field(max_length=20)
    brand_number: str = Field(max_length=20)
    skill: str = Field(max_length=100)
    call_id: str | None = Field(default=None, max_length=100)
    status: str = Field(default=PENDING, max_length=16)  # pending | answered | expired | superseded
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
