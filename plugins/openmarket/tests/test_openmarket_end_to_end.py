"""A consumer's long text, the brand's long reply, and the per-part receipts, over real HTTP with the fake."""

from __future__ import annotations

import pytest

from smsconnector import outbound
from smsconnector.testing import BRAND_NUMBER

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
CONSUMER = "+14155550123"
QUESTION = ("Hello, I ordered a blue jacket (order 5521) two weeks ago and the tracking page has said "
            "'label created' ever since. I need it before Friday because I am travelling. Can you check "
            "with the courier, and if it is lost, send a replacement or refund me? My address has not changed "
            "since my last order, and the phone number is this one. Thanks, Dana")
REPLY = ("Hi Dana, thanks for your patience. The courier confirms the parcel was damaged in transit, so we "
         "have sent a replacement by express delivery today: it arrives Thursday before noon. The new tracking "
         "number is in your email. If it is not there by Thursday evening, reply here and we refund you at "
         "once, no questions asked. Our team answers every day from 8 am to 10 pm. We are so sorry for the trouble.")


@both_databases
def test_a_three_part_question_and_a_long_reply_with_per_part_receipts(openmarket_app, live_server, fake, db,
                                                                       eventually) -> None:
    assert len(REPLY) == 400
    app = openmarket_app()
    server = live_server(app)

    # The consumer's question arrives as three parts, out of order, one of them retried.
    parts = fake.mo_parts(QUESTION, reference=0x5A)
    assert len(parts) == 3
    answers = fake.post_mo(server.url, parts, order=[2, 3, 2, 1])

    assert [(a.status_code, a.content) for a in answers] == [(200, b"")] * 4
    [question] = db.rows("SELECT id, body, num_segments, incomplete, conversation_id FROM messages")
    assert (question["body"], question["num_segments"], bool(question["incomplete"])) == (QUESTION, 3, False)
    [conversation] = db.rows("SELECT id, status, skill FROM conversations")
    assert (conversation["id"], conversation["status"], conversation["skill"]) == (
        question["conversation_id"], "queued", "support")

    # The agent's reply (queued as the agent API will): one MT, which OpenMarket splits into three parts.
    async def reply() -> int:
        async with app.store.transaction() as session:
            message = await outbound.queue(session, provider="openmarket", from_number=BRAND_NUMBER,
                                           to_number=CONSUMER, text=REPLY, conversation_id=conversation["id"])
        assert message.id is not None
        return message.id

    reply_id = server.call(reply)
    [sent] = eventually(lambda: fake.accepted)
    assert sent.text == REPLY and sent.parts == 3
    assert sent.receipt_url == "http://testserver/webhooks/openmarket/status"
    assert eventually(lambda: db.scalar("SELECT status FROM messages WHERE id = :id", id=reply_id) == "sent")
    assert db.scalar("SELECT provider_message_id FROM messages WHERE id = :id", id=reply_id) == sent.ticket

    # OpenMarket reports each part on its own; the message is delivered once all three are.
    receipts = fake.post_receipts(server.url, sent, order=[3, 1])
    assert db.scalar("SELECT status FROM messages WHERE id = :id", id=reply_id) == "sent"
    receipts += fake.post_receipts(server.url, sent, order=[3, 2])

    assert [(r.status_code, r.content) for r in receipts] == [(200, b"")] * 4
    assert db.rows("SELECT status, error_code FROM messages WHERE id = :id", id=reply_id) == [
        {"status": "delivered", "error_code": None}]
    assert db.count("delivery_parts", "message_id = :id AND status = 'delivered'", id=reply_id) == 3
    assert db.count("outbox") == 0


@both_databases
def test_a_failed_part_fails_the_reply_with_its_code(openmarket_app, live_server, fake, db, eventually) -> None:
    app = openmarket_app()
    server = live_server(app)

    async def reply() -> int:
        async with app.store.transaction() as session:
            message = await outbound.queue(session, provider="openmarket", from_number=BRAND_NUMBER,
                                           to_number=CONSUMER, text=REPLY)
        assert message.id is not None
        return message.id

    reply_id = server.call(reply)
    [sent] = eventually(lambda: fake.accepted)
    eventually(lambda: db.scalar("SELECT status FROM messages WHERE id = :id", id=reply_id) == "sent")

    fake.post_receipts(server.url, fake.receipts(sent, codes={2: 345}))

    assert db.rows("SELECT status, error_code, error_message FROM messages WHERE id = :id", id=reply_id) == [
        {"status": "undelivered", "error_code": "345",
         "error_message": "Mobile operator not found for the destination address"}]
