"""An API endpoint is declared once, with its roles and models, and becomes both a route and its OpenAPI entry.

Every request is checked in the same order: the bearer token (401), the role (403), the path ids (404) and
names (400 for one no database stores), then the handler checks the caller may touch what the path names (403,
404), then reads the query and body (400 for a body that is not JSON or holds what no database stores, such as
NUL; 422 for one that breaks the model), and may refuse with 409 or 422.

An endpoint declared ``idempotent`` takes an ``Idempotency-Key`` header (:mod:`smsconnector.idempotency`): after
the path ids, the key is checked (400) and, if it answered a request before, that answer is given again (or 422
for a different request) before the handler runs; the handler claims the key and records its answer in the
transaction that does its work (:meth:`Call.remember`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import idempotency
from ..auth import Principal, Role
from ..errors import Malformed, NotFound, RequestRejected
from ..untrusted import loads, refuse_unstorable

if TYPE_CHECKING:
    from ..app import App

M = TypeVar("M", bound=BaseModel)

#: path ids are 32-bit on every database; anything larger names nothing
MAX_ID = 2**31 - 1


class InvalidRequest(RequestRejected):
    """The request's query or body does not match what the endpoint takes."""

    status = 422
    code = "invalid_request"


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated API request.

    The query and body are parsed up front, but a refusal of them is raised only when the handler reads
    ``query`` or ``body``: handlers read them after checking the caller may touch the resource, so a
    caller without the right gets 403 whatever they sent.
    """

    app: App
    request: Request
    principal: Principal
    parsed_query: BaseModel | RequestRejected | None = None
    parsed_body: BaseModel | RequestRejected | None = None
    #: the request's idempotency key, on an ``idempotent`` endpoint that was sent one
    idempotency: idempotency.Keyed | None = None

    def param(self, name: str) -> Any:
        return self.request.path_params[name]

    @property
    def admin(self) -> bool:
        return self.principal.role == "admin"

    @property
    def query(self) -> Any:
        return _unwrap(self.parsed_query)

    @property
    def body(self) -> Any:
        return _unwrap(self.parsed_body)

    async def remember(self, session: AsyncSession, result: M) -> M | Response:
        """``result`` as the answer, recorded under the request's idempotency key (if any) in ``session``'s
        transaction, the one that did the work: the key is stored with what the request changed, or not at all."""
        if self.idempotency is None:
            return result
        response = rendered(result, self.idempotency.status)
        await idempotency.record(session, self.idempotency, response)
        return response


def _unwrap(parsed: BaseModel | RequestRejected | None) -> Any:
    if isinstance(parsed, RequestRejected):
        raise parsed
    return parsed


Handler = Callable[[Call], Awaitable[BaseModel | Response | None]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str  #: with Starlette convertors: ``/api/agents/{agent_id:int}``
    handler: Handler
    roles: tuple[Role, ...]
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()  #: refusals beyond the ones every endpoint of its shape has
    media_type: str = "application/json"
    #: takes an ``Idempotency-Key`` header; the handler claims it (:func:`smsconnector.idempotency.claim`) and
    #: records its answer (:meth:`Call.remember`) in the transaction that does its work
    idempotent: bool = False
    #: a one-time sign-in code is a bearer token here too (opening a session is all a code does)
    sign_in: bool = False

    @property
    def openapi_path(self) -> str:
        return re.sub(r"{(\w+):\w+}", r"{\1}", self.path)

    @property
    def path_params(self) -> list[tuple[str, str]]:
        """``(name, convertor)`` of each path parameter."""
        return [(name, kind or "str") for name, kind in re.findall(r"{(\w+)(?::(\w+))?}", self.path)]

    @property
    def error_statuses(self) -> list[int]:
        statuses = {401, 403, *self.errors}
        if self.path_params:
            statuses.add(404)
        if any(kind == "str" for _, kind in self.path_params):
            statuses.add(400)
        if self.query is not None:
            statuses.update((400, 422))
        if self.body is not None:
            statuses.update((400, 413, 422))
        if self.idempotent:
            statuses.update((400, 409, 422))
        return sorted(statuses)

    def route(self, app: App) -> Route:
        async def run(request: Request) -> Response:
            principal = await app.auth.require(request, *self.roles, codes=self.sign_in)
            for name, kind in self.path_params:
                if kind == "int" and not 1 <= request.path_params[name] <= MAX_ID:
                    raise NotFound(f"no {name.removesuffix('_id')} {request.path_params[name]}")
                if kind == "str":
                    refuse_unstorable(request.path_params[name], f"path: {name}")
            raw = await app.read_body(request) if self.body else b""  # too large: refused at once
            keyed = idempotency.requested(request, raw, caller=principal.name, endpoint=f"{self.method} "
                                          f"{self.openapi_path}", status=self.status) if self.idempotent else None
            if keyed is not None and (answered := await idempotency.recorded(app.store, keyed)) is not None:
                return answered
            call = Call(app, request, principal,
                        parsed_query=_query(self.query, request) if self.query else None,
                        parsed_body=_body(self.body, raw) if self.body else None, idempotency=keyed)
            try:
                result = await self.handler(call)
            except idempotency.Taken:
                assert keyed is not None
                return await idempotency.settle(app.store, keyed)
            if result is None:
                return Response(status_code=self.status)
            if isinstance(result, Response):
                return result
            return rendered(result, self.status)

        return Route(self.path, run, methods=[self.method], name=f"{self.method} {self.openapi_path}")


#: every endpoint of the API, in declaration order (filled as the resource modules are imported)
ENDPOINTS: list[Endpoint] = []


def endpoint(method: str, path: str, *, roles: tuple[Role, ...], summary: str, tag: str,
             **options: Any) -> Callable[[Handler], Handler]:
    """Declare an API endpoint."""

    def register(handler: Handler) -> Handler:
        ENDPOINTS.append(Endpoint(method, path, handler, roles, summary, tag, **options))
        return handler

    return register


def rendered(result: BaseModel, status: int) -> Response:
    """The JSON answer an endpoint gives with ``result``."""
    return JSONResponse(result.model_dump(mode="json", by_alias=True), status_code=status)


def _parsed(model: type[BaseModel], data: Any) -> BaseModel | RequestRejected:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Only where and what, never the input: a body may carry message text.
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]]
        return InvalidRequest("; ".join(problems))


def _query(model: type[BaseModel], request: Request) -> BaseModel | RequestRejected:
    query = dict(request.query_params)
    try:
        for name, value in query.items():
            refuse_unstorable(value, f"query: {name}" if name.isidentifier() and len(name) <= 30 else "query")
    except Malformed as refusal:
        return refusal
    return _parsed(model, query)


def _body(model: type[BaseModel], raw: bytes) -> BaseModel | RequestRejected:
    try:
        data = loads(raw, strict=True)  # NUL, lone surrogates, deep nesting, numbers no column holds: 400
    except Malformed as refusal:
        return refusal
    return _parsed(model, data)
