"""Per-sender-number pacing, shared by every process: carriers allow a number so many segments a second.

Each throttled number has a row in ``send_rates`` holding its next free sending slot. A send reserves the
slot for its segments with one atomic statement -- an upsert that moves the number's next free slot on and
returns how far away the reserved one starts -- in the transaction the sender already runs to check the
message, so pacing costs no commit of its own, and the rate holds in total across every process that sends
from the number. A number whose rate is 0 is not paced and costs nothing.

A slot further away than the horizon is not reserved: the sender hands the row back, due when the number is
next free, rather than keep it past its lease (another sender would then take it over and send it again).

Times are seconds since the Unix epoch: numbers, so that both databases do the arithmetic in the statement.
On PostgreSQL they come from the database server's clock, so replicas on different machines agree; on SQLite,
whose processes share one machine, from the process's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import TextClause, text
from sqlmodel.ext.asyncio.session import AsyncSession


class Slot(NamedTuple):
    """A sending slot asked for: reserved, starting ``wait`` seconds from now; or not reserved, because the
    number's next free slot is ``wait`` seconds away, beyond the horizon."""

    reserved: bool
    wait: float


class Throttle:
    """Spaces sends from each number at its rate (segments a second), across processes; a rate of 0 means
    unthrottled. ``horizon_seconds``: how far ahead a slot may be reserved."""

    def __init__(self, rate_for: Callable[[str], float], *, horizon_seconds: float) -> None:
        self._rate_for = rate_for
        self.horizon_seconds = horizon_seconds

    def paces(self, number: str) -> bool:
        """Whether sends from ``number`` are throttled at all (when not, counting their segments is wasted)."""
        return self._rate_for(number) > 0

    async def reserve(self, session: AsyncSession, number: str, segments: int) -> Slot:
        """Take the next slot of ``number`` for ``segments``, in ``session``'s transaction, unless it starts
        beyond the horizon. On PostgreSQL the number's row stays locked until the transaction ends, so take
        several numbers' slots in one transaction in a fixed order (the sender sorts them)."""
        dialect = session.bind.dialect.name
        statements = _STATEMENTS[dialect]
        params = {"number": number, "cost": segments / self._rate_for(number), "horizon": self.horizon_seconds}
        if dialect == "sqlite":
            params["now"] = time.time()
        wait = (await session.exec(statements.reserve, params=params)).scalar()
        if wait is not None:
            return Slot(True, max(0.0, wait))
        busy_for = (await session.exec(statements.next_free, params=params)).scalar_one()
        return Slot(False, busy_for)


class _Statements(NamedTuple):
    reserve: TextClause
    next_free: TextClause


def _statements(now: str, greatest: str) -> _Statements:
    """The two statements, with the dialect's current time and larger-of-two function spelled in."""
    reserve = text(f"""
        INSERT INTO send_rates (number, next_free_at) VALUES (:number, {now} + :cost)
        ON CONFLICT (number) DO UPDATE SET next_free_at = {greatest}(send_rates.next_free_at, {now}) + :cost
            WHERE send_rates.next_free_at - {now} <= :horizon
        RETURNING next_free_at - :cost - {now}
    """)
    next_free = text(f"SELECT next_free_at - {now} FROM send_rates WHERE number = :number")
    return _Statements(reserve, next_free)


#: Per dialect. PostgreSQL's statement_timestamp() is the same throughout one statement.
_STATEMENTS = {
    "postgresql": _statements("extract(epoch FROM statement_timestamp())::float8", "GREATEST"),
    "sqlite": _statements("CAST(:now AS REAL)", "MAX"),
}
