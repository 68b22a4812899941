"""The helpers for a plugin's own JSON endpoints: token, body limit, JSON and field errors, over real HTTP."""

from __future__ import annotations

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconnector.endpoints import json_model, require_token
from smsconnector.plugins import hookimpl

TOKEN = "example-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Greeting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    times: int = Field(1, ge=1)


class Example:
    """A plugin with one endpoint built from the helpers; ``token`` None means no token is configured."""

    def __init__(self, token: str | None, limit: int | None = None) -> None:
        self.token = token
        self.limit = limit

    @hookimpl
    def smsconnector_register_routes(self, app):
        """``POST /api/example``."""

        async def greet(request: Request) -> Response:
            require_token(request, self.token, setting="plugins.example.token")
            body = await json_model(app, request, Greeting, limit=self.limit)
            return JSONResponse({"greeting": f"Hello {body.name}" * body.times})

        return [Route("/api/example", greet, methods=["POST"])]


def post(make_app, live_server, *, token: str | None = TOKEN, limit: int | None = None, **kwargs) -> httpx.Response:
    server = live_server(make_app(register=[("example", Example(token, limit))]))
    return httpx.post(f"{server.url}/api/example", **kwargs)


def test_a_good_request_reaches_the_handler(make_app, live_server):
    response = post(make_app, live_server, json={"name": "Ana"}, headers=AUTH)
    assert (response.status_code, response.json()) == (200, {"greeting": "Hello Ana"})


@pytest.mark.parametrize(("label", "token", "headers", "detail"), [
    ("no header", TOKEN, {}, "an 'Authorization: Bearer <token>' header is required"),
    ("wrong token", TOKEN, {"Authorization": "Bearer nope"}, "unknown token"),
    ("no token configured", None, AUTH, "no token is configured for this endpoint: set plugins.example.token"),
], ids=lambda v: v if isinstance(v, str) and " " in v else None)
def test_a_missing_or_unknown_token_is_401_with_the_scheme(make_app, live_server, label, token, headers, detail):
    response = post(make_app, live_server, token=token, json={"name": "Ana"}, headers=headers)
    assert response.status_code == 401, label
    assert response.headers["www-authenticate"] == 'Bearer realm="smsconnector"'
    assert response.json() == {"error": "unauthenticated", "detail": detail}


@pytest.mark.parametrize(("label", "kwargs", "status", "error", "detail"), [
    ("not JSON", {"content": b'{"name": '}, 400, "malformed", "body is not JSON"),
    ("not UTF-8", {"content": b'{"name": "\xff"}'}, 400, "malformed", "body is not JSON"),
    ("not an object", {"json": ["Ana"]}, 400, "malformed", "expected a JSON object"),
    ("field missing", {"json": {}}, 422, "invalid_request", "name: Field required"),
    ("field wrong", {"json": {"name": "Ana", "times": 0}}, 422, "invalid_request",
     "times: Input should be greater than or equal to 1"),
    ("unknown field", {"json": {"name": "Ana", "colour": "red"}}, 422, "invalid_request",
     "colour: Extra inputs are not permitted"),
    ("over the limit", {"json": {"name": "A" * 200}}, 413, "too_large", "exceeds the limit of 100 bytes"),
], ids=lambda v: v if isinstance(v, str) and " " in v or v == "not JSON" else None)
def test_a_bad_body_is_refused_naming_what_is_wrong(make_app, live_server, label, kwargs, status, error, detail):
    response = post(make_app, live_server, limit=100, headers=AUTH, **kwargs)
    assert (response.status_code, response.json()["error"]) == (status, error), label
    assert detail in response.json()["detail"], response.json()


def test_the_limit_defaults_to_max_body_bytes(make_app, live_server):
    server = live_server(make_app(max_body_bytes=1024, register=[("example", Example(TOKEN))]))
    response = httpx.post(f"{server.url}/api/example", json={"name": "A" * 2000}, headers=AUTH)
    assert (response.status_code, response.json()["error"]) == (413, "too_large")
    assert "exceeds the limit of 1024 bytes" in response.json()["detail"]
