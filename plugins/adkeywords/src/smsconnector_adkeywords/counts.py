"""Counting matches in the routing transaction, and reading the counts back per keyword and per campaign."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .keywords import Keyword
from .models import KeywordCount


async def increment(session: AsyncSession, keyword: Keyword, now: datetime) -> None:
    """Count one match; an upsert, so concurrent matches on several replicas all count."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(KeywordCount).values(brand_number=keyword.number, keyword=keyword.label,
                                       campaign=keyword.campaign, matches=1, first_matched_at=now,
                                       last_matched_at=now)
    await session.exec(stmt.on_conflict_do_update(
        index_elements=["brand_number", "keyword", "campaign"],
        set_={"matches": col(KeywordCount.matches) + 1, "last_matched_at": now}))


async def stats(session: AsyncSession, configured: Iterable[Keyword]) -> dict[str, list[dict[str, Any]]]:
    """Counts per keyword (configured ones that never matched at 0) and their totals per campaign."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {
        (k.number, k.label, k.campaign): {"number": k.number, "keyword": k.label, "campaign": k.campaign, "matches": 0,
                                         "first_matched_at": None, "last_matched_at": None} for k in configured}
    for count in (await session.exec(select(KeywordCount))).all():
        rows[(count.brand_number, count.keyword, count.campaign)] = {
            "number": count.brand_number, "keyword": count.keyword, "campaign": count.campaign,
            "matches": count.matches, "first_matched_at": count.first_matched_at.isoformat(),
            "last_matched_at": count.last_matched_at.isoformat()}
    campaigns: dict[str, int] = {}
    for row in rows.values():
        campaigns[row["campaign"]] = campaigns.get(row["campaign"], 0) + row["matches"]
    return {"keywords": [rows[key] for key in sorted(rows)],
            "campaigns": [{"campaign": name, "matches": matches} for name, matches in sorted(campaigns.items())]}
