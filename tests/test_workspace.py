"""The pages' sessions and what the pages are served with, over real HTTP (the browser tests drive the pages).

A page signs in by exchanging an agent's token or a one-time code for a session token; the code is good once
and for minutes; signing out ends the session everywhere; a session sees what its agent's token sees.
"""

from __future__ import annotations

import re

import httpx
import pytest

from smsconnector import sessions
from smsconnector.auth import Principal
from smsconnector.segments import segment

from .api_support import ADMIN_TOKEN, Desk, api_app, bearer, snapshot


@pytest.fixture
def desk(make_app, live_server):
    server = live_server(api_app(make_app))
    desk = Desk(server)
    desk.agent("Ana")
    desk.agent("Ben")
    desk.text("c1")  # assigned to Ana
    desk.text("c2")  # assigned to Ben
    assert (desk.where("c1"), desk.where("c2")) == ("Ana", "Ben")
    yield desk
    desk.close()


def _sign_in(desk: Desk, credential: str) -> httpx.Response:
    return desk.http.post("/api/sessions", headers=bearer(credential))


def _code(desk: Desk, name: str) -> str:
    app = desk.server.app
    return desk.server.call(lambda: sessions.new_code(app.store, Principal("agent", desk.agents[name])))


def test_an_agent_token_opens_a_session_that_acts_as_the_agent_until_signed_out(desk):
    response = _sign_in(desk, desk.tokens["Ana"])
    assert response.status_code == 201
    body = response.json()
    assert (body["role"], body["agent_id"]) == ("agent", desk.agents["Ana"])
    assert body["token"] != desk.tokens["Ana"]
    me = desk.http.get("/api/me", headers=bearer(body["token"]))
    assert me.json()["agent"]["name"] == "Ana"

    assert desk.http.delete("/api/sessions/current", headers=bearer(body["token"])).status_code == 204
    assert desk.http.get("/api/me", headers=bearer(body["token"])).status_code == 401
    assert desk.as_agent("Ana", "GET", "/api/me").status_code == 200  # the agent's own token is not touched


def test_the_admin_token_opens_an_admin_session(desk):
    session = _sign_in(desk, ADMIN_TOKEN).json()
    assert (session["role"], session["agent_id"]) == ("admin", None)
    assert desk.http.get("/api/overview", headers=bearer(session["token"])).status_code == 200


def test_a_one_time_code_opens_one_session_and_nothing_else(desk, db):
    code = _code(desk, "Ana")
    assert desk.http.get("/api/me", headers=bearer(code)).status_code == 401  # not a token for the API
    first = _sign_in(desk, code)
    assert (first.status_code, first.json()["agent_id"]) == (201, desk.agents["Ana"])
    assert _sign_in(desk, code).status_code == 401  # used up
    assert db.count("agent_sessions", "kind = 'code'") == 0


def test_an_expired_code_opens_nothing(desk, db):
    code = _code(desk, "Ana")
    db.execute("UPDATE agent_sessions SET expires_at = '2000-01-01 00:00:00+00:00' WHERE kind = 'code'")
    assert _sign_in(desk, code).status_code == 401


def test_an_expired_session_and_a_removed_agents_session_stop_working(desk, db):
    ana = _sign_in(desk, desk.tokens["Ana"]).json()["token"]
    ben = _sign_in(desk, desk.tokens["Ben"]).json()["token"]
    db.execute(
        "UPDATE agent_sessions SET expires_at = '2000-01-01 00:00:00+00:00' WHERE agent_id = :id", id=desk.agents["Ana"]
    )
    assert desk.http.get("/api/me", headers=bearer(ana)).status_code == 401
    assert desk.admin("DELETE", f"/api/agents/{desk.agents['Ben']}").status_code == 204
    assert desk.http.get("/api/me", headers=bearer(ben)).status_code == 401


def test_a_bad_credential_is_401_and_stores_nothing(desk, db):
    before = snapshot(db)
    for credential in ("not-a-token", "s.forged", "c.forged", "s."):
        response = desk.http.post("/api/sessions", headers={"authorization": f"Bearer {credential}"})
        assert response.status_code == 401, credential
    assert desk.http.post("/api/sessions").status_code == 401
    assert snapshot(db) == before


def test_a_session_sees_only_what_its_agent_may(desk):
    ben = _sign_in(desk, desk.tokens["Ben"]).json()["token"]
    anas = desk.current("c1")["id"]
    assert desk.http.get(f"/api/conversations/{anas}", headers=bearer(ben)).status_code == 403
    listed = desk.http.get("/api/conversations", headers=bearer(ben)).json()["items"]
    assert [c["agent_id"] for c in listed] == [desk.agents["Ben"]]
    reply = desk.http.post(f"/api/conversations/{anas}/messages", headers=bearer(ben), json={"text": "hi"})
    assert reply.status_code == 403


@pytest.mark.parametrize("path", ["/workspace", "/admin"])
def test_pages_forbid_inline_script_framing_and_other_origins_and_carry_no_credential(desk, path):
    response = desk.http.get(path)
    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["referrer-policy"] == "no-referrer"
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", response.text, flags=re.S)
    assert scripts and all("src=" in attributes and not body.strip() for attributes, body in scripts)
    assert not re.search(r"<[^>]*\son[a-z]+=", response.text)  # no inline event handlers either
    assert "set-cookie" not in response.headers


def test_the_segment_counter_is_the_hosts_own_analysis(desk):
    text = "Thanks 🙂 " * 20
    analysis = desk.as_agent("Ana", "POST", "/api/segments", json={"text": text}).json()
    expected = segment(text)
    assert analysis == {
        "characters": len(text),
        "limit": 1600,
        "encoding": "UCS-2",
        "segments": expected.count,
        "units": expected.units,
        "non_gsm_characters": ["🙂"],
        "refusal": None,
    }
    long = desk.as_agent("Ana", "POST", "/api/segments", json={"text": "a" * 1601}).json()
    assert long["refusal"] == "message is 1601 characters; the limit is 1600 characters"


def test_the_overview_counts_queues_and_the_outbox(desk):
    desk.admin("PUT", f"/api/agents/{desk.agents['Ana']}/status", json={"status": "away"})
    desk.admin("PUT", f"/api/agents/{desk.agents['Ben']}/status", json={"status": "away"})
    desk.text("c3")
    overview = desk.admin("GET", "/api/overview").json()
    assert overview["queues"] == {"support": 1}
    assert {n["number"]: n["provider"] for n in overview["numbers"]} == {
        "+15555550100": "simulator",
        "+15555550199": "simulator",
    }
    assert {"simulator", "router"} <= {p["name"] for p in overview["plugins"] if p["enabled"]}


def test_the_phone_page_is_served_only_where_the_simulator_is_enabled(make_app, live_server):
    with_simulator = live_server(make_app())
    phone = httpx.get(f"{with_simulator.url}/simulator/phone")
    assert phone.status_code == 200
    assert 'value="+15555550100"' in phone.text  # the simulator's brand number, to text
    assert "script-src 'self'" in phone.headers["content-security-policy"]
    without = live_server(make_app(plugins={"enabled": []}, numbers=[]))
    assert httpx.get(f"{without.url}/simulator/phone").status_code == 404
    assert httpx.get(f"{without.url}/workspace").status_code == 200


def test_expired_sessions_and_codes_are_forgotten(desk, db):
    live = _sign_in(desk, desk.tokens["Ana"]).json()["token"]
    _sign_in(desk, desk.tokens["Ben"])
    _code(desk, "Ana")
    db.execute(
        "UPDATE agent_sessions SET expires_at = '2000-01-01 00:00:00+00:00' WHERE agent_id = :id OR kind = 'code'",
        id=desk.agents["Ben"],
    )
    desk.server.call(lambda: sessions.prune(desk.server.app.store))
    assert db.count("agent_sessions") == 1
    assert desk.http.get("/api/me", headers=bearer(live)).status_code == 200


def test_an_admin_session_ends_when_its_admin_token_leaves_the_configuration(desk, make_app, live_server):
    admin = _sign_in(desk, ADMIN_TOKEN).json()["token"]
    assert desk.http.get("/api/overview", headers=bearer(admin)).status_code == 200
    # The same database served with the old admin token replaced, as a redeploy that rotates it would.
    rotated = live_server(make_app(api={"admin_tokens": ["a-new-admin-token"]}))
    assert httpx.get(f"{rotated.url}/api/overview", headers=bearer(admin)).status_code == 401
    assert httpx.get(f"{rotated.url}/api/overview", headers=bearer("a-new-admin-token")).status_code == 200


def test_a_session_cannot_open_another(desk, db):
    session = _sign_in(desk, desk.tokens["Ana"]).json()["token"]
    before = snapshot(db)
    assert _sign_in(desk, session).status_code == 403
    assert snapshot(db) == before


def test_rotating_an_agents_token_ends_the_sessions_and_codes_opened_with_it(desk):
    session = _sign_in(desk, desk.tokens["Ana"]).json()["token"]
    code = _code(desk, "Ana")
    bens = _sign_in(desk, desk.tokens["Ben"]).json()["token"]
    assert desk.admin("POST", f"/api/agents/{desk.agents['Ana']}/token").status_code == 200
    assert desk.http.get("/api/me", headers=bearer(session)).status_code == 401
    assert _sign_in(desk, code).status_code == 401
    assert desk.http.get("/api/me", headers=bearer(bens)).status_code == 200
