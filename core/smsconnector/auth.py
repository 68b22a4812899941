"""Bearer-token authentication for the agent and admin API, and for plugin endpoints.

Admin tokens come from configuration (``[api] admin_tokens``); agent tokens are issued per agent and kept
only as SHA-256 digests. A missing or unknown token is 401; a known token without the right is 403.

The browser pages use short-lived session tokens instead (:mod:`smsconnector.sessions`), which name an agent or
an administrator the same way; a one-time sign-in code opens a session and does nothing else.

Agent tokens are looked up in the store on every request, never remembered, so a token revoked on any replica
stops working at once. The requests that arrive at the same moment share one lookup (one statement for all
their tokens): a lookup each cost more than the rest of a reply's work in the store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sqlalchemy import bindparam, select
from starlette.requests import HTTPConnection

from .errors import Forbidden, Unauthenticated
from .store.batching import Batcher
from .store.models import Agent

if TYPE_CHECKING:
    from .app import App

Role = Literal["admin", "agent"]

#: the agents holding some of the digests (built once: building it per lookup costs as much as running it)
_AGENTS = select(Agent.token_hash, Agent.id).where(Agent.token_hash.in_(bindparam("digests", expanding=True)))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling."""

    role: Role
    agent_id: int | None = None

    @property
    def name(self) -> str:
        """Who this is, for what is kept per caller (idempotency keys): ``agent:<id>``, or ``admin``."""
        return self.role if self.agent_id is None else f"{self.role}:{self.agent_id}"


def new_token() -> str:
    """A fresh random token to hand out once."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(connection: HTTPConnection) -> str:
    """The token of an ``Authorization: Bearer`` header; :class:`Unauthenticated` when there is none."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("an 'Authorization: Bearer <token>' header is required")
    return token.strip()


class Auth:
    """Resolves bearer tokens to principals."""

    def __init__(self, app: App) -> None:
        self._app = app
        # Reads: on PostgreSQL a few lookups may run at once; SQLite has one connection.
        self._lookups: Batcher[str, int | None] = Batcher(
            self._agent_ids, concurrency=4 if app.store.dialect == "postgresql" else 1)

    async def authenticate(self, connection: HTTPConnection, *, codes: bool = False) -> Principal:
        """The caller the bearer token names; 401 when it names no one. ``codes``: a one-time sign-in code
        counts too (only where a session is opened)."""
        from . import sessions

        token = bearer_token(connection)
        if kind := sessions.kind_of(token):
            if kind == "code" and not codes:
                raise Unauthenticated("a sign-in code only opens a session (POST /api/sessions)")
            principal = await sessions.find(self._app.store, token, kind,
                                            {token_digest(t) for t in self._app.config.api.admin_tokens})
            if principal is None:
                raise Unauthenticated(f"unknown or expired {kind}")
            return principal
        for admin in self._app.config.api.admin_tokens:
            if hmac.compare_digest(token.encode(), admin.encode()):
                return Principal("admin")
        agent_id = await self._lookups.submit(token_digest(token))
        if agent_id is None:
            raise Unauthenticated("unknown token")
        return Principal("agent", agent_id)

    async def _agent_ids(self, digests: list[str]) -> list[int | None]:
        """The id of the agent holding each digest (``None``: no one), with one statement for them all."""
        async with self._app.store.engine.connect() as connection:
            found = dict((await connection.execute(_AGENTS, {"digests": sorted(set(digests))})).all())
        return [found.get(digest) for digest in digests]

    async def require(self, connection: HTTPConnection, *roles: Role, codes: bool = False) -> Principal:
        """The caller, if they hold one of ``roles``; 401 or 403 otherwise (``codes``: see :meth:`authenticate`)."""
        principal = await self.authenticate(connection, codes=codes)
        if principal.role not in roles:
            raise Forbidden(f"this needs the {' or '.join(roles)} role")
        return principal
