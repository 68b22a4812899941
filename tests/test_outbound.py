"""Queueing outbound messages many at a time: one statement for the messages, their ids in their order."""

from __future__ import annotations

import asyncio

import pytest

from smsconnector import outbound
from smsconnector.store.models import Message
from smsconnector.testing import BRAND_NUMBER

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def test_a_draft_is_a_whole_row_of_the_messages_table():
    row = outbound.draft(provider="simulator", from_number=BRAND_NUMBER, to_number="+14155550123", text="Hi")
    assert set(row) == {c.name for c in Message.__table__.columns} - {"id"}


@both_databases
def test_messages_queued_together_get_ids_in_their_order_with_their_outbox_rows(make_app, db):
    app = make_app()
    events = []
    app.events.subscribe(events.append)
    # Some rows already stored, so the new ids do not simply start at 1.
    db.execute("INSERT INTO messages (direction, provider, from_number, to_number, body, media, message_class, "
               "status, incomplete, notes, details, created_at, updated_at) VALUES ('inbound', 'simulator', "
               "'+14155550123', :brand, 'Hi', '[]', 'conversational', 'received', false, '[]', '{}', "
               "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)", brand=BRAND_NUMBER)
    texts = [f"message {n}" for n in range(300)]

    async def queue() -> list[int]:
        try:
            async with app.store.transaction() as session:
                return await outbound.queue_all(session, [outbound.draft(
                    provider="simulator", from_number=BRAND_NUMBER, to_number=f"+1415555{n % 7:04d}", text=text)
                    for n, text in enumerate(texts)])
        finally:
            await app.store.close()

    ids = asyncio.run(queue())

    stored = {r["id"]: r["body"] for r in db.rows("SELECT id, body FROM messages WHERE direction = 'outbound'")}
    assert [stored[i] for i in ids] == texts and ids == sorted(ids)
    assert sorted(r["message_id"] for r in db.rows("SELECT message_id FROM outbox")) == ids
    assert [e.data["message_id"] for e in events if e.kind == "outbox.queued"] == ids
