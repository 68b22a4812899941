"""Sessions of the browser pages (:mod:`smsconnector.sessions`): sign in, sign out."""

from __future__ import annotations

from datetime import timedelta

from ..auth import bearer_token, token_digest
from ..errors import Forbidden, Unauthenticated
from ..sessions import end as end_session
from ..sessions import issue, kind_of, redeem
from .endpoints import Call, endpoint
from .schemas import SessionOut

BOTH = ("admin", "agent")


@endpoint(
    "POST",
    "/api/sessions",
    roles=BOTH,
    sign_in=True,
    status=201,
    response=SessionOut,
    tag="sessions",
    summary="Sign in: exchange an agent's or admin token, or a one-time code, for a short-lived session token",
    errors=(403,),
)
async def sign_in(call: Call) -> SessionOut:
    token = bearer_token(call.request)
    kind = kind_of(token)
    if kind == "session":
        # It would outlive the sign-in it came from: a session is opened with a token or a code, and ends.
        raise Forbidden("a session cannot open another; sign in with a token or a one-time code")
    lifetime = timedelta(hours=call.app.config.api.session_hours)
    async with call.app.store.transaction() as session:
        admin_token_hash = token_digest(token) if call.admin else None
        if kind == "code":
            code = await redeem(session, token)
            if code is None:
                raise Unauthenticated("unknown or expired code")  # taken by a request that came at the same moment
            admin_token_hash = code.admin_token_hash
        issued = await issue(session, call.principal, "session", lifetime, admin_token_hash=admin_token_hash)
    return SessionOut(
        token=issued.token, role=call.principal.role, agent_id=call.principal.agent_id, expires_at=issued.expires_at
    )


@endpoint(
    "DELETE",
    "/api/sessions/current",
    roles=BOTH,
    status=204,
    tag="sessions",
    summary="Sign out: the session token stops working at once (any other token: nothing to end)",
)
async def sign_out(call: Call) -> None:
    token = bearer_token(call.request)
    if kind_of(token) == "session":
        async with call.app.store.transaction() as session:
            await end_session(session, token)
