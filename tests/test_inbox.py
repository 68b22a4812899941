"""The inbox: webhooks are answered once their events are stored; the processor routes them right after,
exactly once, in order, through crashes, retries and failures."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import Counter
from datetime import timedelta

import httpx
import pytest
import sqlalchemy
from hypothesis import given
from hypothesis import strategies as st

from smsconnector import hookimpl, processing
from smsconnector.inbox import decode, encode, key
from smsconnector.messages import DeliveryStatus, InboundMessage, Media, SegmentInfo, StatusUpdate, utcnow
from smsconnector.testing import BRAND_NUMBER, eventually

CONSUMER = "+14155550123"
STORED = {"inbound": {"acknowledge": "stored"}}
both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def text(n: int, body: str = "hello") -> dict[str, str]:
    return {"id": f"sim-{n}", "from": CONSUMER, "to": BRAND_NUMBER, "text": f"{body} {n}"}


class Held:
    """Holds an app's inbox processor back until released: shows what a webhook answers before routing."""

    def __init__(self, app) -> None:
        self.release = threading.Event()
        process = app.processor.process

        async def held(limit: int) -> int:
            while not self.release.is_set():
                await asyncio.sleep(0.01)
            return await process(limit)

        app.processor.process = held


class FlakyRouter:
    """Fails the first ``failures`` times it sees a message whose text contains ``marker``."""

    def __init__(self, marker: str, failures: int) -> None:
        self.marker, self.failures, self.seen = marker, failures, 0

    @hookimpl(tryfirst=True)
    def smsconnector_route(self, message):
        if self.marker in message.text:
            self.seen += 1
            if self.seen <= self.failures:
                raise RuntimeError("the routing database had a bad moment")
        return None


@both_databases
def test_a_webhook_is_answered_once_stored_and_routed_right_after(make_app, live_server, db):
    app = make_app(**STORED)
    held = Held(app)
    server = live_server(app)

    response = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(1))

    assert response.status_code == 200
    assert db.count("inbox", "processed_at IS NULL") == 1  # stored before the answer...
    assert db.count("messages") == 0  # ...and not routed yet
    held.release.set()
    eventually(lambda: db.count("conversations") == 1)
    [entry] = db.rows("SELECT processed_at, payload FROM inbox")
    assert entry["processed_at"] is not None and entry["payload"] is None  # the text is kept once, in messages
    assert db.count("messages", "direction = 'inbound' AND conversation_id IS NOT NULL") == 1


@both_databases
def test_a_retry_is_recognised_at_the_door_before_and_after_routing(make_app, live_server, db):
    app = make_app(**STORED)
    held = Held(app)
    server = live_server(app)

    first = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(1))
    retry_while_waiting = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(1))
    held.release.set()
    eventually(lambda: db.count("inbox", "processed_at IS NOT NULL") == 1)
    retry_after = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(1))

    assert [r.status_code for r in (first, retry_while_waiting, retry_after)] == [200, 200, 200]
    assert db.count("inbox") == 1 and db.count("messages") == 1


def test_a_webhook_not_stored_in_time_is_answered_503_and_its_retry_is_stored_once(
        make_app, live_server, db, database_url):
    """The store held by another process past ``[inbound] timeout_seconds``: the provider is told to try again
    (503), not kept waiting; the write it started still lands once the lock is free, and the retry finds it."""
    app = make_app(inbound={"acknowledge": "stored", "timeout_seconds": 0.5})
    server = live_server(app)
    other = sqlite3.connect(database_url.removeprefix("sqlite:///"), check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

    started = time.monotonic()
    refused = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(1), timeout=10)
    waited = time.monotonic() - started
    stored_meanwhile = db.count("inbox")
    other.commit()
    other.close()
    eventually(lambda: db.count("messages") == 1)
    retry = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(1))

    assert refused.status_code == 503
    assert refused.json() == {"error": "unavailable", "detail": "not stored within 0.5 s"}
    assert 0.4 < waited < 3
    assert stored_meanwhile == 0
    assert retry.status_code == 200
    assert db.count("inbox") == 1 and db.count("messages") == 1


def test_answered_once_routed_a_webhook_whose_routing_outlasts_the_timeout_is_answered_200_once_stored(
        make_app, live_server, db):
    """With ``acknowledge = "routed"`` the provider waits for routing, but no longer than the timeout: its
    message is stored by then, so it is answered 2xx (a 5xx would only bring a retry of a stored message)."""
    app = make_app(inbound={"acknowledge": "routed", "timeout_seconds": 0.5})
    held = Held(app)
    server = live_server(app)

    started = time.monotonic()
    response = httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(1), timeout=10)
    waited = time.monotonic() - started
    routed_meanwhile = db.count("messages")
    held.release.set()

    assert response.status_code == 200
    assert 0.4 < waited < 3
    assert routed_meanwhile == 0 and db.count("inbox") == 1
    eventually(lambda: db.count("messages") == 1)


def test_entries_stored_before_a_crash_are_routed_when_the_host_starts_again(make_app, live_server, db):
    crashed = make_app()
    messages = [InboundMessage(provider="simulator", provider_message_id=f"sim-{n}", from_number=CONSUMER,
                               to_number=BRAND_NUMBER, text=f"message {n}") for n in range(3)]

    async def store_without_routing() -> None:  # what a host that died right after answering left behind
        await crashed.inbox.put("simulator", messages)
        await crashed.inbox.close()
        await crashed.store.close()

    asyncio.run(store_without_routing())
    assert db.count("inbox", "processed_at IS NULL") == 3 and db.count("messages") == 0

    live_server(make_app())

    eventually(lambda: db.count("inbox", "processed_at IS NULL") == 0)
    rows = db.rows("SELECT body FROM messages WHERE direction = 'inbound' ORDER BY id")
    assert [r["body"] for r in rows] == ["message 0", "message 1", "message 2"]  # once each, in arrival order
    assert db.count("conversations") == 1


def test_an_entry_that_fails_is_retried_later_and_the_others_are_not_held_up(make_app, live_server, db, monkeypatch):
    monkeypatch.setattr(processing, "RETRY_BASE", timedelta(milliseconds=50))
    flaky = FlakyRouter("unlucky", failures=2)
    server = live_server(make_app(register=[("flaky", flaky)], **STORED))

    for n, body in enumerate(["fine", "unlucky", "fine"]):
        assert httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(n, body)).status_code == 200

    eventually(lambda: db.count("inbox", "processed_at IS NULL") == 0)
    assert db.count("messages", "direction = 'inbound'") == 3  # each exactly once
    # Tried in its batch (failed), alone (failed: one attempt counted, due again later), then again (routed).
    assert flaky.seen == 3
    [entry] = db.rows("SELECT attempts, error FROM inbox WHERE attempts > 0")
    assert entry["attempts"] == 1 and entry["error"] is None  # the error is cleared once it went through


def test_an_entry_that_keeps_failing_is_set_aside_kept_and_logged_without_its_text(
        make_app, live_server, db, monkeypatch, caplog):
    monkeypatch.setattr(processing, "RETRY_BASE", timedelta(milliseconds=20))
    server = live_server(make_app(register=[("flaky", FlakyRouter("doomed", failures=99))],
                                  inbound={"acknowledge": "stored", "max_attempts": 3}))

    with caplog.at_level(logging.WARNING):
        httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(1, "doomed secret words"))
        httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(2, "fine"))
        eventually(lambda: db.count("inbox", "processed_at IS NULL") == 0)

    [aside] = db.rows("SELECT attempts, error, payload FROM inbox WHERE error IS NOT NULL")
    assert aside["attempts"] == 3
    assert aside["error"] == "RuntimeError: the routing database had a bad moment"
    assert aside["payload"] is not None  # kept: nothing is lost, an operator can look at it
    assert db.count("messages", "direction = 'inbound'") == 1  # the other one went through
    assert "set aside after 3 attempt(s)" in caplog.text
    assert "secret words" not in caplog.text
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'smsconnector_inbox_set_aside_total{provider="simulator"} 1.0' in metrics


def test_processed_entries_are_forgotten_after_the_retention_but_pending_and_set_aside_ones_stay(make_app, db):
    app = make_app(inbound={"retention_hours": 1})
    items = [InboundMessage(provider="simulator", provider_message_id=f"sim-{n}", from_number=CONSUMER,
                            to_number=BRAND_NUMBER, text="x") for n in range(3)]
    two_hours_ago = (utcnow() - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLite keeps them

    async def run() -> int:
        try:
            await app.inbox.put("simulator", items)
            routed, set_aside = "payload = NULL", "error = 'x'"
            for change, entry in ((routed, "message:sim-0"), (set_aside, "message:sim-1")):
                db.execute(f"UPDATE inbox SET processed_at = :t, {change} WHERE key = :k", t=two_hours_ago, k=entry)
            return await app.processor.prune()
        finally:
            await app.inbox.close()
            await app.store.close()

    assert asyncio.run(run()) == 1
    assert sorted(r["key"] for r in db.rows("SELECT key FROM inbox")) == ["message:sim-1", "message:sim-2"]


def test_the_backlog_is_on_the_metrics_page(make_app, live_server):
    app = make_app(**STORED)
    held = Held(app)
    server = live_server(app)
    for n in range(3):
        httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(n))

    assert "smsconnector_inbox_pending 3.0" in httpx.get(f"{server.url}/metrics").text
    held.release.set()
    eventually(lambda: "smsconnector_inbox_pending 0.0" in httpx.get(f"{server.url}/metrics").text)


_text = st.text(st.characters(codec="utf-8"), max_size=50)
_segments = st.none() | st.builds(SegmentInfo, reference=st.integers(0, 65535), total=st.integers(1, 255),
                                  sequence=st.integers(1, 255), payload=st.none() | st.binary(max_size=140),
                                  encoding=st.none() | st.sampled_from(["gsm03.38", "utf-16-be"]))
_when = st.datetimes(timezones=st.just(utcnow().tzinfo))
_items = st.builds(
    InboundMessage, provider=st.just("p"), provider_message_id=_text, from_number=_text, to_number=_text,
    text=_text, media=st.lists(st.builds(Media, url=_text, content_type=st.none() | _text), max_size=3).map(tuple),
    segment=_segments, num_segments=st.none() | st.integers(1, 10), provider_keyword=st.none() | _text,
    incomplete=st.booleans(), received_at=_when, details=st.dictionaries(_text, _text, max_size=3),
) | st.builds(
    StatusUpdate, provider=st.just("p"), provider_message_id=_text, status=st.sampled_from(DeliveryStatus),
    error_code=st.none() | _text, error_message=st.none() | _text, segment=_segments, occurred_at=_when,
)


@given(_items)
def test_an_event_comes_out_of_the_inbox_as_it_went_in(item):
    kind = "message" if isinstance(item, InboundMessage) else "status"
    assert decode(kind, encode(item)) == item


def test_the_same_status_again_is_a_retry_but_a_new_status_or_part_is_not():
    def report(status, sequence=None):
        segment = SegmentInfo(reference=1, total=2, sequence=sequence) if sequence else None
        return StatusUpdate(provider="p", provider_message_id="SM1", status=status, segment=segment)

    assert key(report(DeliveryStatus.SENT)) == key(report(DeliveryStatus.SENT))
    assert len({key(report(DeliveryStatus.SENT)), key(report(DeliveryStatus.DELIVERED)),
                key(report(DeliveryStatus.DELIVERED, 1)), key(report(DeliveryStatus.DELIVERED, 2))}) == 4


class Overlaps:
    """A route hook that takes a moment and notes how many routings of one consumer run at once, and in how many
    transactions the messages were routed."""

    def __init__(self) -> None:
        self.running: Counter[str] = Counter()
        self.most_for_one = 0
        self.transactions: set[int] = set()

    @hookimpl(tryfirst=True)
    async def smsconnector_route(self, message, session):
        self.transactions.add(id(session))
        self.running[message.from_number] += 1
        self.most_for_one = max(self.most_for_one, self.running[message.from_number])
        try:
            await asyncio.sleep(0.002)
        finally:
            self.running[message.from_number] -= 1
        return None


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_a_backlog_is_routed_in_a_few_transactions_each_consumer_in_arrival_order(make_app, live_server, db):
    overlaps = Overlaps()
    app = make_app(register=[("overlaps", overlaps)], **STORED)
    held = Held(app)
    server = live_server(app)
    consumers = [f"+141555501{n:02d}" for n in range(6)]
    for n in range(30):
        texted = {"id": f"sim-{n}", "from": consumers[n % 6], "to": BRAND_NUMBER, "text": f"text {n}"}
        assert httpx.post(f"{server.url}/webhooks/simulator/inbound", json=texted).status_code == 200

    held.release.set()
    eventually(lambda: db.count("inbox", "processed_at IS NULL") == 0)

    # The backlog in batches, not a transaction a message (on SQLite, as many as fit in a 50 ms slice each; on
    # PostgreSQL a slice of 16 may go first, taken while the webhooks were still coming in)...
    assert len(overlaps.transactions) <= (2 if db.engine.dialect.name == "postgresql" else 15)
    assert overlaps.most_for_one == 1  # ...never two of one consumer's texts at once
    for consumer in consumers:
        rows = db.rows("SELECT body FROM messages WHERE from_number = :consumer ORDER BY id", consumer=consumer)
        assert [r["body"] for r in rows] == [f"text {n}" for n in range(30) if consumers[n % 6] == consumer]
        conversations = db.count("conversations", "consumer_number = :consumer", consumer=consumer)
        assert conversations == 1  # five texts in one batch: one conversation, the later ones continuing it


class Slow:
    """A router that takes ``seconds`` of the event loop per message, as a heavy routing chain would."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    @hookimpl(tryfirst=True)
    def smsconnector_route(self, message):
        time.sleep(self.seconds)
        return None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_a_routing_transaction_stops_taking_entries_once_its_time_is_up(make_app, db, monkeypatch):
    # While it lasts, no webhook is stored (it holds the one connection), so it must stay short whatever
    # batch_size allows; the rest wait for the next transaction, oldest first.
    monkeypatch.setattr(processing, "SLICE_SECONDS", 0.05)
    app = make_app(register=[("slow", Slow(0.03))], inbound={"acknowledge": "stored", "batch_size": 64})
    messages = [InboundMessage(provider="simulator", provider_message_id=f"sim-{n}", from_number=CONSUMER,
                               to_number=BRAND_NUMBER, text=f"message {n}") for n in range(5)]

    async def route_all() -> list[int]:
        async with app.running(serving=False, working=False):
            await app.inbox.put("simulator", messages[:1])
            assert await app.processor.process(64) == 1  # routing has become slow: this one shows it how slow
            await app.inbox.put("simulator", messages[1:])
            taken = []
            while count := await app.processor.process(64):
                taken.append(count)
            return taken

    taken = asyncio.run(route_all())

    assert sum(taken) == 4 and all(1 <= n <= 2 for n in taken)  # a third entry would end past the 50 ms
    rows = db.rows("SELECT body FROM messages WHERE direction = 'inbound' ORDER BY id")
    assert [r["body"] for r in rows] == [f"message {n}" for n in range(5)]  # once each, in arrival order


class Writes:
    """Stands in for the inbox's writes as the processor sees them: under way (or waiting) until ``pause``
    says otherwise; ``instant`` pauses them for a single turn of the loop after each write, as between two
    batches of a saturating burst."""

    def __init__(self, *, pause: bool = False, instant: bool = False) -> None:
        self.writing = not pause
        self.instant = instant

    async def written(self) -> None:
        if not self.instant:
            await asyncio.sleep(3600)  # a write that does not end within the processor's patience
        await asyncio.sleep(0.001)
        self.writing = False
        asyncio.get_running_loop().call_soon(setattr, self, "writing", True)


def next_batch(app, writes: Writes, *, last_write: float) -> tuple[int, float]:
    """How many entries the processor takes next while webhooks' writes behave as ``writes`` says, the last
    one stored ``last_write`` seconds ago; and how long it took to decide."""

    async def decide() -> tuple[int, float]:
        app.inbox = writes
        loop = asyncio.get_running_loop()
        app.processor._last_write = loop.time() - last_write
        started = loop.time()
        return await app.processor._batch_size(), loop.time() - started

    return asyncio.run(decide())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_webhooks_waiting_to_be_stored_keep_routing_to_one_entry_at_a_time(make_app, monkeypatch):
    # A routing transaction holds SQLite's one connection, so while it runs no webhook is stored: the last
    # write grows old although webhooks wait. Taken for the end of the burst, that started slice after slice.
    monkeypatch.setattr(processing, "GIVE_WAY_SECONDS", 0.05)
    app = make_app(**STORED)

    taken, waited = next_batch(app, Writes(), last_write=10.0)

    assert taken == 1 and waited >= 0.05


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_instants_pause_between_webhooks_writes_is_not_a_lull_for_routing(make_app, monkeypatch):
    # Under a saturating burst the writes stop for a turn of the loop between batches; a slice taken then
    # held the next webhooks up for its whole length (measured: the rate answered halved).
    monkeypatch.setattr(processing, "GIVE_WAY_SECONDS", 0.05)
    app = make_app(**STORED)

    taken, waited = next_batch(app, Writes(instant=True), last_write=0.0)

    assert taken == 1 and waited >= 0.05


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_routing_takes_a_slice_once_webhooks_writes_pause_and_a_whole_batch_once_they_stop(make_app):
    app = make_app(inbound={"acknowledge": "stored", "batch_size": 64})

    assert next_batch(app, Writes(pause=True), last_write=0.0)[0] == processing.SLICE
    assert next_batch(app, Writes(pause=True), last_write=10.0)[0] == 64


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_webhooks_after_postgres_dropped_every_connection_are_stored_and_routed(make_app, live_server, db):
    """A database restart or failover closes the host's pooled connections under it: nothing is lost."""
    server = live_server(make_app(**STORED))
    assert httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(1)).status_code == 200
    eventually(lambda: db.count("messages") == 1)  # the pool now holds connections that were just used

    dropped = db.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = current_schema() AND pid <> pg_backend_pid()")

    assert dropped >= 1
    answers = [httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text(n)).status_code for n in (2, 3, 4)]
    assert answers == [200, 200, 200]
    eventually(lambda: db.count("messages") == 4)
    assert db.count("inbox", "processed_at IS NULL") == 0


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_an_inbox_write_whose_connection_drops_after_the_pools_check_is_still_stored(make_app, db):
    """The pool checks a connection as it hands it out; one can still drop right after. The inbox write is
    tried once more on a new connection: stored once, and the caller never sees the drop."""
    app = make_app()  # not running: nothing else takes a connection from the pool first
    app.store.engine.sync_engine.pool._pre_ping = False  # the check passes, the connection drops after it
    messages = [InboundMessage(provider="simulator", provider_message_id=f"sim-{n}", from_number=CONSUMER,
                               to_number=BRAND_NUMBER, text=f"message {n}") for n in range(2)]

    async def put_drop_put() -> list[list[int | None]]:
        first = await app.inbox.put("simulator", messages[:1])  # the pool now holds a connection
        await asyncio.to_thread(db.scalar, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE application_name = current_schema() AND pid <> pg_backend_pid()")
        second = await app.inbox.put("simulator", messages[1:])
        await app.inbox.close()
        await app.store.close()
        return [first, second]

    first, second = asyncio.run(put_drop_put())

    assert first[0] is not None and second[0] is not None
    assert [r["key"] for r in db.rows("SELECT key FROM inbox ORDER BY id")] == ["message:sim-0", "message:sim-1"]


def _message(n: int, consumer: str, body: str = "text") -> InboundMessage:
    return InboundMessage(provider="simulator", provider_message_id=f"sim-{n}", from_number=consumer,
                          to_number=BRAND_NUMBER, text=f"{body} {n}")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_consumers_later_text_waits_while_another_process_holds_the_earlier_one(make_app, db):
    app = make_app(**STORED)
    other = "+14155550199"

    async def scenario() -> tuple[int, int]:
        async with app.running(serving=False, working=False):
            await app.inbox.put("simulator", [_message(1, CONSUMER), _message(2, other), _message(3, CONSUMER)])
            [first] = db.rows("SELECT id FROM inbox WHERE key = 'message:sim-1'")
            with db.engine.connect() as elsewhere:  # another worker's batch, holding the consumer's first text
                elsewhere.execute(sqlalchemy.text("SELECT id FROM inbox WHERE id = :id FOR UPDATE"), first)
                while_held = await app.processor.process(64)
                elsewhere.rollback()
            after = 0
            while taken := await app.processor.process(64):
                after += taken
            return while_held, after

    while_held, after = asyncio.run(scenario())

    assert while_held == 1  # the other consumer's text went; this consumer's second did not overtake its first
    assert after == 2
    rows = db.rows("SELECT body FROM messages WHERE from_number = :consumer ORDER BY id", consumer=CONSUMER)
    assert [r["body"] for r in rows] == ["text 1", "text 3"]


@both_databases
def test_an_entry_the_database_cannot_store_is_set_aside_while_the_rest_flow(make_app, db, caplog):
    # A NUL byte: PostgreSQL's text cannot hold it, and reading it out of JSON in SQL once stopped every pass.
    # The door now keeps it out of new entries; one already in the inbox (from an older version) must not block.
    app = make_app(inbound={"acknowledge": "stored", "max_attempts": 1})

    async def scenario() -> None:
        async with app.running(serving=False, working=False):
            await app.inbox.put("simulator", [_message(1, CONSUMER, "poison\x00"), _message(2, "+14155550188"),
                                              _message(3, "+14155550177")])
            while await app.processor.process(64):
                pass

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())

    assert db.count("inbox", "processed_at IS NULL") == 0
    assert sorted(r["body"] for r in db.rows("SELECT body FROM messages")) in (
        ["text 2", "text 3"],  # PostgreSQL: set aside, kept with its error
        ["poison\x00 1", "text 2", "text 3"],  # SQLite stores it as it came
    )
    if db.count("messages") == 2:
        [aside] = db.rows("SELECT error, payload FROM inbox WHERE error IS NOT NULL")
        assert aside["payload"] is not None and "poison" not in aside["error"] and "poison" not in caplog.text
