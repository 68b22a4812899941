"""Automated texts go out through the outbox; a reply goes where the send said: an agent, an auto-reply, or nowhere."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from smsconnector import outbound
from smsconnector.messages import utcnow
from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.entrypoints import (
    CONSUMER,
    alone,
    as_json,
    at_work,
    beside_siblings,
    both_databases,
    delivered,
    record_consent,
    text_brand,
)
from smsconnector_automation.models import AutomationSend
from smsconnector_automation.settings import DEFAULT_AUTO_REPLY

from .automation_support import AUTH, TOKEN

REMINDER = "Reminder: your appointment is tomorrow at 10:00. Reply to reschedule."
SETTINGS = {"token": TOKEN, "skills": ["scheduling"],
            "auto_replies": {"order-updates": "Thanks! Track your order at example.com/track."}}


def send(url: str, **fields: object) -> httpx.Response:
    body = {"from": BRAND_NUMBER, "campaign": "appointment-reminders", "message_class": "informational",
            "reply_policy": "agent", "skill": "scheduling", "text": REMINDER,
            "recipients": [{"to": CONSUMER, "context": {"appointment": "A-4411"}}], **fields}
    return httpx.post(f"{url}/api/automation/messages", json=body, headers=AUTH)


@pytest.fixture
def app(make_app):
    return make_app(plugins={"disabled": alone("automation"), "automation": SETTINGS})


@beside_siblings("automation")
def test_a_reply_within_the_window_reaches_the_skill_with_the_automated_message(make_app, live_server, db, siblings):
    app = make_app(plugins={"disabled": alone("automation", keep=siblings), **at_work(siblings),
                            "automation": SETTINGS})
    server = live_server(app)
    server.call(lambda: record_consent(app, CONSUMER, BRAND_NUMBER, "informational"))

    sent = send(server.url)

    assert sent.status_code == 202
    [queued] = sent.json()["messages"]
    assert queued["to"] == CONSUMER
    sent_out = delivered(app)
    assert [(s["from"], s["to"], s["text"], s["message_class"], s["message_id"]) for s in sent_out] == [
        (BRAND_NUMBER, CONSUMER, REMINDER, "informational", queued["message_id"])]
    assert db.count("conversations") == 0  # nobody needs to see it until the consumer answers

    assert text_brand(server.url, "sim-r1", "Can we make it 11 instead?").status_code == 200

    [conversation] = db.rows("SELECT id, status, skill, entry_point, context FROM conversations")
    assert (conversation["status"], conversation["skill"], conversation["entry_point"]) == (
        "queued", "scheduling", "automation")
    context = as_json(conversation["context"])
    assert context["campaign"] == "appointment-reminders"
    assert context["details"] == {"appointment": "A-4411"}
    automated = context["automated_message"]
    assert (automated["id"], automated["text"], automated["message_class"]) == (
        queued["message_id"], REMINDER, "informational")
    assert db.rows("SELECT conversation_id, handled_by FROM messages WHERE direction = 'inbound'") == [
        {"conversation_id": conversation["id"], "handled_by": "automation"}]


def test_the_conversation_carries_on_with_the_router_after_the_first_reply(app, live_server, db):
    server = live_server(app)
    send(server.url)

    text_brand(server.url, "sim-r1", "Can we make it 11?")
    text_brand(server.url, "sim-r2", "Or 12, either works")

    assert db.rows("SELECT status, skill FROM conversations") == [{"status": "queued", "skill": "scheduling"}]
    assert [r["handled_by"] for r in db.rows("SELECT handled_by FROM messages WHERE direction = 'inbound' "
                                              "ORDER BY id")] == ["automation", "router"]


def test_a_conversation_already_waiting_for_an_agent_is_continued_with_the_context_added(app, live_server, db):
    server = live_server(app)
    text_brand(server.url, "sim-1", "Hello, I have a question about my bill")
    send(server.url)

    text_brand(server.url, "sim-2", "And can we move tomorrow's appointment?")

    [conversation] = db.rows("SELECT status, skill, entry_point, context FROM conversations")
    assert (conversation["status"], conversation["skill"], conversation["entry_point"]) == ("queued", "support",
                                                                                           "automation")
    assert as_json(conversation["context"])["campaign"] == "appointment-reminders"


@both_databases
def test_an_auto_reply_policy_answers_once_then_replies_reach_agents(app, live_server, db):
    server = live_server(app)
    send(server.url, campaign="order-updates", reply_policy="auto_reply", skill=None, text="Your order shipped.")

    text_brand(server.url, "sim-r1", "Thanks!")

    [conversation] = db.rows("SELECT id, status, skill, entry_point FROM conversations")
    assert (conversation["status"], conversation["entry_point"]) == ("automated", "automation")
    assert db.rows("SELECT body, conversation_id FROM messages WHERE direction = 'outbound' ORDER BY id") == [
        {"body": "Your order shipped.", "conversation_id": None},
        {"body": "Thanks! Track your order at example.com/track.", "conversation_id": conversation["id"]}]

    text_brand(server.url, "sim-r2", "Actually, the box was damaged")

    assert db.scalar("SELECT status FROM conversations") == "queued"
    assert db.count("messages", "direction = 'outbound'") == 2  # no second auto-reply


def test_a_campaign_without_its_own_auto_reply_gets_the_default(app, live_server, db):
    server = live_server(app)
    send(server.url, reply_policy="auto_reply", skill=None)

    text_brand(server.url, "sim-r1", "ok")

    assert db.scalar("SELECT body FROM messages WHERE direction = 'outbound' ORDER BY id DESC LIMIT 1") == (
        DEFAULT_AUTO_REPLY)


def test_an_ignore_policy_stores_replies_but_queues_nothing_for_agents(app, live_server, db):
    server = live_server(app)
    send(server.url, reply_policy="ignore", skill=None)

    text_brand(server.url, "sim-r1", "ok")
    text_brand(server.url, "sim-r2", "thanks")

    assert db.rows("SELECT status, entry_point FROM conversations") == [
        {"status": "automated", "entry_point": "automation"}]
    assert [r["handled_by"] for r in db.rows("SELECT handled_by FROM messages WHERE direction = 'inbound'")] == [
        "automation", "automation"]
    assert db.count("messages", "direction = 'outbound'") == 1


@both_databases
def test_a_reply_after_the_window_is_routed_as_any_other_text(app, live_server, db):
    server = live_server(app)
    send(server.url)

    async def close_window() -> None:
        async with app.store.transaction() as session:
            await session.exec(update(AutomationSend).values(reply_until=utcnow() - timedelta(seconds=1)))

    server.call(close_window)
    text_brand(server.url, "sim-late", "Is it still on?")

    assert db.rows("SELECT status, skill, entry_point FROM conversations") == [
        {"status": "queued", "skill": "support", "entry_point": None}]
    assert db.scalar("SELECT handled_by FROM messages WHERE direction = 'inbound'") == "router"
    assert db.scalar("SELECT answered_at FROM automation_sends") is None


def test_once_someone_else_wrote_to_the_consumer_a_text_is_no_longer_a_reply_to_the_automated_one(app, live_server,
                                                                                                   db):
    server = live_server(app)
    send(server.url, reply_policy="auto_reply", skill=None)

    async def agent_writes() -> None:
        async with app.store.transaction() as session:
            await outbound.queue(session, provider="simulator", from_number=BRAND_NUMBER, to_number=CONSUMER,
                                 text="Hi, this is Sam from the clinic about your visit.")

    server.call(agent_writes)
    text_brand(server.url, "sim-r1", "Hi Sam")

    assert db.scalar("SELECT handled_by FROM messages WHERE direction = 'inbound'") == "router"
    assert db.count("messages", "direction = 'outbound'") == 2  # no auto-reply


def test_replies_to_another_brand_number_are_not_replies_to_the_automated_text(make_app, live_server, db):
    other = "+15555550111"
    app = make_app(numbers=[{"number": BRAND_NUMBER, "provider": "simulator", "skill": "support"},
                            {"number": other, "provider": "simulator", "skill": "sales"}],
                   plugins={"disabled": alone("automation"), "automation": SETTINGS})
    server = live_server(app)
    send(server.url)

    text_brand(server.url, "s1", "Hello", to=other)

    assert db.rows("SELECT skill, entry_point FROM conversations") == [{"skill": "sales", "entry_point": None}]
