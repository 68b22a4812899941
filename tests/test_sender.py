"""The sender: retries, permanent failures, send checks, restart, ordering and throttling."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from smsconnector import (
    ConsentSignal,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendResult,
    Verdict,
    hookimpl,
    outbound,
)
from smsconnector.messages import utcnow
from smsconnector.sender import backoff, decide
from smsconnector.store.batching import Batcher, in_transaction
from smsconnector.store.models import HeldStatus
from smsconnector.testing import BRAND_NUMBER, eventually
from smsconnector.testing.fixtures import FAST_SENDER
from smsconnector.throttle import Slot, Throttle

CONSUMER = "+14155550123"


class SpyProvider:
    """A provider whose answers are scripted per message text: a list of outcomes consumed in order."""

    def __init__(self, script: dict[str, list[object]] | None = None) -> None:
        self.script = script or {}
        self.attempts: list[str] = []
        self.accepted: list[str] = []
        self.signals: list[ConsentSignal] = []
        self.verdicts: dict[str, Verdict] = {}

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage):
        if provider != "spy":
            return None
        return self._send(message)

    async def _send(self, message: OutboundMessage) -> SendResult:
        self.attempts.append(message.text)
        outcomes = self.script.get(message.text, [])
        outcome = outcomes.pop(0) if outcomes else "ok"
        if isinstance(outcome, Exception):
            raise outcome
        self.accepted.append(message.text)
        return SendResult(provider_message_id=f"spy-{message.id}", segments=1)

    @hookimpl
    def smsconnector_check_outbound(self, message: OutboundMessage) -> Verdict | None:
        return self.verdicts.get(message.text)

    @hookimpl
    def smsconnector_consent_signal(self, signal: ConsentSignal) -> None:
        self.signals.append(signal)


both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def start(make_app, live_server, spy: SpyProvider, **config):
    app = make_app(register=[("spy", spy)], **config)
    return app, live_server(app)


def queue(app, server, *texts: str, provider: str = "spy", to: str = CONSUMER) -> list[int]:
    async def run() -> list[int]:
        async with app.store.transaction() as session:
            return [(await outbound.queue(session, provider=provider, from_number=BRAND_NUMBER, to_number=to,
                                          text=text)).id for text in texts]

    return server.call(run)


def message(db, message_id: int) -> dict:
    return db.rows("SELECT status, error_code, error_message, provider_message_id FROM messages WHERE id = :id",
                   id=message_id)[0]


@both_databases
def test_retryable_failures_are_retried_and_the_message_is_sent_once(make_app, live_server, db):
    spy = SpyProvider({"hi": [RetryableSendError("429", code="20429"), RetryableSendError("503", code="503")]})
    app, server = start(make_app, live_server, spy)

    [mid] = queue(app, server, "hi")

    assert eventually(lambda: message(db, mid)["status"] == "sent")
    assert spy.attempts == ["hi", "hi", "hi"] and spy.accepted == ["hi"]
    assert message(db, mid)["provider_message_id"] == f"spy-{mid}"
    assert db.count("outbox") == 0


def test_permanent_failure_is_recorded_with_its_code_and_not_retried(make_app, live_server, db):
    spy = SpyProvider({"hi": [PermanentSendError("invalid To number", code="21211")]})
    app, server = start(make_app, live_server, spy)

    [mid] = queue(app, server, "hi")

    assert eventually(lambda: message(db, mid)["status"] == "failed")
    assert message(db, mid)["error_code"] == "21211"
    assert message(db, mid)["error_message"] == "invalid To number"
    assert spy.attempts == ["hi"] and db.count("outbox") == 0


@both_databases
def test_retries_last_for_the_budget_then_fail_with_the_last_code_and_reason(make_app, live_server, db):
    spy = SpyProvider({"hi": [RetryableSendError("server error", code="500")] * 10_000})
    app, server = start(make_app, live_server, spy, sender={**FAST_SENDER, "retry_for_seconds": 1.5})
    started = time.monotonic()

    [mid] = queue(app, server, "hi")

    assert eventually(lambda: message(db, mid)["status"] == "failed")
    took = time.monotonic() - started
    row = message(db, mid)
    assert row["error_code"] == "500"
    assert re.fullmatch(rf"gave up after {len(spy.attempts)} attempts over 1\.[5-9] seconds: server error",
                        row["error_message"]), row["error_message"]
    # Tried for the whole budget (backoff capped at 0.2 s: many more than a count of 8), not a moment longer.
    assert len(spy.attempts) > 8 and 1.5 <= took < 4
    assert spy.accepted == [] and db.count("outbox") == 0


def test_a_message_is_retrying_with_its_last_error_and_next_attempt_until_it_is_sent(make_app, live_server, db):
    spy = SpyProvider({"hi": [RetryableSendError("server error", code="500")] * 3})
    sender = {**FAST_SENDER, "backoff_base_seconds": 0.3, "backoff_max_seconds": 0.3}
    app, server = start(make_app, live_server, spy, sender=sender)

    [mid] = queue(app, server, "hi")

    retrying = eventually(lambda: message(db, mid)["status"] == "retrying" and message(db, mid))
    assert (retrying["error_code"], retrying["error_message"]) == ("500", "server error")
    assert eventually(lambda: message(db, mid)["status"] == "sent")
    assert (message(db, mid)["error_code"], message(db, mid)["error_message"]) == (None, None)  # over once sent
    events = [e["data"] for e in db.rows("SELECT data FROM events WHERE kind = 'message.status' ORDER BY id")]
    statuses = [json.loads(e) if isinstance(e, str) else e for e in events]
    assert [e["status"] for e in statuses] == ["retrying"] * 3 + ["sent"]
    assert all(e["error_code"] == "500" and e["next_attempt_at"] for e in statuses[:3])


class QuietUntil(SpyProvider):
    """A spy whose send check defers every message until ``until`` (quiet hours ending then)."""

    def __init__(self, until, script: dict[str, list[object]]) -> None:
        super().__init__(script)
        self.until = until

    @hookimpl
    def smsconnector_check_outbound(self, message: OutboundMessage) -> Verdict | None:
        return Verdict.defer("quiet_hours", "quiet hours", self.until) if utcnow() < self.until else None


def test_time_held_back_by_a_deferral_does_not_spend_the_retry_budget(make_app, live_server, db):
    spy = QuietUntil(utcnow(), {"promo": [RetryableSendError("429", code="20429")] * 2})
    app, server = start(make_app, live_server, spy, sender={**FAST_SENDER, "retry_for_seconds": 0.8})
    spy.until = utcnow() + timedelta(seconds=1.2)

    [mid] = queue(app, server, "promo")

    # Held for longer than the whole budget, then refused twice by a busy provider: retried, not given up on.
    assert eventually(lambda: message(db, mid)["status"] == "sent")
    assert spy.attempts == ["promo"] * 3


def test_opt_out_refusal_reports_a_consent_signal(make_app, live_server, db):
    spy = SpyProvider({"hi": [PermanentSendError("unsubscribed", code="21610", opted_out=True)]})
    app, server = start(make_app, live_server, spy)

    [mid] = queue(app, server, "hi")

    assert eventually(lambda: message(db, mid)["status"] == "failed")
    [signal] = spy.signals
    assert (signal.consumer_number, signal.brand_number, signal.action, signal.source, signal.message_id) == (
        CONSUMER, BRAND_NUMBER, "opt_out", "spy:21610", mid)


def test_refused_by_a_send_check_never_reaches_the_provider(make_app, live_server, db):
    spy = SpyProvider()
    spy.verdicts["hi"] = Verdict.refuse("opted_out", "the consumer opted out on 2026-11-01")
    app, server = start(make_app, live_server, spy)

    [mid] = queue(app, server, "hi")

    assert eventually(lambda: message(db, mid)["status"] == "refused")
    assert message(db, mid)["error_code"] == "opted_out"
    assert message(db, mid)["error_message"] == "the consumer opted out on 2026-11-01"
    assert spy.attempts == [] and db.count("outbox") == 0


def test_deferred_message_waits_and_is_sent_later_without_counting_an_attempt(make_app, live_server, db):
    spy = SpyProvider()
    spy.verdicts["promo"] = Verdict.defer("quiet_hours", "quiet hours", utcnow() + timedelta(seconds=0.5))
    app, server = start(make_app, live_server, spy)

    [mid] = queue(app, server, "promo")

    assert eventually(lambda: message(db, mid)["status"] == "deferred")
    assert spy.attempts == []
    del spy.verdicts["promo"]  # the window opened
    assert eventually(lambda: message(db, mid)["status"] == "sent")
    assert db.count("outbox") == 0


@both_databases
def test_a_deferred_message_holds_up_nothing_queued_after_it_to_the_same_consumer(make_app, live_server, db):
    # A marketing message held for quiet hours must not keep the agent's reply to a consumer who just wrote
    # waiting until morning; a message behind a retrying one does wait (order within the conversation).
    spy = SpyProvider()
    spy.verdicts["promo"] = Verdict.defer("quiet_hours", "quiet hours", utcnow() + timedelta(hours=9))
    app, server = start(make_app, live_server, spy)

    promo, reply = queue(app, server, "promo", "Your order ships today.")

    assert eventually(lambda: message(db, reply)["status"] == "sent")
    assert message(db, promo)["status"] == "deferred"
    assert spy.accepted == ["Your order ships today."]


def test_unknown_provider_fails_the_message_clearly(make_app, live_server, db):
    app, server = start(make_app, live_server, SpyProvider())

    [mid] = queue(app, server, "hi", provider="nosuch")

    assert eventually(lambda: message(db, mid)["status"] == "failed")
    assert message(db, mid)["error_code"] == "unknown_provider"


@both_databases
def test_outbox_left_by_a_stopped_process_is_sent_after_restart(make_app, live_server, db):
    stopped = make_app(register=[("spy", SpyProvider())], sender={"enabled": False})
    server = live_server(stopped)
    ids = queue(stopped, server, "one", "two", "three")
    server.stop()
    # A crashed sender had claimed "two": its lease runs out and another sender takes it over.
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET lease_until = :t WHERE message_id = :id"),
                     {"t": utcnow() + timedelta(seconds=1), "id": ids[1]})

    spy = SpyProvider()
    live_server(make_app(register=[("spy", spy)], migrate=False))

    assert eventually(lambda: db.count("outbox") == 0)
    assert sorted(spy.accepted) == ["one", "three", "two"]
    assert [message(db, i)["status"] for i in ids] == ["sent"] * 3


def test_messages_to_one_consumer_leave_in_the_order_they_were_queued(make_app, live_server, db):
    spy = SpyProvider()
    app, server = start(make_app, live_server, spy)

    texts = [f"part {n}" for n in range(12)]
    queue(app, server, *texts)

    assert eventually(lambda: len(spy.accepted) == 12)
    assert spy.accepted == texts
    assert db.count("send_rates") == 0  # an unthrottled number costs no pacing row


class HeldProvider(SpyProvider):
    """Keeps every send waiting until :meth:`release` (called on the server's event loop)."""

    def __init__(self) -> None:
        super().__init__()
        self._gate: asyncio.Event | None = None

    async def _send(self, message: OutboundMessage) -> SendResult:
        self._gate = self._gate or asyncio.Event()
        self.attempts.append(message.text)
        await self._gate.wait()
        return await super()._send(message)

    async def release(self) -> None:
        self._gate = self._gate or asyncio.Event()
        self._gate.set()


def leased(db) -> list[int]:
    """The messages whose outbox rows a sender holds."""
    return sorted(r["message_id"] for r in db.rows("SELECT message_id FROM outbox WHERE lease_until IS NOT NULL"))


@both_databases
def test_only_the_head_of_each_recipients_queue_is_claimed(make_app, live_server, db):
    spy = HeldProvider()
    app = make_app(register=[("spy", spy)], sender={"enabled": False})
    server = live_server(app)
    first, second = queue(app, server, "first", "second", to=CONSUMER)
    [other] = queue(app, server, "other", to="+14155550124")

    assert server.call(app.sender.drain_once) == 2
    assert eventually(lambda: sorted(spy.attempts) == ["first", "other"])
    assert leased(db) == [first, other]
    # "second" is due and unleased, but "first" is still in the outbox: it waits, in this process or another.
    assert server.call(app.sender.drain_once) == 0

    server.call(spy.release)
    assert eventually(lambda: db.count("outbox", "message_id = :id", id=first) == 0)
    assert server.call(app.sender.drain_once) == 1
    assert eventually(lambda: db.count("outbox") == 0)
    assert spy.accepted.index("first") < spy.accepted.index("second")
    assert [message(db, i)["status"] for i in (first, second, other)] == ["sent"] * 3


@both_databases
def test_a_message_behind_a_deferred_one_waits_for_it(make_app, live_server, db):
    spy = SpyProvider()
    app = make_app(register=[("spy", spy)], sender={"enabled": False})
    server = live_server(app)
    deferred, behind = queue(app, server, "deferred", "behind")
    db.execute("UPDATE outbox SET due_at = :later WHERE message_id = :id",
               later=utcnow() + timedelta(hours=1), id=deferred)

    assert server.call(app.sender.drain_once) == 0
    assert spy.attempts == [] and leased(db) == []
    db.execute("UPDATE outbox SET due_at = :now WHERE message_id = :id", now=utcnow(), id=deferred)
    assert server.call(app.sender.drain_once) == 1
    assert eventually(lambda: db.count("outbox", "message_id = :id", id=deferred) == 0)
    assert server.call(app.sender.drain_once) == 1
    assert eventually(lambda: db.count("outbox", "message_id = :id", id=behind) == 0)
    assert spy.accepted == ["deferred", "behind"]


class LookingUpProvider(SpyProvider):
    """A spy that can also be asked what it accepted (``smsconnector_find_sent``): ``records`` by message text,
    a scripted answer (an exception, or None) per lookup in ``lookup_script``."""

    def __init__(self, script: dict[str, list[object]] | None = None) -> None:
        super().__init__(script)
        self.records: dict[str, SendResult] = {}
        self.lookups: list[tuple[str, object]] = []
        self.lookup_script: list[object] = []

    @hookimpl
    def smsconnector_find_sent(self, provider: str, message: OutboundMessage, since):
        if provider != "spy":
            return None
        return self._find(message, since)

    async def _find(self, message: OutboundMessage, since) -> SendResult | None:
        self.lookups.append((message.text, since))
        if self.lookup_script:
            answer = self.lookup_script.pop(0)
            if isinstance(answer, Exception):
                raise answer
        return self.records.get(message.text)


def left_attempted(make_app, live_server, db, provider: SpyProvider, *texts: str):
    """Messages to one consumer, the first of which a sender had cleared to go when it was killed: attempted,
    leased, never recorded. Then a new sender on the same database, which takes over once the lease ends."""
    stopped = make_app(register=[("spy", SpyProvider())], sender={"enabled": False})
    server = live_server(stopped)
    ids = queue(stopped, server, *texts)
    server.stop()
    attempted = utcnow() - timedelta(seconds=1)
    db.execute("UPDATE outbox SET attempted_at = :attempted, lease_until = :lease WHERE message_id = :id",
               attempted=attempted, lease=utcnow() + timedelta(seconds=0.5), id=ids[0])
    live_server(make_app(register=[("spy", provider)], migrate=False))
    return ids, attempted


@both_databases
def test_a_message_the_provider_took_before_a_crash_is_recorded_not_sent_again(make_app, live_server, db):
    spy = LookingUpProvider()
    spy.records["hi"] = SendResult(provider_message_id="spy-before-the-crash", segments=1)

    [mid], attempted = left_attempted(make_app, live_server, db, spy, "hi")

    assert eventually(lambda: db.count("outbox") == 0)
    assert message(db, mid)["provider_message_id"] == "spy-before-the-crash"
    assert message(db, mid)["status"] == "sent"
    assert spy.attempts == [] and [text for text, _ in spy.lookups] == ["hi"]
    assert spy.lookups[0][1] == attempted  # "since" is when the lost attempt was cleared to go


def test_a_message_the_provider_does_not_have_is_sent_again_once(make_app, live_server, db):
    spy = LookingUpProvider()

    [first, second], _ = left_attempted(make_app, live_server, db, spy, "lost", "next")

    assert eventually(lambda: db.count("outbox") == 0)
    assert spy.accepted == ["lost", "next"]
    assert [text for text, _ in spy.lookups] == ["lost"]  # "next" was never attempted: nothing to look up
    assert [message(db, i)["provider_message_id"] for i in (first, second)] == [f"spy-{first}", f"spy-{second}"]


def test_without_a_lookup_the_provider_is_sent_the_message_again(make_app, live_server, db):
    spy = SpyProvider()

    [mid], _ = left_attempted(make_app, live_server, db, spy, "hi")

    assert eventually(lambda: message(db, mid)["status"] == "sent")
    assert spy.accepted == ["hi"]  # at least once: the provider cannot say whether it had it


def test_a_lookup_that_fails_is_tried_again_before_any_send(make_app, live_server, db):
    spy = LookingUpProvider()
    spy.lookup_script = [RetryableSendError("listing timed out", code="network")]
    spy.records["hi"] = SendResult(provider_message_id="spy-before-the-crash")

    [mid], _ = left_attempted(make_app, live_server, db, spy, "hi")

    assert eventually(lambda: db.count("outbox") == 0)
    assert (len(spy.lookups), spy.attempts) == (2, [])
    assert message(db, mid)["provider_message_id"] == "spy-before-the-crash"


def test_a_record_that_belongs_to_another_message_is_not_taken_for_this_one(make_app, live_server, db):
    spy = LookingUpProvider()
    app = make_app(register=[("spy", spy)])
    server = live_server(app)
    [earlier] = queue(app, server, "same words")
    assert eventually(lambda: message(db, earlier)["status"] == "sent")
    server.stop()
    spy.records["same words"] = SendResult(provider_message_id=f"spy-{earlier}")  # the earlier one's record

    [mid], _ = left_attempted(make_app, live_server, db, spy, "same words")

    assert eventually(lambda: message(db, mid)["status"] == "sent")
    assert message(db, mid)["provider_message_id"] == f"spy-{mid}"
    assert spy.accepted == ["same words", "same words"]


def test_the_attempt_mark_is_set_before_the_send_and_cleared_when_the_provider_refused(make_app, live_server, db):
    spy = LookingUpProvider({"hi": [RetryableSendError("429", code="20429"),
                                    RetryableSendError("timed out after sending", code="network",
                                                       maybe_accepted=True)]})
    marks: list[object] = []
    original = spy._send

    async def send_noting_the_mark(message_to_send: OutboundMessage) -> SendResult:
        marks.append(db.scalar("SELECT attempted_at FROM outbox WHERE message_id = :id", id=message_to_send.id))
        return await original(message_to_send)

    spy._send = send_noting_the_mark
    app, server = start(make_app, live_server, spy)

    [mid] = queue(app, server, "hi")

    assert eventually(lambda: message(db, mid)["status"] == "sent")
    assert len(marks) == 3 and all(mark is not None for mark in marks)
    # Refused with a 429: Twilio did not take it, no lookup. Timed out after sending: looked up before the third.
    assert [text for text, _ in spy.lookups] == ["hi"]


def test_a_send_whose_lease_ran_out_before_its_turn_is_left_to_the_next_claim(make_app, live_server, db, caplog):
    spy = LookingUpProvider()
    app, server = start(make_app, live_server, spy, sender={**FAST_SENDER, "lease_seconds": 1})
    stalls: list[float] = []  # once

    def statement(connection, _cursor, sql: str, *_: object) -> None:
        if sql.lstrip().startswith("UPDATE outbox SET lease_until") and "attempted_at" in sql:  # the mark
            connection.info["marked"] = True

    def commit(connection) -> None:
        if connection.info.pop("marked", False) and not stalls:
            stalls.append(1.2)
            time.sleep(1.2)  # the process stalls (a swapped-out host, a blocked loop) as it clears the message

    event.listen(app.store.engine.sync_engine, "before_cursor_execute", statement)
    event.listen(app.store.engine.sync_engine, "commit", commit)

    [mid] = queue(app, server, "hi")

    assert eventually(lambda: message(db, mid)["status"] == "sent")
    assert "its lease ran out before its turn came" in caplog.text
    # Not sent by the stalled attempt (another process could have taken the row over meanwhile); the next claim
    # looked it up (nothing there) and sent it, once.
    assert (spy.attempts, [text for text, _ in spy.lookups]) == (["hi"], ["hi"])


class GatedProvider(SpyProvider):
    """Holds every send until ``together`` are in flight, then lets them all go; notes each check's session."""

    def __init__(self, together: int) -> None:
        super().__init__()
        self.together = together
        self.check_sessions: list[object] = []
        self._gate: asyncio.Event | None = None

    @hookimpl
    def smsconnector_check_outbound(self, message: OutboundMessage, session: object) -> Verdict | None:
        self.check_sessions.append(session)
        return self.verdicts.get(message.text)

    async def _send(self, message: OutboundMessage) -> SendResult:
        self._gate = self._gate or asyncio.Event()
        self.attempts.append(message.text)
        if len(self.attempts) == self.together:
            self._gate.set()
        await self._gate.wait()
        return await super()._send(message)


def test_sends_in_flight_together_share_their_check_and_record_transactions(make_app, live_server, db):
    spy = GatedProvider(together=7)
    spy.verdicts["hi 0"] = Verdict.refuse("opted_out", "the consumer opted out")
    app, server = start(make_app, live_server, spy, sender={"poll_interval_seconds": 60})
    # The transactions that recorded acceptances (the host's periodic ones, such as the inbox processor's
    # look for due entries every second, commit too and are not what is counted).
    recorded: list[int] = []

    def statement(connection, _cursor, sql: str, *_: object) -> None:
        if sql.lstrip().startswith("UPDATE messages SET provider_message_id"):
            connection.info["records"] = connection.info.get("records", 0) + 1

    def commit(connection) -> None:
        if "records" in connection.info:
            recorded.append(connection.info.pop("records"))

    event.listen(app.store.engine.sync_engine, "before_cursor_execute", statement)
    event.listen(app.store.engine.sync_engine, "commit", commit)

    async def run() -> list[int]:
        async with app.store.transaction() as session:
            return [(await outbound.queue(session, provider="spy", from_number=BRAND_NUMBER,
                                          to_number=f"+1415555{n:04d}", text=f"hi {n}")).id for n in range(8)]

    ids = server.call(run)

    assert eventually(lambda: db.count("outbox") == 0)
    assert [message(db, i)["status"] for i in ids] == ["refused"] + ["sent"] * 7
    # One transaction per message before: eight checks, then seven acceptances each committed alone.
    assert len({id(s) for s in spy.check_sessions}) <= 2
    assert 1 <= len(recorded) <= 2


def test_a_batch_item_that_fails_fails_alone_and_the_rest_commit(make_app, db):
    app = make_app()
    seen: list[list[str]] = []

    async def hold(session, items: list[str]) -> list[str]:
        seen.append(items)
        for item in items:
            session.add(HeldStatus(provider="test", provider_message_id=item, status="sent", received_at=utcnow()))
            if item == "bad":
                raise ValueError(item)
        return [item.upper() for item in items]

    async def run() -> list[object]:
        batched = Batcher(in_transaction(app.store, hold), max_batch=2)
        try:
            return await asyncio.gather(*(batched.submit(item) for item in ("a", "bad", "c")),
                                        return_exceptions=True)
        finally:
            await batched.close()
            await app.store.close()

    a, bad, c = asyncio.run(run())

    assert (a, c) == ("A", "C") and isinstance(bad, ValueError)
    assert seen == [["a", "bad"], ["a"], ["bad"], ["c"]]  # at most two a batch; a failed batch item by item
    assert sorted(r["provider_message_id"] for r in db.rows("SELECT provider_message_id FROM held_statuses")) == [
        "a", "c"]


@both_databases
def test_throttle_spaces_segments_per_number_at_its_rate_in_the_database(make_app, db):
    app = make_app()
    throttle = Throttle({"+1long": 1.0, "+1short": 100.0, "+1free": 0.0}.__getitem__, horizon_seconds=4.5)

    async def reserve(*asks: tuple[str, int]) -> list[Slot]:
        async with app.store.transaction() as session:
            return [await throttle.reserve(session, number, segments) for number, segments in asks]

    asked: dict[str, float] = {}

    async def run() -> list[list[Slot]]:
        try:
            # One transaction per send, as the sender's check batches do, and several in one.
            slots = [await reserve(("+1long", 1)), await reserve(("+1long", 3), ("+1long", 1)),
                     await reserve(("+1long", 1))]
            asked["short"] = time.time()
            return [*slots, await reserve(("+1short", 1), ("+1short", 1))]
        finally:
            await app.store.close()

    [[first], [three, after], [beyond], [short, next_short]] = asyncio.run(run())

    # The 3-segment message takes three one-second slots; the one after it waits four seconds.
    assert (first.reserved, three.reserved, after.reserved) == (True, True, True)
    assert [first.wait, three.wait, after.wait] == pytest.approx([0.0, 1.0, 4.0], abs=0.2)
    # Five seconds ahead is beyond the horizon: not reserved, and the number's next slot did not move.
    assert not beyond.reserved and beyond.wait == pytest.approx(5.0, abs=0.2)
    # The second of two sends at 100/s waits what is left of the first's 10 ms (less on a slow machine), and
    # the number's next slot is two slots after the first.
    assert short.wait == 0.0 and 0.0 <= next_short.wait <= 0.011
    [booked] = db.rows("SELECT next_free_at FROM send_rates WHERE number = '+1short'")
    assert booked["next_free_at"] >= asked["short"] + 0.02 - 0.001
    assert (throttle.paces("+1long"), throttle.paces("+1free")) == (True, False)
    assert sorted(r["number"] for r in db.rows("SELECT number FROM send_rates")) == ["+1long", "+1short"]


def test_a_slot_beyond_the_horizon_hands_the_row_back_until_its_number_is_free(make_app, live_server, db):
    spy = ClockedProvider()
    numbers = [{"number": BRAND_NUMBER, "provider": "spy", "skill": "support", "rate_per_second": 1}]
    app, server = start(make_app, live_server, spy, numbers=numbers)  # lease 5 s: a horizon of 1.25 s
    # Another process has booked the number's next three seconds.
    db.execute("INSERT INTO send_rates (number, next_free_at) VALUES (:number, :at)", number=BRAND_NUMBER,
               at=time.time() + 3)
    queued = time.monotonic()

    [mid] = queue(app, server, "hi")

    # Handed back, unleased and due later, with no attempt counted: not held for three seconds of its lease.
    handed_back = eventually(lambda: db.rows("SELECT attempts, attempted_at FROM outbox "
                                             "WHERE lease_until IS NULL AND due_at > :now", now=utcnow()))
    assert handed_back == [{"attempts": 0, "attempted_at": None}]
    assert message(db, mid)["status"] == "queued" and spy.attempts == []
    assert eventually(lambda: message(db, mid)["status"] == "sent", timeout=10)
    assert spy.times[0] - queued >= 2.5


class ClockedProvider(SpyProvider):
    """Notes when each send reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    async def _send(self, message: OutboundMessage) -> SendResult:
        self.times.append(time.monotonic())
        return await super()._send(message)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_senders_on_one_database_keep_a_numbers_rate_between_them(make_app, live_server, db):
    rate, count = 5.0, 20
    numbers = [{"number": BRAND_NUMBER, "provider": "spy", "skill": "support", "rate_per_second": rate}]
    # Few sends in flight each, so that both senders take part.
    config = {"numbers": numbers, "sender": {**FAST_SENDER, "concurrency": 3, "batch_size": 3}}
    spies = [ClockedProvider(), ClockedProvider()]
    apps = [make_app(register=[("spy", spy)], **config) for spy in spies]
    servers = [live_server(app) for app in apps]

    for n in range(count):
        queue(apps[0], servers[0], f"hi {n}", to=f"+1415555{n:04d}")

    assert eventually(lambda: db.count("outbox") == 0, timeout=30)
    assert all(spy.accepted for spy in spies), "both senders sent"
    times = sorted(t for spy in spies for t in spy.times)
    assert len(times) == count
    # However the sends fell between the senders, no second holds more than the rate (a little jitter aside).
    window = int(rate)
    assert min(later - earlier for earlier, later in zip(times, times[window:], strict=False)) >= 1.0 - 0.1
    assert times[-1] - times[0] >= (count - 1) / rate - 0.2


def test_verdicts_combine_refusal_first_then_latest_deferral_then_tightest_validity():
    soon, later = utcnow(), utcnow() + timedelta(hours=1)
    assert decide([Verdict.defer("q", "", later), Verdict.refuse("opted_out", "")]).code == "opted_out"
    assert decide([Verdict.defer("a", "", soon), Verdict.defer("b", "", later)]).until == later
    assert decide([Verdict("allow", validity_seconds=600), Verdict("allow", validity_seconds=60)]) == Verdict(
        "allow", validity_seconds=60)
    assert decide([]) == Verdict("allow")


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_grows_exponentially_within_jitter_and_cap(attempt):
    ceiling = min(300.0, 1.0 * 2 ** (attempt - 1))
    delays = [backoff(attempt, 1.0, 300.0) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jittered, so retries from many messages do not arrive together
