"""Provider status updates on stored messages: never backwards, and per-part receipts made into one status."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from smsconnector import status
from smsconnector.app import App
from smsconnector.errors import Malformed
from smsconnector.events import Event
from smsconnector.messages import DeliveryStatus, SegmentInfo, StatusUpdate, utcnow
from smsconnector.store.models import Message
from smsconnector.testing import BRAND_NUMBER

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
