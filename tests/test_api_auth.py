"""Every API endpoint refuses a missing token, an unknown token, and a token without the right.

The host's routes under /api/ must all be declared endpoints (checked against the app's own routes), and
every declared endpoint is called, so a new endpoint cannot escape these checks; endpoints that every valid
token may use are listed by name, so adding one is a decision someone makes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from smsconnector.api import ENDPOINTS, Endpoint

from .api_support import ADMIN_TOKEN, Desk, api_app, bearer, snapshot

#: endpoints any valid token may call (an agent's view of them is scoped, never refused)
OPEN_TO_EVERY_TOKEN = {"GET /api/me", "GET /api/skills", "GET /api/skills/{name}", "GET /api/events",
                       "POST /api/sessions", "DELETE /api/sessions/current", "POST /api/segments"}


def _label(endpoint: Endpoint) -> str:
    return f"{endpoint.method} {endpoint.openapi_path}"


@pytest.fixture
def desk(make_app, live_server):
    server = live_server(api_app(make_app))
    desk = Desk(server)
    desk.agent("Ana")
    desk.agent("Ben")
    desk.text("c1")  # assigned to Ana (tie: lowest id)
    desk.text("c2")  # assigned to Ben
    assert (desk.where("c1"), desk.where("c2")) == ("Ana", "Ben")
    yield desk
    desk.close()


def _host_api_routes(desk: Desk) -> set[str]:
    """``METHOD path`` of every route under /api/ the host serves (plugins' own routes are theirs to test)."""
    app = desk.server.app

    def labels(routes) -> set[str]:
        return {f"{method} {route.path}" for route in routes if getattr(route, "path", "").startswith("/api/")
                for method in set(getattr(route, "methods", None) or ()) - {"HEAD"}}

    return labels(app.routes) - labels(app.hooks.routes())


def _url(desk: Desk, endpoint: Endpoint) -> str:
    """A concrete path: ids are Ben's (his agent id, his conversation, its first message), so Ana's token is not
    the owner's."""
    conversation_id = desk.current("c2")["id"]
    message_id = desk.admin("GET", f"/api/conversations/{conversation_id}").json()["messages"][0]["id"]
    ids = {"agent_id": desk.agents["Ben"], "conversation_id": conversation_id, "message_id": message_id,
           "name": "support"}
    return endpoint.openapi_path.format(**{name: ids[name] for name, _ in endpoint.path_params})


def test_every_api_route_is_declared_with_roles(desk):
    declared = {f"{e.method} {e.path}" for e in ENDPOINTS}
    assert _host_api_routes(desk) == declared
    assert all(e.roles and set(e.roles) <= {"admin", "agent"} for e in ENDPOINTS)


def test_without_a_valid_token_every_endpoint_is_401(desk, db):
    before = snapshot(db)
    for authorization in (None, "Bearer not-a-token", "Basic YWRtaW46YWRtaW4=", "Bearer", "bearer x y"):
        headers = {"authorization": authorization} if authorization else {}
        for endpoint in ENDPOINTS:
            response = httpx.request(endpoint.method, desk.server.url + _url(desk, endpoint), headers=headers,
                                     json={})
            where = f"{_label(endpoint)} with {authorization!r}"
            assert response.status_code == 401, where
            assert response.json() == {"error": "unauthenticated", "detail": response.json()["detail"]}, where
    assert snapshot(db) == before


def test_a_token_without_the_right_is_403(desk, db):
    before = snapshot(db)
    refused = set()
    for endpoint in ENDPOINTS:
        if "admin" not in endpoint.roles:
            token = ADMIN_TOKEN  # agent-only: an administrator is not an agent
        elif "agent" not in endpoint.roles or {"agent_id", "conversation_id"} & {n for n, _ in endpoint.path_params}:
            token = desk.tokens["Ana"]  # admin-only, or someone else's agent or conversation
        else:
            continue
        response = httpx.request(endpoint.method, desk.server.url + _url(desk, endpoint), headers=bearer(token),
                                 json={})
        assert (response.status_code, response.json().get("error")) == (403, "forbidden"), _label(endpoint)
        refused.add(_label(endpoint))
    others = desk.as_agent("Ana", "GET", "/api/conversations", params={"agent_id": desk.agents["Ben"]})
    assert others.status_code == 403
    refused.add("GET /api/conversations")
    assert {_label(e) for e in ENDPOINTS} - refused == OPEN_TO_EVERY_TOKEN
    assert snapshot(db) == before


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_tokens_looked_up_together_each_name_their_agent_and_a_retired_one_stops_at_once(make_app, live_server,
                                                                                          database_url):
    replicas = [live_server(api_app(make_app)) for _ in range(2 if database_url.startswith("postgresql") else 1)]
    desk = Desk(replicas[0])
    for name in ("Ana", "Ben", "Cy"):
        desk.agent(name)
    callers = [*desk.tokens.items(), ("nobody", "not-a-token")] * 8

    def me(n: int, token: str) -> httpx.Response:
        return httpx.get(f"{replicas[n % len(replicas)].url}/api/me", headers=bearer(token))

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda nc: me(nc[0], nc[1][1]), enumerate(callers)))
        for (name, _), response in zip(callers, answers, strict=True):
            if name == "nobody":
                assert response.status_code == 401
            else:
                assert (response.status_code, response.json()["agent"]["id"]) == (200, desk.agents[name])
        old = desk.tokens["Ana"]
        assert desk.admin("POST", f"/api/agents/{desk.agents['Ana']}/token").status_code == 200
        # Retired on every replica as soon as the rotation was answered, whoever shares the lookup.
        after = list(pool.map(lambda n: me(n, old if n % 2 else desk.tokens["Ben"]).status_code, range(32)))
    assert after == [200, 401] * 16
    desk.close()
