"""Provider status updates on stored messages: never backwards, and per-part receipts made into one status."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import pytest

from smsconnector import OutboundMessage, SendResult, hookimpl, outbound, status
from smsconnector.app import App
from smsconnector.errors import Malformed
from smsconnector.events import Event
from smsconnector.messages import DeliveryStatus, SegmentInfo, StatusUpdate, utcnow
from smsconnector.store.models import DeliveryPart, Message
from smsconnector.testing import BRAND_NUMBER, eventually
from smsconnector.testing.server import LiveServer

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
TICKET = "03155-0331L-1439U-51SLFX"
SENT, DELIVERED, FAILED, UNDELIVERED = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED,
                                        DeliveryStatus.UNDELIVERED)


async def sent_message(app: App, ticket: str = TICKET) -> int:
    """An outbound message the provider accepted under ``ticket``."""
    async with app.store.transaction() as session:
        message = Message(direction="outbound", provider="simulator", provider_message_id=ticket,
                          from_number=BRAND_NUMBER, to_number="+14155550123", body="x" * 400, status="sent",
                          created_at=utcnow(), updated_at=utcnow())
        session.add(message)
        await session.flush()
        assert message.id is not None
        return message.id


def receipt(sequence: int | None, state: DeliveryStatus, code: str | None = None, *, total: int = 3,
            ticket: str = TICKET) -> StatusUpdate:
    segment = None if sequence is None else SegmentInfo(reference=0, total=total, sequence=sequence)
    # Providers describe every receipt, successful ones too ("Message delivered").
    return StatusUpdate(provider="simulator", provider_message_id=ticket, status=state, error_code=code,
                        error_message=f"carrier says {code or state.value}", segment=segment)


async def apply(app: App, update: StatusUpdate) -> None:
    async with app.store.transaction() as session:
        await status.apply(app, session, update)


def status_events(app: App) -> list[Event]:
    events: list[Event] = []
    app.events.subscribe(lambda e: events.append(e) if e.kind == "message.status" else None)
    return events


@dataclass(frozen=True)
class Case:
    label: str
    receipts: tuple[StatusUpdate, ...]
    after_each: tuple[DeliveryStatus, ...]  #: the message's status after each receipt
    code: str | None = None  #: the error code it ends with


CASES = [
    Case("every part delivered, in order", (receipt(1, DELIVERED), receipt(2, DELIVERED), receipt(3, DELIVERED)),
         (SENT, SENT, DELIVERED)),
    Case("every part delivered, reversed", (receipt(3, DELIVERED), receipt(2, DELIVERED), receipt(1, DELIVERED)),
         (SENT, SENT, DELIVERED)),
    Case("retried receipts", (receipt(2, DELIVERED), receipt(2, DELIVERED), receipt(1, DELIVERED),
                              receipt(2, DELIVERED), receipt(3, DELIVERED), receipt(3, DELIVERED)),
         (SENT, SENT, SENT, SENT, DELIVERED, DELIVERED)),
    Case("sent to the carrier first", (receipt(1, SENT), receipt(2, SENT), receipt(3, SENT), receipt(1, DELIVERED),
                                       receipt(2, DELIVERED), receipt(3, DELIVERED)),
         (SENT, SENT, SENT, SENT, SENT, DELIVERED)),
    Case("one part undelivered", (receipt(1, DELIVERED), receipt(2, UNDELIVERED, "351"), receipt(3, DELIVERED)),
         (SENT, UNDELIVERED, UNDELIVERED), code="351"),
    Case("the first failure's code stays", (receipt(3, FAILED, "345"), receipt(1, FAILED, "351"),
                                            receipt(2, DELIVERED)),
         (FAILED, FAILED, FAILED), code="345"),
    Case("a delivered part does not fail later", (receipt(1, DELIVERED), receipt(1, FAILED, "351"),
                                                  receipt(2, DELIVERED), receipt(3, DELIVERED)),
         (SENT, SENT, SENT, DELIVERED)),
]


@both_databases
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_per_part_receipts_make_one_status(make_app, db, case: Case) -> None:
    app = make_app()
    events = status_events(app)

    async def scenario() -> list[str]:
        message_id = await sent_message(app)
        seen = []
        for update in case.receipts:
            await apply(app, update)
            seen.append(db.scalar("SELECT status FROM messages WHERE id = :id", id=message_id))
        await app.store.close()
        return seen

    assert asyncio.run(scenario()) == [s.value for s in case.after_each]
    [row] = db.rows("SELECT status, error_code, error_message FROM messages")
    assert row["error_code"] == case.code
    # A failure keeps the failing part's own description; a delivered message carries none.
    assert row["error_message"] == (f"carrier says {case.code}" if case.code else None)
    # Each change of status is announced once, and only changes are.
    assert [e.data["status"] for e in events] == [s.value for s in _changes(case.after_each)]


def _changes(statuses: Sequence[DeliveryStatus]) -> list[DeliveryStatus]:
    changes, current = [], SENT
    for state in statuses:
        if state != current:
            changes.append(state)
            current = state
    return changes


@both_databases
def test_a_receipt_for_an_unknown_ticket_is_held_and_changes_no_message(make_app, db) -> None:
    app = make_app()

    async def scenario() -> Message | None:
        await sent_message(app)
        async with app.store.transaction() as session:
            result = await status.apply(app, session, receipt(1, DELIVERED, ticket="unknown"))
        await app.store.close()
        return result

    before = db.snapshot()
    assert asyncio.run(scenario()) is None
    assert db.snapshot() == {**before, "messages": 1, "held_statuses": 1}
    assert db.scalar("SELECT status FROM messages") == "sent"


@pytest.mark.parametrize(("sequence", "total"), [(0, 3), (4, 3)])
def test_a_receipt_for_a_part_outside_the_total_is_refused(make_app, db, sequence: int, total: int) -> None:
    app = make_app()

    async def scenario() -> None:
        await sent_message(app)
        try:
            with pytest.raises(Malformed, match=f"part {sequence} of {total}"):
                await apply(app, receipt(sequence, DELIVERED, total=total))
        finally:
            await app.store.close()

    asyncio.run(scenario())
    assert db.count("delivery_parts") == 0


@both_databases
def test_receipts_arriving_at_once_on_two_replicas_deliver_once(make_app, db, database_url: str) -> None:
    # SQLite serves one process, so its "replicas" share one app; PostgreSQL gets two apps on one database.
    first = make_app()
    replicas = [first, make_app()] if database_url.startswith("postgresql") else [first]
    events = [e for app in replicas for e in [status_events(app)]]
    receipts = [receipt(n, DELIVERED, total=10) for n in range(1, 11)] * 3
    random.Random(3).shuffle(receipts)

    async def scenario() -> None:
        await sent_message(first)
        try:
            await asyncio.gather(*(apply(replicas[n % len(replicas)], r) for n, r in enumerate(receipts)))
        finally:
            for app in replicas:
                await app.store.close()

    asyncio.run(scenario())
    assert db.scalar("SELECT status FROM messages") == "delivered"
    assert db.count("delivery_parts") == 10
    assert [e.data["status"] for bus in events for e in bus] == ["delivered"]


class PartsProvider:
    """A provider that gives each part of a message its own id, as Vonage does: ``<message id>-<part>``."""

    def __init__(self, parts: int) -> None:
        self.parts = parts

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage):
        if provider != "parts":
            return None
        return self._send(message)

    async def _send(self, message: OutboundMessage) -> SendResult:
        return SendResult.of_parts([f"m{message.id}-{n}" for n in range(1, self.parts + 1)])


def part_receipt(message_id: int, part: int, state: DeliveryStatus, code: str | None = None) -> StatusUpdate:
    """A report on one part, under the part's own id, with nothing else saying which part it is."""
    return StatusUpdate(provider="parts", provider_message_id=f"m{message_id}-{part}", status=state, error_code=code,
                        error_message=f"carrier says {code or state.value}")


def sent_in_parts(make_app, live_server, db, parts: int = 3) -> tuple[App, LiveServer, int]:
    """A reply the ``parts`` provider accepted, each of its ``parts`` parts under its own id."""
    app = make_app(register=[("parts", PartsProvider(parts))])
    server = live_server(app)

    async def queue() -> int:
        async with app.store.transaction() as session:
            message = await outbound.queue(session, provider="parts", from_number=BRAND_NUMBER,
                                           to_number="+14155550123", text="x" * 400)
            assert message.id is not None
            return message.id

    message_id = server.call(queue)
    assert eventually(lambda: db.scalar("SELECT status FROM messages WHERE id = :id", id=message_id) == "sent")
    return app, server, message_id


def apply_on(server: LiveServer, app: App, *updates: StatusUpdate) -> None:
    async def run() -> None:
        for update in updates:
            async with app.store.transaction() as session:
                await status.apply(app, session, update)

    server.call(run)


@both_databases
def test_a_message_sent_in_parts_keeps_each_parts_id(make_app, live_server, db) -> None:
    _, _, message_id = sent_in_parts(make_app, live_server, db)

    [row] = db.rows("SELECT provider_message_id, num_segments FROM messages WHERE id = :id", id=message_id)
    assert row == {"provider_message_id": f"m{message_id}-1", "num_segments": 3}
    assert db.rows("SELECT sequence, total, status, provider_message_id FROM delivery_parts ORDER BY sequence") == [
        {"sequence": n, "total": 3, "status": "sent", "provider_message_id": f"m{message_id}-{n}"} for n in (1, 2, 3)]


@both_databases
def test_a_message_whose_later_parts_failed_is_failed_not_delivered(make_app, live_server, db) -> None:
    app, server, mid = sent_in_parts(make_app, live_server, db)

    apply_on(server, app, part_receipt(mid, 1, DELIVERED), part_receipt(mid, 2, FAILED, "1"),
             part_receipt(mid, 3, FAILED, "2"))

    [row] = db.rows("SELECT status, error_code, error_message FROM messages WHERE id = :id", id=mid)
    assert row == {"status": "failed", "error_code": "1", "error_message": "carrier says 1"}
    assert db.rows("SELECT status FROM delivery_parts ORDER BY sequence") == [
        {"status": "delivered"}, {"status": "failed"}, {"status": "failed"}]
    assert db.count("held_statuses") == 0


@both_databases
def test_a_message_sent_in_parts_is_delivered_once_every_part_is(make_app, live_server, db) -> None:
    app, server, mid = sent_in_parts(make_app, live_server, db)

    seen = []
    for part in (3, 1, 1, 2):
        apply_on(server, app, part_receipt(mid, part, DELIVERED))
        seen.append(db.scalar("SELECT status FROM messages WHERE id = :id", id=mid))

    assert seen == ["sent", "sent", "sent", "delivered"]
    # A late report never moves the message back.
    apply_on(server, app, part_receipt(mid, 2, FAILED, "1"))
    assert db.scalar("SELECT status FROM messages WHERE id = :id", id=mid) == "delivered"


@both_databases
def test_a_report_on_a_part_before_its_send_is_recorded_is_applied_when_it_is(make_app, live_server, db) -> None:
    app = make_app(register=[("parts", PartsProvider(2))])
    server = live_server(app)
    # The message will be the first one stored in this fresh database: its parts' ids are known before it is sent.
    apply_on(server, app, part_receipt(1, 2, UNDELIVERED, "30003"))
    assert db.count("held_statuses") == 1

    async def queue() -> None:
        async with app.store.transaction() as session:
            await outbound.queue(session, provider="parts", from_number=BRAND_NUMBER, to_number="+14155550123",
                                 text="x" * 200)

    server.call(queue)

    assert eventually(lambda: db.scalar("SELECT status FROM messages WHERE id = 1") == "undelivered")
    assert db.scalar("SELECT error_code FROM messages WHERE id = 1") == "30003"
    assert db.count("held_statuses") == 0


@pytest.mark.parametrize("part_ids", [("a", "a"), ("a", "")], ids=["repeated", "empty"])
def test_a_send_result_refuses_part_ids_that_cannot_name_one_part_each(part_ids: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="part ids must be distinct and not empty"):
        SendResult.of_parts(part_ids)


def test_a_send_result_for_one_id_has_no_parts() -> None:
    result = SendResult("SM1")
    assert result.part_ids == () and result.ids == ("SM1",)
    assert SendResult.of_parts(["a", "b"]).ids == ("a", "b")


@both_databases
def test_the_upkeep_applies_a_held_report_on_a_part_once_the_part_is_known(make_app, db) -> None:
    # A report held on one replica just after another replica recorded the send: the sweep finds it by the part.
    app = make_app()

    async def scenario() -> int:
        message_id = await sent_message(app, ticket="m-1")
        async with app.store.transaction() as session:
            await status.hold(session, StatusUpdate(provider="simulator", provider_message_id="m-2", status=FAILED,
                                                    error_code="1"))
            session.add_all([DeliveryPart(message_id=message_id, sequence=n, total=2, status="sent",
                                          provider="simulator", provider_message_id=f"m-{n}") for n in (1, 2)])
        async with app.store.transaction() as session:
            applied = await status.release_all(app, session, forget_after=timedelta(days=1))
        await app.store.close()
        return applied

    assert asyncio.run(scenario()) == 1
    assert db.rows("SELECT status, error_code FROM messages") == [{"status": "failed", "error_code": "1"}]
    assert db.count("held_statuses") == 0
