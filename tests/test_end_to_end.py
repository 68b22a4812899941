"""A consumer texts, the brand replies, the provider reports delivery: over real HTTP, on both databases."""

from __future__ import annotations

import concurrent.futures
import gc

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from smsconnector import Routing, hookimpl, outbound
from smsconnector.app import YOUNG_COLLECTION_THRESHOLD
from smsconnector.testing import BRAND_NUMBER, eventually

CONSUMER = "+14155550123"
both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def consumer_text(sid: str, text: str = "Hi, is my order on its way?") -> dict[str, str]:
    return {"id": sid, "from": CONSUMER, "to": BRAND_NUMBER, "text": text}


@both_databases
def test_inbound_is_stored_once_reply_leaves_and_its_status_is_recorded(make_app, live_server, db):
    app = make_app(plugins={"simulator": {"auto_deliver": False}})
    server = live_server(app)

    first = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=consumer_text("sim-1"))
    retry = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=consumer_text("sim-1"))

    assert (first.status_code, retry.status_code) == (200, 200)
    [stored] = db.rows("SELECT * FROM messages")
    assert (stored["direction"], stored["body"], stored["from_number"]) == ("inbound", consumer_text("x")["text"],
                                                                           CONSUMER)
    [conversation] = db.rows("SELECT * FROM conversations")
    assert (conversation["id"], conversation["skill"], conversation["status"]) == (stored["conversation_id"],
                                                                                   "support", "queued")

    async def reply() -> int:
        async with app.store.transaction() as session:
            message = await outbound.queue(session, provider="simulator", from_number=BRAND_NUMBER,
                                           to_number=CONSUMER, text="It ships today.",
                                           conversation_id=conversation["id"])
        return message.id

    reply_id = server.call(reply)
    sent = eventually(lambda: httpx.get(f"{server.url}/simulator/outbox").json())
    assert [(s["to"], s["text"], s["message_id"]) for s in sent] == [(CONSUMER, "It ships today.", reply_id)]
    assert eventually(lambda: db.count("outbox") == 0)
    assert db.scalar("SELECT status FROM messages WHERE id = :id", id=reply_id) == "sent"

    report = httpx.post(f"{server.url}/webhooks/simulator/status", json={"id": sent[0]["id"], "status": "delivered"})
    late = httpx.post(f"{server.url}/webhooks/simulator/status", json={"id": sent[0]["id"], "status": "sent"})

    assert (report.status_code, late.status_code) == (200, 200)
    assert db.scalar("SELECT status FROM messages WHERE id = :id", id=reply_id) == "delivered"


@both_databases
def test_concurrent_retries_of_one_message_store_it_once(make_app, live_server, db):
    server = live_server(make_app())

    def post(_: int) -> int:
        return httpx.post(f"{server.url}/webhooks/simulator/inbound", json=consumer_text("sim-storm")).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(post, range(32)))

    assert codes == [200] * 32
    assert db.count("messages") == 1
    assert db.count("conversations") == 1


@both_databases
def test_next_message_continues_the_open_conversation(make_app, live_server, db):
    server = live_server(make_app())

    for sid in ("sim-a", "sim-b"):
        assert httpx.post(f"{server.url}/webhooks/simulator/inbound", json=consumer_text(sid)).status_code == 200

    assert db.count("conversations") == 1
    assert db.count("messages", "conversation_id IS NOT NULL") == 2


class LockProbe:
    """A route plugin that tries, from another connection, to take the conversation it is handed."""

    def __init__(self, db) -> None:
        self.db, self.found = db, []

    @hookimpl(tryfirst=True)
    def smsconnector_route(self, conversation):
        if conversation is not None:
            try:
                self.db.execute("SELECT id FROM conversations WHERE id = :id FOR UPDATE NOWAIT", id=conversation.id)
            except OperationalError as exc:
                self.found.append("locked" if exc.orig.sqlstate == "55P03" else str(exc))
            else:
                self.found.append("free")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_route_hooks_get_the_open_conversation_locked_until_the_message_commits(make_app, live_server, db):
    probe = LockProbe(db)
    server = live_server(make_app(register=[("probe", probe)]))

    for sid in ("sim-a", "sim-b"):
        assert httpx.post(f"{server.url}/webhooks/simulator/inbound", json=consumer_text(sid)).status_code == 200

    assert probe.found == ["locked"]  # the second message's conversation, while it was being routed
    assert db.count("messages", "conversation_id IS NOT NULL") == 2


def test_auto_delivered_reply_ends_delivered(make_app, live_server, db):
    app = make_app()
    server = live_server(app)

    async def reply() -> int:
        async with app.store.transaction() as session:
            return (await outbound.queue(session, provider="simulator", from_number=BRAND_NUMBER,
                                         to_number=CONSUMER, text="Hello")).id

    reply_id = server.call(reply)
    assert eventually(lambda: db.scalar("SELECT status FROM messages WHERE id = :id", id=reply_id) == "delivered")


class TooChattyRouter:
    """A route plugin whose automatic reply breaks the agent limit."""

    @hookimpl(tryfirst=True)
    def smsconnector_route(self, message):
        return Routing(handled_by="chatty", skill="support", replies=("x" * 1601,))


def test_a_reply_that_cannot_be_queued_never_costs_the_consumer_message(make_app, live_server, db):
    server = live_server(make_app(register=[("chatty", TooChattyRouter())]))

    response = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=consumer_text("sim-chatty"))

    assert response.status_code == 200
    [stored] = db.rows("SELECT direction, body, notes FROM messages")
    assert (stored["direction"], stored["body"]) == ("inbound", consumer_text("x")["text"])
    assert "automatic reply from chatty not sent: message is 1601 characters" in stored["notes"]


@both_databases
def test_a_status_report_faster_than_the_recorded_send_is_held_then_applied(make_app, live_server, db):
    app = make_app(plugins={"simulator": {"auto_deliver": False}})
    server = live_server(app)
    # The simulator numbers its sends SIM00000001, ...: report on the first before it exists, as a fast
    # provider's callback can reach us before the sender has stored the provider's id.
    early = httpx.post(f"{server.url}/webhooks/simulator/status", json={"id": "SIM00000001", "status": "delivered"})
    assert early.status_code == 200 and db.count("held_statuses") == 1

    async def reply() -> int:
        async with app.store.transaction() as session:
            return (await outbound.queue(session, provider="simulator", from_number=BRAND_NUMBER,
                                         to_number=CONSUMER, text="Hello")).id

    reply_id = server.call(reply)

    assert eventually(lambda: db.scalar("SELECT status FROM messages WHERE id = :id", id=reply_id) == "delivered")
    assert db.count("held_statuses") == 0


def test_serving_collects_young_garbage_less_often_and_puts_the_collectors_pace_back(make_app, live_server):
    """A process that embeds the host gets its own garbage collector settings back when the host stops."""
    before = gc.get_threshold()
    server = live_server(make_app())
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
    server.stop()
    assert gc.get_threshold() == before
