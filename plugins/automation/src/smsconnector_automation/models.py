"""The plugin's table: each automated text, with what should become of a reply to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from smsconnector.plugin import utcnow
from smsconnector.store.models import UTCDateTime, empty_dict

AGENT, AUTO_REPLY, IGNORE = "agent", "auto_reply", "ignore"


class AutomationSend(SQLModel, table=True):
    """One automated text to one consumer; a reply before ``reply_until`` is handled by ``reply_policy``."""

    __tablename__ = "automation_sends"
    # The route hook looks up a consumer's latest send from a brand number on every inbound message.
    __table_args__ = (Index("ix_automation_sends_recipient", "consumer_number", "brand_number", "message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", unique=True)
    consumer_number: str = Field(max_length=20)
    brand_number: str = Field(max_length=20)
    campaign: str = Field(max_length=100)
    message_class: str = Field(max_length=16)
    reply_policy: str = Field(max_length=16)  # agent | auto_reply | ignore
    skill: str | None = Field(default=None, max_length=100)
    #: what the brand's system said about this recipient (appointment id...), shown to the agent
    context: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    reply_until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
