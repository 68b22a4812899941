"""Live events: scoped to the agent they concern, replayed after a reconnect, shared across replicas."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, text

from smsconnector import live
from smsconnector.events import emit
from smsconnector.messages import CONSUMER_PIECE_LIMIT, utcnow
from smsconnector.store.models import EventRecord

from .api_support import ADMIN_TOKEN, Desk, api_app
from .sse_client import EventStream, quick_keepalive  # noqa: F401  (fixture)

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
pytestmark = pytest.mark.usefixtures("quick_keepalive")  # stream readers stop promptly


@pytest.fixture
def desk(make_app, live_server):
    desk = Desk(live_server(api_app(make_app)))
    desk.agent("Ana", max_concurrent=1)
    yield desk
    desk.close()


@both_databases
def test_a_client_that_reconnects_with_last_event_id_gets_what_it_missed(desk):
    with EventStream(desk.server.url, desk.tokens["Ana"]) as stream:
        desk.text("c1", text="first")
        stream.next("conversation.assigned")
        seen = stream.next("message.received")
    assert seen.id is not None

    desk.text("c1", text="while you were away")  # Ana is disconnected
    desk.admin("POST", f"/api/conversations/{desk.current('c1')['id']}/close")
    desk.text("c2", text="a new consumer")

    with EventStream(desk.server.url, desk.tokens["Ana"], last_event_id=seen.id) as stream:
        missed = [stream.next() for _ in range(4)]
        assert [(e.kind, e.data.get("text")) for e in missed] == [
            ("message.received", "while you were away"), ("conversation.closed", None),
            ("conversation.assigned", None), ("message.received", "a new consumer")]
        assert [int(e.id) for e in missed] == sorted(int(e.id) for e in missed)
        assert all(int(e.id) > int(seen.id) for e in missed)
        desk.text("c2", text="and live again")
        assert stream.next("message.received").data["text"] == "and live again"


@pytest.fixture
def idle_poller(monkeypatch):
    """With nobody listening, the poller reads new rows only every POLL_SECONDS: here not within the test."""
    monkeypatch.setattr(live, "POLL_SECONDS", 60.0)


@both_databases
def test_a_new_client_without_last_event_id_hears_only_what_comes_next(idle_poller, desk):
    desk.text("c1", text="before anyone listened")  # committed; the idle poller has not read it

    with EventStream(desk.server.url, desk.tokens["Ana"]) as stream:
        desk.text("c1", text="now")
        assert stream.next("message.received").data["text"] == "now"


def test_a_long_consumer_message_arrives_as_pieces_with_one_event_id(desk):
    text = "y" * (2 * CONSUMER_PIECE_LIMIT + 10)
    with EventStream(desk.server.url, desk.tokens["Ana"]) as stream:
        desk.text("c1", text=text)
        pieces = [stream.next("message.received") for _ in range(3)]
    assert [(p.data["piece"], p.data["pieces"], len(p.data["text"])) for p in pieces] == [
        (1, 3, CONSUMER_PIECE_LIMIT), (2, 3, CONSUMER_PIECE_LIMIT), (3, 3, 10)]
    assert "".join(p.data["text"] for p in pieces) == text
    assert [p.id is not None for p in pieces] == [False, False, True]
    assert len({p.data["message_id"] for p in pieces}) == 1


def test_an_agent_sees_only_their_own_events_and_an_admin_sees_all(desk):
    desk.agent("Ben", max_concurrent=1)
    with EventStream(desk.server.url, desk.tokens["Ana"]) as ana, \
            EventStream(desk.server.url, desk.tokens["Ben"]) as ben, \
            EventStream(desk.server.url, ADMIN_TOKEN) as admin:
        desk.text("c1")  # to Ana
        desk.text("c2")  # to Ben
        desk.text("c3")  # queued: nobody is free
        ana_first = ana.next("conversation.assigned")
        ben_first = ben.next("conversation.assigned")
        admin_kinds = [admin.next().kind for _ in range(8)]
    assert ana_first.data["agent_id"] == desk.agents["Ana"]
    assert ben_first.data["agent_id"] == desk.agents["Ben"]
    assert ana_first.data["conversation_id"] != ben_first.data["conversation_id"]
    assert admin_kinds == ["conversation.queued", "conversation.assigned", "message.received"] * 2 + [
        "conversation.queued", "message.received"]
    for stream, own in ((ana, desk.agents["Ana"]), (ben, desk.agents["Ben"])):
        while not stream.events.empty():
            assert stream.events.get().data["agent_id"] == own


def test_events_older_than_the_retention_are_pruned(desk, db):
    app = desk.server.app

    async def add_old_and_prune() -> int:
        async with app.store.transaction() as session:
            await session.exec(insert(EventRecord).values(kind="message.status", agent_id=None, data={},
                                                          created_at=utcnow() - timedelta(days=2)))
        return await app.live.prune()

    desk.text("c1")
    recent = db.count("events")
    assert desk.server.call(add_old_and_prune) == 1
    assert db.count("events") == recent


@both_databases
def test_a_lower_id_committed_late_is_still_delivered(desk):
    """On PostgreSQL ids are taken before commit: id n+1 may be visible before id n. Neither is lost."""
    app = desk.server.app
    live = app.live
    subscriptions = []

    async def scenario() -> tuple[int, list[list[int]]]:
        subscription = await live.subscribe(None)
        subscriptions.append(subscription)
        await live.poll()
        while not subscription.queue.empty():
            subscription.queue.get_nowait()
        async with app.store.session() as session:
            high = (await session.exec(select(EventRecord.id).order_by(EventRecord.id.desc()))).scalars().first() or 0
        rounds = []
        for event_id in (high + 2, high + 1):  # the later id commits first
            async with app.store.transaction() as session:
                await session.exec(insert(EventRecord).values(id=event_id, kind="message.status", data={},
                                                              created_at=utcnow()))
            await live.poll()
            rounds.append([subscription.queue.get_nowait().id for _ in range(subscription.queue.qsize())])
        if app.store.dialect == "postgresql":  # ids were given by hand: move the sequence past them
            async with app.store.transaction() as session:
                await session.exec(text("SELECT setval(pg_get_serial_sequence('events', 'id'), max(id)) FROM events"))
        return high, rounds

    try:
        high, rounds = desk.server.call(scenario)
    finally:
        for subscription in subscriptions:
            live.unsubscribe(subscription)
    assert rounds == [[high + 2], [high + 1]]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_an_agent_on_one_replica_hears_what_another_replica_committed(make_app, live_server, monkeypatch):
    monkeypatch.setattr(live, "POLL_SECONDS", 60.0)  # so only LISTEN/NOTIFY can deliver within the deadline
    replica_a = live_server(api_app(make_app))
    replica_b = live_server(api_app(make_app))  # the same database, another process's worth of state
    desk_a, desk_b = Desk(replica_a), Desk(replica_b)
    try:
        desk_a.agent("Ana")
        desk_b.tokens = desk_a.tokens
        with EventStream(replica_b.url, desk_a.tokens["Ana"]) as stream:
            desk_a.text("c1", text="via replica A")
            assigned = stream.next("conversation.assigned", timeout=5)
            received = stream.next("message.received", timeout=5)
        assert received.data["conversation_id"] == assigned.data["conversation_id"]
        assert received.data["text"] == "via replica A"
    finally:
        desk_a.close()
        desk_b.close()


@both_databases
def test_the_events_of_one_transaction_are_stored_in_the_order_they_were_emitted(desk, db):
    """However many a transaction emits (PostgreSQL writes them with one statement), each keeps its kind,
    agent, conversation and data, and their ids follow the order of emitting."""
    app = desk.server.app
    at = utcnow()

    async def emit_three() -> None:
        async with app.store.transaction() as session:
            emit(session, "conversation.queued", conversation_id=None, skill="billing")
            emit(session, "message.received", agent_id=7, conversation_id=None, text="hello", at=at)
            emit(session, "not.live", agent_id=7)  # not an agent client's concern: not stored
            emit(session, "conversation.closed", agent_id=None, conversation_id=None, reason="resolved")

    before = db.count("events")
    desk.server.call(emit_three)
    rows = db.rows("SELECT kind, agent_id, data FROM events ORDER BY id")[before:]
    assert [(r["kind"], r["agent_id"]) for r in rows] == [
        ("conversation.queued", None), ("message.received", 7), ("conversation.closed", None)]
    assert [json.loads(r["data"]) if isinstance(r["data"], str) else r["data"] for r in rows] == [
        {"skill": "billing"}, {"text": "hello", "at": str(at)}, {"reason": "resolved"}]
