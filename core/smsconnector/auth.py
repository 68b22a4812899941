"""Bearer-token authentication for the agent and admin API, and for plugin endpoints.

Admin tokens come from configuration (``[api] admin_tokens``); agent tokens are issued per agent and kept
only as SHA-256 digests. A missing or unknown token is 401; a known token without the right is 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select
from starlette.requests import HTTPConnection

from .errors import Forbidden, Unauthenticated
from .store.models import Agent

if TYPE_CHECKING:
    from .app import App

Role = Literal["admin", "agent"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling."""

    role: Role
    agent_id: int | None = None


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

    async def authenticate(self, connection: HTTPConnection) -> Principal:
        token = bearer_token(connection)
        for admin in self._app.config.api.admin_tokens:
            if hmac.compare_digest(token.encode(), admin.encode()):
                return Principal("admin")
        async with self._app.store.session() as session:
            agent_id = (await session.exec(
                select(Agent.id).where(Agent.token_hash == token_digest(token))
            )).scalar_one_or_none()
        if agent_id is None:
            raise Unauthenticated("unknown token")
        return Principal("agent", agent_id)

    async def require(self, connection: HTTPConnection, *roles: Role) -> Principal:
        """The caller, if they hold one of ``roles``; 401 or 403 otherwise."""
        principal = await self.authenticate(connection)
        if principal.role not in roles:
            raise Forbidden(f"this needs the {' or '.join(roles)} role")
        return principal
