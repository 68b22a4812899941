"""The ``Idempotency-Key`` request header: a write retried with the same key is answered its first result.

A client whose answer was lost (a timeout, a dropped connection) cannot tell whether its write happened; sent
again with the same key, the request is answered the status and body it got the first time, and nothing is
done twice. This follows the IETF draft "The Idempotency-Key HTTP Header Field":

- The key is the header's value: a Structured Field String (``"..."``), or the same characters unquoted. It
  must be 1 to :data:`MAX_KEY_LENGTH` printable ASCII characters; anything else is refused with 400.
- A key belongs to one caller and one endpoint (:class:`Keyed`); other callers' keys never meet it.
- The first request with a key does the work and stores the key, its fingerprint (a hash of the method, path
  and body) and its answer in the same transaction as the work: both are committed, or neither.
- The same key with the same request again: the stored answer. With another request: 422, nothing done.
- Two requests with the same key at once: the unique constraint on the key lets one do the work; the other
  answers the first's result once it is committed, or 409 (try again) while it cannot see it.
- A refused request (4xx) stores no key, so a corrected request may use the same key. An answer is stored only
  for a request that did its work.

Keys are kept ``[api] idempotency_retention_hours`` (24 h), then pruned by the host's upkeep.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from .errors import Conflict, RequestRejected
from .messages import utcnow
from .store import Store
from .store.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
#: what the header's value may be, for the OpenAPI document (quoted, a key of the longest length is 2 longer)
SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH + 2, "pattern": "^[\\x20-\\x7E]+$"}

_TABLE = IdempotencyKey.__table__
_COLUMNS = (_TABLE.c.caller, _TABLE.c.endpoint, _TABLE.c.key)
_LOOKUP = select(IdempotencyKey.fingerprint, IdempotencyKey.status, IdempotencyKey.response).where(
    IdempotencyKey.caller == bindparam("caller"), IdempotencyKey.endpoint == bindparam("endpoint"),
    IdempotencyKey.key == bindparam("key"))
_RECORD = (update(_TABLE).where(_TABLE.c.caller == bindparam("b_caller"), _TABLE.c.endpoint == bindparam("b_endpoint"),
                                _TABLE.c.key == bindparam("b_key"))
           .values(status=bindparam("b_status"), response=bindparam("b_response")))


class InvalidKey(RequestRejected):
    """The ``Idempotency-Key`` header is empty, too long, or not printable ASCII."""

    status = 400
    code = "invalid_idempotency_key"


class KeyReused(RequestRejected):
    """The key was used before for another request (method, path or body)."""

    status = 422
    code = "idempotency_key_reused"


class InProgress(Conflict):
    """Another request with the key is still being processed."""

    code = "idempotency_key_in_use"
    headers = {"Retry-After": "1"}


class Taken(Exception):
    """Raised in a transaction that found its key claimed by another request: roll back, then :func:`settle`."""


@dataclass(frozen=True, slots=True)
class Keyed:
    """A request made with a key, and what its key is unique for."""

    caller: str
    endpoint: str  #: method and path template
    key: str
    fingerprint: str
    status: int  #: what the request is answered when it does its work

    @property
    def identity(self) -> tuple[str, str, str]:
        return self.caller, self.endpoint, self.key


def requested(request: Request, body: bytes, *, caller: str, endpoint: str, status: int) -> Keyed | None:
    """The request's key, if it has one (``None``: no header; the request runs as it would without).

    :param caller: who is asking (:attr:`smsconnector.auth.Principal.name`, or a plugin's name for its token).
    :param endpoint: the method and path template the key is unique for.
    :param status: the status the request is answered when it does its work.
    :raises InvalidKey: the header is not a valid key.
    """
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = parse(raw)
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + body).hexdigest()
    return Keyed(caller, endpoint, key, digest, status)


def parse(value: str) -> str:
    """The key a header value names: a Structured Field String's content, or the value itself unquoted."""
    if len(value) > MAX_KEY_LENGTH + 2:  # a quoted key of the longest length, with its quotes
        raise InvalidKey(f"{HEADER}: the key is longer than {MAX_KEY_LENGTH} characters")
    if value.startswith('"'):
        key, escaped = [], False
        for n, char in enumerate(value[1:], start=1):
            if escaped:
                if char not in '"\\':
                    raise InvalidKey(f"{HEADER}: only \\\" and \\\\ may be escaped in a quoted key")
                key.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                if n != len(value) - 1:
                    raise InvalidKey(f"{HEADER}: nothing may follow the quoted key")
                return _checked("".join(key))
            else:
                key.append(char)
        raise InvalidKey(f"{HEADER}: the quoted key has no closing quote")
    return _checked(value)


def _checked(key: str) -> str:
    if not key:
        raise InvalidKey(f"{HEADER}: the key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"{HEADER}: the key is {len(key)} characters; the limit is {MAX_KEY_LENGTH}")
    if not all(" " <= char <= "~" for char in key):
        raise InvalidKey(f"{HEADER}: the key must be printable ASCII")
    return key


async def recorded(store: Store, keyed: Keyed) -> Response | None:
    """The answer a request with ``keyed``'s key was given, if one was (``None``: none was).

    :raises KeyReused: the key was used for another request.
    :raises InProgress: the request with the key has not been answered yet.
    """
    async with store.session() as session:
        found = (await session.exec(_LOOKUP, params=dict(zip(("caller", "endpoint", "key"), keyed.identity,
                                                              strict=True)))).first()
    if found is None:
        return None
    fingerprint, status, body = found
    if fingerprint != keyed.fingerprint:
        raise KeyReused(f"this {HEADER} was used for another request (method, path or body); a new request needs a "
                        "new key")
    if status is None or body is None:
        raise InProgress(f"a request with this {HEADER} is still being processed; try again")
    return Response(body, status_code=status, media_type="application/json")


async def settle(store: Store, keyed: Keyed) -> Response:
    """The answer for a request that lost its key to another (:class:`Taken`): the other's, once committed."""
    answer = await recorded(store, keyed)
    if answer is None:
        raise InProgress(f"a request with this {HEADER} is still being processed; try again")
    return answer


async def claim(session: AsyncSession, keyed: Keyed | None) -> None:
    """Claim ``keyed``'s key in ``session``'s transaction, before its work (nothing without a key).

    :raises Taken: another request claimed it (on PostgreSQL, once that request committed).
    """
    if keyed is not None and not await claim_all(session, [keyed]):
        raise Taken()


async def claim_all(session: AsyncSession, keyed: Sequence[Keyed]) -> list[Keyed]:
    """Claim the keys of ``keyed`` in ``session``'s transaction, with one statement; those this transaction won.

    Of requests with the same key in ``keyed``, the first wins. Keys are claimed in a fixed order, so two
    transactions claiming the same keys never wait on each other in a circle.
    """
    first: dict[tuple[str, str, str], Keyed] = {}
    for one in keyed:
        first.setdefault(one.identity, one)
    if not first:
        return []
    now = utcnow()
    rows = [{"caller": k.caller, "endpoint": k.endpoint, "key": k.key, "fingerprint": k.fingerprint,
             "created_at": now} for _, k in sorted(first.items())]
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    statement = (dialect.insert(_TABLE).on_conflict_do_nothing(index_elements=["caller", "endpoint", "key"])
                 .returning(*_COLUMNS))
    won = {tuple(row) for row in (await session.exec(statement, params=rows)).all()}  # type: ignore[call-overload]
    return [k for identity, k in first.items() if identity in won]


async def record(session: AsyncSession, keyed: Keyed | None, response: Response) -> None:
    """Store ``response`` as the answer to ``keyed``'s request, in the transaction that claimed its key."""
    if keyed is not None:
        await record_all(session, [(keyed, response)])


async def record_all(session: AsyncSession, answers: Sequence[tuple[Keyed, Response]]) -> None:
    """:func:`record` for several claimed keys, with one statement."""
    if answers:
        connection = await session.connection()
        await connection.execute(_RECORD, [
            {"b_caller": k.caller, "b_endpoint": k.endpoint, "b_key": k.key, "b_status": r.status_code,
             "b_response": bytes(r.body).decode()} for k, r in answers])


async def prune(store: Store, *, retention_hours: float) -> int:
    """Forget keys older than ``retention_hours``; how many."""
    async with store.transaction() as session:
        connection = await session.connection()
        result = await connection.execute(
            delete(_TABLE).where(_TABLE.c.created_at < utcnow() - timedelta(hours=retention_hours)))
        return int(result.rowcount or 0)
