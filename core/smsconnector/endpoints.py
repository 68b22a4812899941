"""Helpers for a plugin's own JSON endpoints: its bearer token, and a request body read into a pydantic model.

Each refusal raises a :class:`~smsconnector.errors.RequestRejected` that the host answers with a JSON error and
stores nothing: 401 with ``WWW-Authenticate`` for a missing or unknown token, 413 past the body limit, 400 for a
body that is not a JSON object or holds what no database stores (:func:`smsconnector.untrusted.loads`), and 422
(``invalid_request``) naming the first wrong field::

    async def create(request: Request) -> Response:
        require_token(request, plugin.settings.token, setting="plugins.my.token")
        body = await json_model(app, request, CreateRequest)
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError

from .auth import bearer_token
from .errors import Malformed, MessageRejected, Unauthenticated
from .untrusted import loads

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection, Request

    from .app import App

M = TypeVar("M", bound=BaseModel)


def require_token(request: HTTPConnection, expected: str | None, *, setting: str) -> None:
    """Pass only ``Authorization: Bearer <expected>``; with no token configured (``setting``) refuse everyone."""
    if expected is None:
        raise Unauthenticated(f"no token is configured for this endpoint: set {setting}")
    if not hmac.compare_digest(bearer_token(request).encode(), expected.encode()):
        raise Unauthenticated("unknown token")


async def json_model(app: App, request: Request, model: type[M], *, limit: int | None = None) -> M:
    """The body, at most ``limit`` bytes (default ``max_body_bytes``), as a JSON object validated into ``model``."""
    return json_body(await app.read_body(request, limit=limit), model)


def json_body(raw: bytes, model: type[M]) -> M:
    """A body already read (e.g. to fingerprint it for its idempotency key) as a JSON object validated into
    ``model``."""
    data = loads(raw, strict=True)
    if not isinstance(data, dict):
        raise Malformed("expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Only where and what, never the input: a body may carry message text.
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "body"
        raise MessageRejected(f"{where}: {first['msg']}", code="invalid_request") from None
