"""Agents and skills through the API: what administrators manage and what agents may do to themselves."""

from __future__ import annotations

import httpx
import pytest

from .api_support import Desk, api_app, bearer, snapshot


@pytest.fixture
def desk(make_app, live_server):
    desk = Desk(live_server(api_app(make_app)))
    yield desk
    desk.close()


def test_a_new_agent_gets_a_token_once_and_it_authenticates(desk):
    created = desk.admin("POST", "/api/agents", json={"name": "Ana", "skills": ["support", "billing"],
                                                      "max_concurrent": 2})
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["skills"], body["max_concurrent"], body["status"]) == ("Ana", ["billing", "support"],
                                                                                      2, "offline")
    me = desk.http.get("/api/me", headers=bearer(body["token"])).json()
    assert (me["role"], me["agent"]["id"]) == ("agent", body["id"])
    read = desk.admin("GET", f"/api/agents/{body['id']}").json()
    listed = desk.admin("GET", "/api/agents").json()["items"]
    assert "token" not in read and all("token" not in a for a in listed)
    assert [a["id"] for a in listed] == [body["id"]]


BAD_AGENT_BODIES = [  # label, body, status, error, part of the detail
    ("unknown skill", {"name": "Ana", "skills": ["plumbing"]}, 422, "invalid_request", "unknown skill(s): plumbing"),
    ("no name", {"skills": ["support"]}, 422, "invalid_request", "name: Field required"),
    ("negative capacity", {"name": "Ana", "max_concurrent": -1}, 422, "invalid_request", "max_concurrent"),
    ("unknown status", {"name": "Ana", "status": "busy"}, 422, "invalid_request", "status"),
    ("unknown field", {"name": "Ana", "colour": "red"}, 422, "invalid_request", "colour: Extra inputs are not"),
    ("not JSON", "not json", 400, "malformed", "body is not JSON"),
    ("a list", ["Ana"], 422, "invalid_request", "body: Input should be a valid dictionary"),
]


def test_bad_agent_bodies_are_refused_and_store_nothing(desk, db):
    before = snapshot(db)
    for label, body, status, error, detail in BAD_AGENT_BODIES:
        if isinstance(body, str):
            response = desk.admin("POST", "/api/agents", content=body, headers={"content-type": "application/json"})
        else:
            response = desk.admin("POST", "/api/agents", json=body)
        assert (response.status_code, response.json()["error"]) == (status, error), label
        assert detail in response.json()["detail"], label
    assert snapshot(db) == before


def test_token_rotation_retires_the_old_token(desk):
    desk.agent("Ana")
    old = desk.tokens["Ana"]
    rotated = desk.as_agent("Ana", "POST", f"/api/agents/{desk.agents['Ana']}/token")
    assert rotated.status_code == 200
    new = rotated.json()["token"]
    assert desk.http.get("/api/me", headers=bearer(old)).status_code == 401
    assert desk.http.get("/api/me", headers=bearer(new)).status_code == 200
    by_admin = desk.admin("POST", f"/api/agents/{desk.agents['Ana']}/token").json()["token"]
    assert desk.http.get("/api/me", headers=bearer(new)).status_code == 401
    assert desk.http.get("/api/me", headers=bearer(by_admin)).status_code == 200


def test_an_agent_sets_their_own_status(desk):
    desk.agent("Ana", status="offline")
    response = desk.as_agent("Ana", "PUT", f"/api/agents/{desk.agents['Ana']}/status", json={"status": "online"})
    assert (response.status_code, response.json()["status"]) == (200, "online")
    bad = desk.as_agent("Ana", "PUT", f"/api/agents/{desk.agents['Ana']}/status", json={"status": "asleep"})
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid_request")


def test_more_capacity_or_a_new_skill_takes_from_the_queue(desk):
    desk.agent("Ana", skills=["billing"], max_concurrent=1)
    desk.text("c1")
    desk.text("c2")
    assert desk.queue("support") == ["c1", "c2"]
    patched = desk.admin("PATCH", f"/api/agents/{desk.agents['Ana']}", json={"skills": ["support", "billing"]})
    assert (patched.status_code, patched.json()["skills"]) == (200, ["billing", "support"])
    assert (desk.where("c1"), desk.where("c2")) == ("Ana", "queued")
    desk.admin("PATCH", f"/api/agents/{desk.agents['Ana']}", json={"max_concurrent": 2})
    assert desk.where("c2") == "Ana"


def test_removing_an_agent_requeues_their_conversations_and_retires_the_token(desk):
    desk.agent("Ana", max_concurrent=1)
    desk.agent("Ben", max_concurrent=1, status="offline")
    desk.text("c1")
    assert desk.where("c1") == "Ana"
    assert desk.admin("DELETE", f"/api/agents/{desk.agents['Ana']}").status_code == 204
    assert desk.where("c1") == "queued"
    assert desk.http.get("/api/me", headers=bearer(desk.tokens["Ana"])).status_code == 401
    gone = desk.admin("GET", f"/api/agents/{desk.agents['Ana']}")
    assert (gone.status_code, gone.json()["error"]) == (404, "not_found")
    assert [a["name"] for a in desk.admin("GET", "/api/agents").json()["items"]] == ["Ben"]
    desk.admin("PUT", f"/api/agents/{desk.agents['Ben']}/status", json={"status": "online"})
    assert desk.where("c1") == "Ben"


def test_unknown_agents_and_paths_are_404_in_the_error_shape(desk):
    for path in ("/api/agents/999", "/api/agents/99999999999", "/api/agents/0", "/api/agents/abc",
                 "/api/nothing-here"):
        response = desk.admin("GET", path)
        assert response.status_code == 404, path
        assert set(response.json()) == {"error", "detail"}, path


def test_skills_crud(desk):
    created = desk.admin("POST", "/api/skills", json={"name": "returns", "description": "Returns and refunds"})
    assert created.status_code == 201
    assert created.json() | {"created_at": None} == {"name": "returns", "description": "Returns and refunds",
                                                     "agents": 0, "online_agents": 0, "queued": 0, "created_at": None}
    desk.agent("Ana", skills=["returns"])
    desk.agent("Ben", skills=["returns"], status="offline")
    read = desk.as_agent("Ana", "GET", "/api/skills/returns").json()
    assert (read["agents"], read["online_agents"]) == (2, 1)
    names = [s["name"] for s in desk.as_agent("Ana", "GET", "/api/skills").json()["items"]]
    assert names == ["billing", "returns", "support"]  # the configured numbers' skills exist from start-up
    patched = desk.admin("PATCH", "/api/skills/returns", json={"description": "Returns"})
    assert patched.json()["description"] == "Returns"
    duplicate = desk.admin("POST", "/api/skills", json={"name": "returns"})
    assert (duplicate.status_code, duplicate.json()["error"]) == (409, "conflict")
    assert desk.admin("DELETE", "/api/skills/returns").status_code == 204
    assert desk.admin("GET", f"/api/agents/{desk.agents['Ana']}").json()["skills"] == []
    assert desk.admin("GET", "/api/skills/returns").status_code == 404


def test_a_skill_in_use_cannot_be_deleted(desk, db):
    desk.text("c1")  # queued for support
    before = snapshot(db)
    response = desk.admin("DELETE", "/api/skills/support")
    assert (response.status_code, response.json()["error"]) == (409, "conflict")
    assert "1 open conversation(s)" in response.json()["detail"]
    assert snapshot(db) == before


def test_bad_skill_names_are_refused(desk, db):
    before = snapshot(db)
    for name in ("", "has space", "-leading-dash", "x" * 101, "slash/inside", "ünïcode"):
        response = desk.admin("POST", "/api/skills", json={"name": name})
        assert (response.status_code, response.json()["error"]) == (422, "invalid_request"), name
    assert snapshot(db) == before


def test_openapi_document_is_public_and_describes_every_api_route(desk):
    document = httpx.get(f"{desk.server.url}/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    from smsconnector.api import ENDPOINTS

    assert {(e.method, e.openapi_path) for e in ENDPOINTS} <= operations
    reply = document["paths"]["/api/conversations/{conversation_id}/messages"]["post"]
    assert set(reply["responses"]) == {"201", "400", "401", "403", "404", "409", "413", "422"}
    assert reply["responses"]["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "detail"]
