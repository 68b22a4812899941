"""Inserting many rows with one statement and getting their ids back, in the rows' order, on either database."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlmodel.ext.asyncio.session import AsyncSession


async def insert_all(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table`` with one statement; their ids, in the rows' order."""
    if not rows:
        return []
    if session.bind.dialect.name == "sqlite":
        # SQLite numbers each new row one past the largest id so far, row after row in the statement's order, but
        # returns them in no set order; SQLAlchemy, which cannot assume the numbering, would insert one row a
        # statement to keep the order. Sorted, the ids are in the rows' order.
        return sorted((await session.exec(_insert(table, ordered=False), params=rows)).scalars())
    return list((await session.exec(_insert(table, ordered=True), params=rows)).scalars())


@functools.cache
def _insert(table: Table, *, ordered: bool) -> Any:
    # Built once per table: building a statement per batch costs about as much as running it.
    return insert(table).returning(table.c.id, sort_by_parameter_order=ordered)
