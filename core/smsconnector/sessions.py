"""Sessions of the browser pages, and the one-time codes that open them.

The workspace and admin pages never keep an agent's long-lived token: signing in exchanges it (or a one-time
code, which ``smsconnector demo`` prints in a link's fragment) for a session token that expires after ``[api]
session_hours`` and that signing out deletes. The pages send it as ``Authorization: Bearer``, never in a cookie,
so no other site can make a browser use it (there is nothing for cross-site request forgery to ride on).

Tokens carry their kind in a prefix that an agent token (URL-safe base64) never has, so authenticating one looks
in one table only. Only their SHA-256 is stored. An agent's session ends when the agent is removed; an
administrator's when the admin token that opened it leaves ``[api] admin_tokens``.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .auth import Principal, token_digest
from .messages import utcnow
from .store import Store
from .store.models import Agent, AgentSession

SESSION_PREFIX = "s."
CODE_PREFIX = "c."
#: how long a one-time code can be exchanged
CODE_LIFETIME = timedelta(minutes=10)

Kind = Literal["session", "code"]


@dataclass(frozen=True, slots=True)
class Issued:
    """A session or code just made: the token, shown this once, and when it stops working."""

    token: str
    expires_at: datetime


def kind_of(token: str) -> Kind | None:
    """Whether ``token`` is a session, a one-time code, or neither (an agent's or admin token)."""
    if token.startswith(SESSION_PREFIX):
        return "session"
    if token.startswith(CODE_PREFIX):
        return "code"
    return None


async def issue(
    session: AsyncSession, principal: Principal, kind: Kind, lifetime: timedelta, *, admin_token_hash: str | None = None
) -> Issued:
    """Store a new session or one-time code for ``principal`` in ``session``'s transaction; an administrator's
    names the digest of the admin token it stems from."""
    token = (SESSION_PREFIX if kind == "session" else CODE_PREFIX) + secrets.token_urlsafe(32)
    expires = utcnow() + lifetime
    session.add(
        AgentSession(
            token_hash=token_digest(token),
            kind=kind,
            role=principal.role,
            agent_id=principal.agent_id,
            admin_token_hash=admin_token_hash,
            expires_at=expires,
        )
    )
    await session.flush()
    return Issued(token, expires)


async def find(store: Store, token: str, kind: Kind, admin_token_hashes: Collection[str]) -> Principal | None:
    """Who an unexpired session or code belongs to (``None``: no one, an agent since removed, or an administrator
    whose token is no longer one of ``admin_token_hashes``)."""
    stmt = (
        select(AgentSession.role, AgentSession.agent_id, AgentSession.admin_token_hash)
        .outerjoin(Agent, Agent.id == AgentSession.agent_id)
        .where(
            AgentSession.token_hash == token_digest(token),
            AgentSession.kind == kind,
            AgentSession.expires_at > utcnow(),
            Agent.deleted_at.is_(None),
        )
    )
    async with store.engine.connect() as connection:
        row = (await connection.execute(stmt)).first()
    if row is None or (row.role == "admin" and row.admin_token_hash not in admin_token_hashes):
        return None
    return Principal(row.role, row.agent_id)


async def redeem(session: AsyncSession, code: str) -> AgentSession | None:
    """Use up a one-time code in ``session``'s transaction: its row, if it was still there to use (once only,
    even when two requests bring it at the same moment: only one of them deletes the row)."""
    found = await session.exec(
        select(AgentSession).where(
            AgentSession.token_hash == token_digest(code),
            AgentSession.kind == "code",
            AgentSession.expires_at > utcnow(),
        )
    )
    row = found.scalars().first()
    if row is None:
        return None
    deleted = await session.exec(delete(AgentSession).where(AgentSession.id == row.id))  # type: ignore[call-overload]
    return row if deleted.rowcount else None


async def end(session: AsyncSession, token: str) -> None:
    """Delete the session ``token`` (signing out)."""
    await session.exec(
        delete(AgentSession).where(  # type: ignore[call-overload]
            AgentSession.token_hash == token_digest(token), AgentSession.kind == "session"
        )
    )


async def prune(store: Store) -> None:
    """Forget expired sessions and codes."""
    async with store.transaction() as session:
        await session.exec(delete(AgentSession).where(AgentSession.expires_at <= utcnow()))  # type: ignore[call-overload]


async def new_code(store: Store, principal: Principal) -> str:
    """A one-time sign-in code for ``principal``, good for :data:`CODE_LIFETIME` (``smsconnector demo`` prints
    one in the workspace's link)."""
    async with store.transaction() as session:
        return (await issue(session, principal, "code", CODE_LIFETIME)).token
