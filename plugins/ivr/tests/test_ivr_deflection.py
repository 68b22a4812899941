"""A caller on hold is texted, replies, and reaches an agent of the chosen skill with the call's context; over HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from smsconnector.messages import utcnow
from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.entrypoints import (
    alone,
    as_json,
    at_work,
    beside_siblings,
    both_databases,
    delivered,
    text_brand,
)
from smsconnector_ivr.models import Deflection
from smsconnector_ivr.settings import DEFAULT_TEMPLATE

from .ivr_support import AUTH, CALLER, TOKEN

BILLING_TEXT = "Thanks for calling Acme billing. Reply here and a billing agent will take it from there."
SETTINGS = {"token": TOKEN, "templates": {"billing": BILLING_TEXT}}
CALL = {"call_id": "CA-7731", "menu_path": ["billing", "card declined"],
        "answers": {"account": "88-1234", "urgent": True}}


def deflect(url: str, **fields: object) -> httpx.Response:
    body = {"caller": CALLER, "brand_number": BRAND_NUMBER, "skill": "billing", **CALL, **fields}
    return httpx.post(f"{url}/api/ivr/deflections", json=body, headers=AUTH)


@beside_siblings("ivr")
def test_caller_is_texted_and_the_reply_reaches_the_skill_with_the_call_context(make_app, live_server, db, siblings):
    app = make_app(plugins={"disabled": alone("ivr", keep=siblings), **at_work(siblings), "ivr": SETTINGS})
    server = live_server(app)

    offered = deflect(server.url)

    assert offered.status_code == 202
    body = offered.json()
    sent = delivered(app)
    assert [(s["from"], s["to"], s["text"], s["message_class"], s["message_id"]) for s in sent] == [
        (BRAND_NUMBER, CALLER, BILLING_TEXT, "conversational", body["message_id"])]
    [waiting] = db.rows("SELECT id, status, skill, entry_point, context FROM conversations")
    assert (waiting["id"], waiting["status"], waiting["skill"], waiting["entry_point"]) == (
        body["conversation_id"], "automated", "billing", "ivr")
    assert as_json(waiting["context"]) == CALL
    assert db.scalar("SELECT conversation_id FROM messages WHERE id = :id", id=body["message_id"]) == waiting["id"]

    assert text_brand(server.url, "sim-r1", "Yes please, my card keeps getting declined").status_code == 200

    [conversation] = db.rows("SELECT id, status, skill, entry_point, context FROM conversations")
    assert (conversation["id"], conversation["status"], conversation["skill"], conversation["entry_point"]) == (
        waiting["id"], "queued", "billing", "ivr")
    assert as_json(conversation["context"]) == CALL
    assert db.rows("SELECT conversation_id, handled_by FROM messages WHERE direction = 'inbound'") == [
        {"conversation_id": waiting["id"], "handled_by": "ivr"}]
    assert db.rows("SELECT id, status, answered_at IS NOT NULL AS answered FROM ivr_deflections") == [
        {"id": body["deflection_id"], "status": "answered", "answered": True}]


def test_the_next_reply_continues_with_the_agent_queue_not_a_new_offer(make_app, live_server, db):
    server = live_server(make_app(plugins={"disabled": alone("ivr"), "ivr": SETTINGS}))
    deflect(server.url)

    text_brand(server.url, "sim-r1", "Hi")
    text_brand(server.url, "sim-r2", "It is the card ending 4242")

    [conversation] = db.rows("SELECT status, skill, entry_point FROM conversations")
    assert conversation == {"status": "queued", "skill": "billing", "entry_point": "ivr"}
    assert db.rows("SELECT handled_by FROM messages WHERE direction = 'inbound' ORDER BY id") == [
        {"handled_by": "ivr"}, {"handled_by": "router"}]


def test_a_skill_without_a_template_gets_the_default_opening_text(make_app, live_server):
    app = make_app(plugins={"disabled": alone("ivr"), "ivr": {"token": TOKEN}})
    server = live_server(app)

    assert deflect(server.url, skill="support").status_code == 202

    assert [s["text"] for s in delivered(app)] == [DEFAULT_TEMPLATE]


@both_databases
def test_a_reply_after_the_offer_lapsed_is_routed_as_any_other_text(make_app, live_server, db):
    app = make_app(plugins={"disabled": alone("ivr"), "ivr": SETTINGS})
    server = live_server(app)
    offered = deflect(server.url).json()

    async def lapse() -> None:
        async with app.store.transaction() as session:
            await session.exec(update(Deflection).values(expires_at=utcnow() - timedelta(seconds=1)))

    server.call(lapse)
    assert text_brand(server.url, "sim-late", "Sorry, only saw this now").status_code == 200

    conversations = db.rows("SELECT id, status, skill, entry_point, context FROM conversations ORDER BY id")
    assert [(c["id"], c["status"], c["skill"], c["entry_point"]) for c in conversations] == [
        (offered["conversation_id"], "closed", "billing", "ivr"),
        (offered["conversation_id"] + 1, "queued", "support", None)]  # the brand number's own skill
    assert as_json(conversations[1]["context"]) == {}
    [late] = db.rows("SELECT conversation_id, handled_by, notes FROM messages WHERE direction = 'inbound'")
    assert (late["conversation_id"], late["handled_by"]) == (conversations[1]["id"], "ivr")
    assert "replied after the offer lapsed" in as_json(late["notes"])[0]
    assert db.scalar("SELECT status FROM ivr_deflections") == "expired"


def test_a_new_offer_replaces_one_the_caller_never_answered(make_app, live_server, db):
    server = live_server(make_app(plugins={"disabled": alone("ivr"), "ivr": SETTINGS}))
    first = deflect(server.url).json()

    second = deflect(server.url, call_id="CA-7790", skill="support")

    assert second.status_code == 202
    assert db.rows("SELECT id, status, skill FROM conversations ORDER BY id") == [
        {"id": first["conversation_id"], "status": "closed", "skill": "billing"},
        {"id": second.json()["conversation_id"], "status": "automated", "skill": "support"}]
    assert db.rows("SELECT call_id, status FROM ivr_deflections ORDER BY id") == [
        {"call_id": "CA-7731", "status": "superseded"}, {"call_id": "CA-7790", "status": "pending"}]
    text_brand(server.url, "sim-r1", "ok")
    assert db.scalar("SELECT skill FROM conversations WHERE status = 'queued'") == "support"


def test_messages_unrelated_to_an_offer_are_left_to_the_router(make_app, live_server, db):
    server = live_server(make_app(plugins={"disabled": alone("ivr"), "ivr": SETTINGS}))

    text_brand(server.url, "sim-1", "Hello, is the store open today?")

    assert db.rows("SELECT skill, entry_point, status FROM conversations") == [
        {"skill": "support", "entry_point": None, "status": "queued"}]
    assert db.scalar("SELECT handled_by FROM messages") == "router"
