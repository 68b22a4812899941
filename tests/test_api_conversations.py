"""Conversations through the API: reading, replying, transferring, closing, and agent-started follow-ups."""

from __future__ import annotations

import httpx
import pytest

from smsconnector import Verdict, hookimpl
from smsconnector.messages import AGENT_TEXT_LIMIT, CONSUMER_PIECE_LIMIT
from smsconnector.testing import BRAND_NUMBER, eventually

from .api_support import BILLING_NUMBER, CONSUMERS, Desk, api_app, snapshot

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


class RefuseC9:
    """A send check standing in for compliance: consumer c9 has opted out."""

    @hookimpl
    def smsconnector_check_outbound(self, message):
        """Refuse messages to c9."""
        if message.to_number == CONSUMERS["c9"]:
            return Verdict.refuse("opted_out", "the consumer replied STOP")
        return None


@pytest.fixture
def desk(make_app, live_server):
    app = api_app(make_app, plugins={"simulator": {"auto_deliver": False}}, register=[("refuse-c9", RefuseC9())])
    desk = Desk(live_server(app))
    desk.agent("Ana")
    desk.agent("Ben")
    yield desk
    desk.close()


def _reply(desk: Desk, agent: str, conversation_id: int, text: str) -> httpx.Response:
    return desk.as_agent(agent, "POST", f"/api/conversations/{conversation_id}/messages", json={"text": text})


@both_databases
def test_a_long_consumer_message_is_shown_as_consecutive_pieces(desk):
    texts = {"c1": ("word " * 2500).strip(), "c2": "x" * 12001, "c3": "é" * CONSUMER_PIECE_LIMIT}
    for consumer, text in texts.items():
        desk.text(consumer, text=text)
    for consumer, text in texts.items():
        conversation = desk.current(consumer)
        messages = desk.admin("GET", f"/api/conversations/{conversation['id']}").json()["messages"]
        assert len({m["id"] for m in messages}) == 1
        assert [(m["piece"], m["pieces"]) for m in messages] == [(n, len(messages))
                                                                 for n in range(1, len(messages) + 1)]
        assert all(len(m["text"]) <= CONSUMER_PIECE_LIMIT for m in messages)
        assert "".join(m["text"] for m in messages) == text
        assert len(messages) == -(-len(text) // CONSUMER_PIECE_LIMIT), consumer


@both_databases
def test_a_reply_over_the_limit_is_refused_with_422_naming_it(desk, db):
    desk.text("c1")
    conversation_id = desk.current("c1")["id"]
    before = snapshot(db)
    too_long = _reply(desk, "Ana", conversation_id, "x" * (AGENT_TEXT_LIMIT + 1))
    assert (too_long.status_code, too_long.json()["error"]) == (422, "too_long")
    assert f"the limit is {AGENT_TEXT_LIMIT} characters" in too_long.json()["detail"]
    empty = _reply(desk, "Ana", conversation_id, "   ")
    assert (empty.status_code, empty.json()["error"]) == (422, "empty")
    assert snapshot(db) == before
    at_limit = _reply(desk, "Ana", conversation_id, "x" * AGENT_TEXT_LIMIT)
    assert at_limit.status_code == 201
    assert (at_limit.json()["agent_id"], at_limit.json()["status"]) == (desk.agents["Ana"], "queued")


def test_closed_conversations_take_no_reply_and_cannot_be_closed_twice(desk, db):
    desk.text("c1")
    conversation_id = desk.current("c1")["id"]
    closed = desk.as_agent("Ana", "POST", f"/api/conversations/{conversation_id}/close")
    assert (closed.status_code, closed.json()["status"]) == (200, "closed")
    before = snapshot(db)
    again = desk.as_agent("Ana", "POST", f"/api/conversations/{conversation_id}/close")
    reply = _reply(desk, "Ana", conversation_id, "Hello?")
    assert [(r.status_code, r.json()["error"]) for r in (again, reply)] == [(409, "conflict")] * 2
    assert snapshot(db) == before
    assert desk.as_agent("Ana", "GET", f"/api/conversations/{conversation_id}").status_code == 200  # still hers


def test_bad_transfers_change_nothing(desk, db):
    desk.text("c1")
    conversation_id = desk.current("c1")["id"]
    before = snapshot(db)
    for label, body in [("no target", {}), ("two targets", {"skill": "billing", "agent_id": 2}),
                        ("unknown skill", {"skill": "plumbing"}), ("unknown agent", {"agent_id": 999}),
                        ("agent by name", {"agent_id": "Ben"})]:
        response = desk.as_agent("Ana", "POST", f"/api/conversations/{conversation_id}/transfer", json=body)
        assert (response.status_code, response.json()["error"]) == (422, "invalid_request"), label
    assert snapshot(db) == before
    assert desk.where("c1") == "Ana"


def test_transfers_to_an_offline_agent_or_to_the_same_agent_are_conflicts(desk, db):
    desk.agent("Cy", status="offline")
    desk.text("c1")
    conversation_id = desk.current("c1")["id"]
    before = snapshot(db)
    offline = desk.as_agent("Ana", "POST", f"/api/conversations/{conversation_id}/transfer",
                            json={"agent_id": desk.agents["Cy"]})
    same = desk.as_agent("Ana", "POST", f"/api/conversations/{conversation_id}/transfer",
                         json={"agent_id": desk.agents["Ana"]})
    assert [(r.status_code, r.json()["error"]) for r in (offline, same)] == [(409, "conflict")] * 2
    assert snapshot(db) == before


def test_an_agent_transferring_away_loses_sight_of_the_conversation(desk):
    desk.text("c1")
    conversation_id = desk.current("c1")["id"]
    moved = desk.as_agent("Ana", "POST", f"/api/conversations/{conversation_id}/transfer",
                          json={"agent_id": desk.agents["Ben"]})
    assert (moved.status_code, moved.json()["agent_id"]) == (200, desk.agents["Ben"])
    assert desk.as_agent("Ana", "GET", f"/api/conversations/{conversation_id}").status_code == 403
    assert desk.as_agent("Ben", "GET", f"/api/conversations/{conversation_id}").status_code == 200


def test_listing_filters_and_scopes_to_the_agent(desk):
    for consumer in ("c1", "c2", "c3"):
        desk.text(consumer)
    desk.text("c4", to=BILLING_NUMBER)  # nobody has billing: queued
    ana = desk.as_agent("Ana", "GET", "/api/conversations").json()["items"]
    assert {c["agent_id"] for c in ana} == {desk.agents["Ana"]}
    assert sorted(c["consumer_number"] for c in ana) == [CONSUMERS["c1"], CONSUMERS["c3"]]
    queued = desk.admin("GET", "/api/conversations", params={"status": "queued"}).json()["items"]
    assert [(c["consumer_number"], c["skill"]) for c in queued] == [(CONSUMERS["c4"], "billing")]
    by_skill = desk.admin("GET", "/api/conversations", params={"skill": "support"}).json()["items"]
    assert len(by_skill) == 3
    first_page = desk.admin("GET", "/api/conversations", params={"limit": 2}).json()["items"]
    next_page = desk.admin("GET", "/api/conversations", params={"limit": 2, "before": first_page[-1]["id"]}).json()
    assert [c["id"] for c in first_page + next_page["items"]] == sorted((c["id"] for c in by_skill + queued),
                                                                         reverse=True)
    bad = desk.admin("GET", "/api/conversations", params={"status": "lost"})
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid_request")


@both_databases
def test_a_follow_up_reaches_the_consumer_and_their_reply_reaches_the_same_agent(desk):
    if desk.server.app.plugin("compliance") is not None:
        # A follow-up is informational: with the compliance plugin installed it needs the consumer's consent,
        # given here as the agent would record it during the call.
        consent = desk.admin("POST", "/api/compliance/consent", json={
            "consumer": CONSUMERS["c1"], "brand_number": BRAND_NUMBER, "consent_class": "informational",
            "method": "voice", "source": "call CALL-42"})
        assert consent.status_code in (200, 201), consent.text
    started = desk.as_agent("Ana", "POST", "/api/conversations", json={
        "to": CONSUMERS["c1"], "from": BRAND_NUMBER, "text": "Following up on your call: your refund is on its way.",
        "entry_point": "follow_up", "context": {"call_reference": "CALL-42"}})
    assert started.status_code == 201, started.text
    conversation = started.json()
    assert (conversation["agent_id"], conversation["status"], conversation["entry_point"], conversation["context"],
            conversation["skill"]) == (desk.agents["Ana"], "assigned", "follow_up", {"call_reference": "CALL-42"},
                                       "support")
    simulator = desk.server.app.plugin("simulator")
    sent = eventually(lambda: simulator.sent)
    assert [(s["to"], s["from"], s["message_class"]) for s in sent] == [(CONSUMERS["c1"], BRAND_NUMBER,
                                                                         "informational")]

    desk.text("c1", text="Thanks! When will it arrive?")  # Ana is online: the reply is hers
    assert (desk.current("c1")["id"], desk.where("c1")) == (conversation["id"], "Ana")

    desk.as_agent("Ana", "PUT", f"/api/agents/{desk.agents['Ana']}/status", json={"status": "away"})
    desk.text("c1", text="Hello?")  # Ana is away: the conversation goes to the skill, where Ben is free
    assert (desk.current("c1")["id"], desk.where("c1")) == (conversation["id"], "Ben")
    texts = [m["text"] for m in desk.as_agent("Ben", "GET", f"/api/conversations/{conversation['id']}")
             .json()["messages"]]
    assert texts == ["Following up on your call: your refund is on its way.", "Thanks! When will it arrive?",
                     "Hello?"]


BAD_FOLLOW_UPS = [  # label, body, error, part of the detail
    ("not our number", {"to": CONSUMERS["c1"], "from": "+15555550111", "text": "Hi"}, "invalid_request",
     "not one of the configured"),
    ("bad consumer number", {"to": "not a number", "from": BRAND_NUMBER, "text": "Hi"}, "invalid_number",
     "not a phone number"),
    ("too long", {"to": CONSUMERS["c1"], "from": BRAND_NUMBER, "text": "x" * 1601}, "too_long", "the limit is 1600"),
    ("unknown skill", {"to": CONSUMERS["c1"], "from": BRAND_NUMBER, "text": "Hi", "skill": "plumbing"},
     "invalid_request", "unknown skill"),
    ("no from", {"to": CONSUMERS["c1"], "text": "Hi"}, "invalid_request", "from: Field required"),
]


def test_bad_follow_ups_are_refused_and_store_nothing(desk, db):
    before = snapshot(db)
    for label, body, error, detail in BAD_FOLLOW_UPS:
        response = desk.as_agent("Ana", "POST", "/api/conversations", json=body)
        assert (response.status_code, response.json()["error"]) == (422, error), label
        assert detail in response.json()["detail"], label
    assert snapshot(db) == before


def test_a_follow_up_to_a_consumer_talking_with_another_agent_is_a_conflict(desk, db):
    desk.text("c1")
    assert desk.where("c1") == "Ana"
    before = snapshot(db)
    response = desk.as_agent("Ben", "POST", "/api/conversations",
                             json={"to": CONSUMERS["c1"], "from": BRAND_NUMBER, "text": "Hi"})
    assert (response.status_code, response.json()["error"]) == (409, "conflict")
    assert snapshot(db) == before


@both_databases
def test_delivery_status_and_errors_are_shown_in_the_conversation(desk):
    desk.text("c9")
    desk.text("c1")
    refused_id = desk.current("c9")["id"]
    failed_id = desk.current("c1")["id"]
    agent_of = {refused_id: desk.names[desk.current("c9")["agent_id"]], failed_id: desk.names[desk.current("c1")
                                                                                              ["agent_id"]]}
    assert _reply(desk, agent_of[refused_id], refused_id, "Your order shipped.").status_code == 201
    assert _reply(desk, agent_of[failed_id], failed_id, "Your order shipped.").status_code == 201
    sent = eventually(lambda: desk.server.app.plugin("simulator").sent)
    report = httpx.post(f"{desk.server.url}/webhooks/simulator/status", json={
        "id": sent[0]["id"], "status": "failed", "error_code": "30007", "error_message": "Carrier violation"})
    assert report.status_code == 200

    def outbound(conversation_id: int) -> dict:
        messages = desk.as_agent(agent_of[conversation_id], "GET", f"/api/conversations/{conversation_id}").json()
        return next(m for m in messages["messages"] if m["direction"] == "outbound")

    refused = eventually(lambda: (m := outbound(refused_id))["status"] == "refused" and m)
    assert (refused["error_code"], refused["error_message"]) == ("opted_out", "the consumer replied STOP")
    failed = eventually(lambda: (m := outbound(failed_id))["status"] == "failed" and m)
    assert (failed["error_code"], failed["error_message"]) == ("30007", "Carrier violation")
