"""The plugin's table: how often each keyword of each campaign matched, counted in the message's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from smsconnector.store.models import UTCDateTime


class KeywordCount(SQLModel, table=True):
    """One keyword of one campaign on one brand number."""

    __tablename__ = "adkeyword_counts"
    # The upsert's conflict target: one row per keyword and campaign, however many replicas count at once.
    __table_args__ = (UniqueConstraint("brand_number", "keyword", "campaign", name="uq_adkeyword_counts_key"),)

    id: int | None = Field(default=None, primary_key=True)
    brand_number: str = Field(max_length=20)
    keyword: str = Field(max_length=100)
    campaign: str = Field(max_length=100)
    matches: int = 0
    first_matched_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_matched_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
